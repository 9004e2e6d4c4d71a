"""dla: Deep Layer Aggregation (Yu, Wang, Shelhamer, Darrell, CVPR 2018) in PyTorch."""

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

__version__ = "0.1.0"

__all__ = [
    "AuxOutput",
    "DLA",
    "HDA",
    "IDA",
    "IDAUp",
    "DLASeg",
    "AggregationNode",
    "DLAError",
    "FeatureInfo",
    "PretrainedCfg",
    "create_model",
    "list_models",
    "load_pretrained",
    "optimize",
    "register_model",
]
