"""What ``dla eval`` and ``dla predict`` run: a checkpoint's model through a backend, or an exported ONNX file."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import Config
from ..data.meta import DatasetMeta
from ..engine.checkpoint import load_checkpoint, model_from_checkpoint, run_config
from ..engine.config_loader import with_eval_settings
from ..errors import DLAError
from ..inference import example_input, get_backend
from ..inference.onnx import OnnxRuntimeModel
from ..inference.stride import evaluated_at
from .export import DEFAULT_SIZE, run_from_metadata


def load_for_inference(
    path: str | os.PathLike[str],
    backend: str | None = None,
    settings: Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, DatasetMeta, Config]:
    """The model to run (on ``device``), its dataset's meta, and the run's config with ``settings`` as ``eval`` keys.

    ``path`` is a ``dla`` checkpoint, or an ``.onnx`` file written by ``dla export`` from one: its metadata
    gives the task, the classes, the normalisation and the run's settings, and it runs on onnxruntime (the
    only backend it takes; ``backend`` None or ``onnxruntime``). A checkpoint's model goes through
    ``backend`` (default ``eager``: the model itself), converted at the run's ``eval.output_stride``, the
    stride it will be evaluated at; the task's pre- and post-processing are the same for every backend.
    """
    if Path(path).suffix == ".onnx":
        if backend not in (None, "onnxruntime"):
            raise DLAError(f"{path} is an ONNX graph and runs on onnxruntime; drop --backend {backend} or give the checkpoint")
        graph = OnnxRuntimeModel.from_file(path)
        meta, cfg = run_from_metadata(graph.metadata, str(path))
        return graph, meta, with_eval_settings(cfg, settings or {})
    state = load_checkpoint(path)
    model, meta = model_from_checkpoint(state, name=str(path))
    cfg = with_eval_settings(run_config(state, path), settings or {})
    convert = get_backend(backend or "eager")
    model = model.to(device)
    with evaluated_at(model, cfg.eval.output_stride):
        model = convert(model, example_input(model, DEFAULT_SIZE))
    return model, meta, cfg
