"""dla: Deep Layer Aggregation (Yu, Wang, Shelhamer, Darrell, CVPR 2018) in PyTorch."""

from typing import TYPE_CHECKING, Any

from . import _moved
from ._version import __version__
from .aggregation import HDA, IDA, AggregationNode, IDAUp
from .errors import DLAError
from .inference import optimize
from .models import (
    DLA,
    AuxOutput,
    DLASeg,
    FeatureInfo,
    PretrainedCfg,
    create_model,
    list_models,
    load_pretrained,
    register_model,
)

_moved.install()  # the old paths of the modules moved in 0.2, for one release

if TYPE_CHECKING:
    from .commands.predictor import Prediction, Predictor


__all__ = [
    "__version__",
    "AuxOutput",
    "DLA",
    "HDA",
    "IDA",
    "IDAUp",
    "DLASeg",
    "AggregationNode",
    "DLAError",
    "FeatureInfo",
    "Prediction",
    "Predictor",
    "PretrainedCfg",
    "create_model",
    "list_models",
    "load_pretrained",
    "optimize",
    "register_model",
]


def __getattr__(name: str) -> Any:
    """``Predictor`` and ``Prediction``, imported on first use: they bring the engine (tasks, datasets, checkpoints),
    which ``import dla`` for the models alone does not need."""
    if name in ("Prediction", "Predictor"):
        from .commands import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'dla' has no attribute {name!r}")
