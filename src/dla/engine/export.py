"""Exporting a checkpoint or a registered model (the ``dla export`` command), and reading a run back from an export.

An export of a checkpoint is self-describing: the file's metadata (ONNX ``metadata_props``, strings) holds

- ``dla.model_name``, ``dla.model_kwargs`` (JSON): the architecture, as in the checkpoint
- ``dla.task``: ``segmentation``, ``classification`` or ``boundaries``
- ``dla.dataset_meta`` (JSON): class names, palette, mean/std (the normalisation the input expects), ignore index
- ``dla.config`` (JSON): the run's resolved config, so ``dla eval`` / ``dla predict`` use its test-time settings
- ``dla.source``: the checkpoint's file name; ``dla.code_version``: the code that exported it
- ``dla.input`` and ``dla.output_stride`` (``dla.inference.onnx.export_onnx``)

so that ``dla eval model.onnx`` and ``dla predict --checkpoint model.onnx`` rebuild the task, the classes and
the pre-processing from the file alone. An export of a model name (random or pretrained weights, no run) has
only ``dla.model_name``, ``dla.model_kwargs`` and ``dla.code_version``.
"""

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..config import Config
from ..data.meta import DatasetMeta
from ..errors import DLAError
from ..inference.onnx import DEFAULT_OPSET, export_onnx
from ..inference.stride import evaluated_at
from ..models import create_model
from .checkpoint import load_checkpoint, model_from_checkpoint, run_config
from .config import config_from_dict
from .rundir import code_version

FORMATS = ("onnx",)
DEFAULT_SIZE = (224, 224)  # the example the graph is traced at; height and width stay dynamic


def export_model(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fmt: str = "onnx",
    input_size: tuple[int, int] = DEFAULT_SIZE,
    opset: int = DEFAULT_OPSET,
    num_classes: int | None = None,
) -> Path:
    """Export ``source`` (a ``dla`` checkpoint file, or a registered model name) to ``out``; returns ``out``.

    A checkpoint's model is exported at its run's ``eval.output_stride`` (DeepLabv3: 8), the stride its
    evaluation uses, and carries the run in its metadata (module docstring). ``num_classes`` applies to a
    model name only (a checkpoint's classes are its own).
    """
    if fmt not in FORMATS:
        raise DLAError(f"unknown export format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if Path(source).is_file():
        if num_classes is not None:
            raise DLAError(f"--num-classes applies to a model name; {source} is a checkpoint with its own classes")
        model, metadata, output_stride = _checkpoint_export(source)
    else:
        model, metadata, output_stride = _model_export(str(source), num_classes)
    with evaluated_at(model, output_stride):
        return export_onnx(model, out, input_size=input_size, opset=opset, metadata=metadata)


def _checkpoint_export(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, str], int | None]:
    """The checkpoint's model, its metadata, and the output stride to export it at."""
    state = load_checkpoint(path)
    model, meta = model_from_checkpoint(state)
    cfg = run_config(state, path)
    metadata = {
        "dla.model_name": state["model_name"],
        "dla.model_kwargs": json.dumps(state["model_kwargs"]),
        "dla.task": state["task"],
        "dla.dataset_meta": json.dumps(meta.to_dict()),
        "dla.config": json.dumps(cfg.to_dict()),
        "dla.source": Path(path).name,
        "dla.code_version": code_version(),
    }
    return model, metadata, cfg.eval.output_stride


def _model_export(name: str, num_classes: int | None) -> tuple[nn.Module, dict[str, str], None]:
    """A registered model (``create_model(name)``, no trained weights) and its metadata."""
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    model = create_model(name, **kwargs).eval()
    metadata = {"dla.model_name": name, "dla.model_kwargs": json.dumps(kwargs), "dla.code_version": code_version()}
    return model, metadata, None


def run_from_metadata(metadata: dict[str, str], name: str) -> tuple[DatasetMeta, Config]:
    """The dataset meta and the run's config stored in an exported file's metadata (module docstring);
    a DLAError naming ``name`` when it was not exported from a checkpoint."""
    if "dla.config" not in metadata or "dla.dataset_meta" not in metadata:
        raise DLAError(
            f"{name} has no run in its metadata (it was not written by `dla export` from a checkpoint); "
            "export the trained checkpoint (dla export runs/<run>/best.pt --out model.onnx) to evaluate or predict with it"
        )
    try:
        meta = DatasetMeta.from_dict(json.loads(metadata["dla.dataset_meta"]))
        values = json.loads(metadata["dla.config"])
    except (ValueError, KeyError, TypeError) as e:
        raise DLAError(f"{name}: its dla.dataset_meta or dla.config metadata is not what dla export writes ({e})") from None
    return meta, config_from_dict(values, source=f"{name} (its config)")
