"""The training machinery: one training loop for every task, and what it stands on (config files, checkpoints,
schedules, sampling, run directories). The commands' use cases (evaluate, predict, export, demo, ...) are
``dla.commands``, above this package.

- ``config_loader``: ``load_config`` (YAML + ``--set`` overrides into a checked ``dla.config.Config``), ``dump_config``.
- ``checkpoint``: the format (``TrainState``), ``save_checkpoint`` (atomic), ``load_checkpoint`` (``weights_only``),
  ``model_from_checkpoint``.
- ``trainer``: ``train(cfg)``, top to bottom; ``step``: one training step, shared with ``dla bench --train``.
- ``sampling``: the seeded order and augmentation of training samples; ``signals``: Ctrl-C between iterations.
- ``datasets``: a run's splits with the task's transforms; ``optimizer``: SGD or Adam, the backbone's lr;
  ``runtime``: device, seeds, mixed precision.
- ``schedules``: per-iteration ``poly`` and ``step`` learning-rate schedules.
- ``rundir``: the run directory layout and ``MetricsLogger`` (JSONL, CSV, TensorBoard); ``results``: score files.
- ``class_weights``: a run's class weights, listed or computed once from the training labels and kept in the run.

What differs between tasks is not here but in ``dla.tasks`` (the ``Task`` contract).
"""

import importlib
import warnings
from typing import Any

from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config_loader import dump_config, load_config
from .rundir import MetricsLogger, RunDir, code_version
from .schedules import build_scheduler, poly_schedule, step_schedule
from .trainer import train

MOVED = {"evaluate_checkpoint": "dla.commands.evaluate", "predict_files": "dla.commands.predict"}  # until 0.3

__all__ = [
    "MetricsLogger",
    "RunDir",
    "build_scheduler",
    "code_version",
    "dump_config",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "poly_schedule",
    "save_checkpoint",
    "step_schedule",
    "train",
]


def __getattr__(name: str) -> Any:
    """``evaluate_checkpoint`` and ``predict_files``, which moved to ``dla.commands``: one release with a warning."""
    if name in MOVED:
        module = MOVED[name]
        warnings.warn(f"dla.engine.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'dla.engine' has no attribute {name!r}")
