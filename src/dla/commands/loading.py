"""Every saved model read back in one place: ``dla eval``, ``dla predict``, ``dla.Predictor`` and ``dla app`` load
what they run here, and ``dla export`` loads what it exports and writes the metadata that this module reads.

A saved model is one of:

- a checkpoint of ``dla train`` (``.pt``; its format: ``dla.engine.checkpoint``), or a folder written by
  ``dla export --format hub``, here or on the Hugging Face Hub (``hf-hub:<owner>/<repo>``): ``load_run``;
- an ``.onnx`` file ``dla export`` wrote from a checkpoint. Its metadata (ONNX ``metadata_props``, strings) holds

  - ``dla.model_name``, ``dla.model_kwargs`` (JSON): the architecture, as in the checkpoint
  - ``dla.task``: the task's name
  - ``dla.dataset_meta`` (JSON): class names, palette, mean/std (the normalisation the input expects), ignore index
  - ``dla.config`` (JSON): the run's resolved config, so ``dla eval`` / ``dla predict`` use its test-time settings
  - ``dla.source``: the checkpoint's file name; ``dla.code_version``: the code that exported it
  - ``dla.input`` and ``dla.output_stride`` (``dla.inference.onnx.export_onnx``)

  written by ``export_metadata`` and read by ``run_from_metadata``, so that the task, the classes and the
  pre-processing come from the file alone. An export of a model name (random or pretrained weights, no run) has
  only ``dla.model_name``, ``dla.model_kwargs`` and ``dla.code_version``.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import Config
from ..data.meta import DatasetMeta
from ..engine.checkpoint import load_checkpoint, model_from_checkpoint, run_config
from ..engine.config_loader import config_from_dict, with_eval_settings
from ..engine.rundir import code_version
from ..errors import DLAError
from ..inference import example_input, get_backend
from ..inference.onnx import OnnxRuntimeModel
from ..inference.stride import evaluated_at

DEFAULT_SIZE = (224, 224)  # the example a model is traced at (export, backends); height and width stay dynamic


def load_run(path: str | os.PathLike[str]) -> tuple[nn.Module, DatasetMeta, Config, dict[str, Any]]:
    """A checkpoint's (or a shared folder's) model in eval mode on the CPU, its dataset's meta, its run's config and
    the checkpoint dict itself."""
    state = load_checkpoint(path)
    model, meta = model_from_checkpoint(state, name=str(path))
    return model, meta, run_config(state, path), state


def export_metadata(state: Mapping[str, Any], meta: DatasetMeta, cfg: Config, source: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an export of the checkpoint ``state`` (module docstring), which ``run_from_metadata`` reads."""
    return {
        "dla.model_name": state["model_name"],
        "dla.model_kwargs": json.dumps(state["model_kwargs"]),
        "dla.task": state["task"],
        "dla.dataset_meta": json.dumps(meta.to_dict()),
        "dla.config": json.dumps(cfg.to_dict()),
        "dla.source": Path(source).name,
        "dla.code_version": code_version(),
    }


def run_from_metadata(metadata: Mapping[str, str], name: str) -> tuple[DatasetMeta, Config]:
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


def load_for_inference(
    path: str | os.PathLike[str],
    backend: str | None = None,
    settings: Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, DatasetMeta, Config]:
    """The model to run (on ``device``), its dataset's meta, and the run's config with ``settings`` as ``eval`` keys.

    ``path`` is a ``dla`` checkpoint or shared folder, or an ``.onnx`` file written by ``dla export`` from one: its
    metadata gives the task, the classes, the normalisation and the run's settings, and it runs on onnxruntime (the
    only backend it takes; ``backend`` None or ``onnxruntime``). A checkpoint's model goes through ``backend``
    (default ``eager``: the model itself), converted at the run's ``eval.output_stride``, the stride it will be
    evaluated at; the task's pre- and post-processing are the same for every backend.
    """
    if Path(path).suffix == ".onnx":
        if backend not in (None, "onnxruntime"):
            raise DLAError(f"{path} is an ONNX graph and runs on onnxruntime; drop --backend {backend} or give the checkpoint")
        graph = OnnxRuntimeModel.from_file(path)
        meta, cfg = run_from_metadata(graph.metadata, str(path))
        return graph, meta, with_eval_settings(cfg, settings or {})
    model, meta, cfg, _ = load_run(path)
    cfg = with_eval_settings(cfg, settings or {})
    convert = get_backend(backend or "eager")
    model = model.to(device)
    with evaluated_at(model, cfg.eval.output_stride):
        model = convert(model, example_input(model, DEFAULT_SIZE))
    return model, meta, cfg


__all__ = ["DEFAULT_SIZE", "export_metadata", "load_for_inference", "load_run", "run_from_metadata"]
