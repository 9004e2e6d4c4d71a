"""The engine: one training loop and evaluation for every task, configs, checkpoints, schedules, run directories.

- ``config``: ``load_config`` (YAML + ``--set`` overrides into a checked ``dla.config.Config``), ``dump_config``.
- ``checkpoint``: ``save_checkpoint`` (atomic), ``load_checkpoint`` (``weights_only``), ``model_from_checkpoint``.
- ``trainer``: ``train(cfg)`` and the step; ``evaluate``: ``evaluate_checkpoint``; ``predict``: ``predict_files``.
- ``sampling``: the seeded order and augmentation of training samples; ``signals``: Ctrl-C between iterations.
- ``datasets``: a run's splits with the task's transforms; ``optimizer``: SGD or Adam, the backbone's lr;
  ``runtime``: device, seeds, mixed precision.
- ``schedules``: per-iteration ``poly`` and ``step`` learning-rate schedules.
- ``rundir``: the run directory layout and ``MetricsLogger`` (JSONL, CSV, TensorBoard); ``results``: score files.
- ``class_weights``: a run's class weights, listed or computed once from the training labels and kept in the run.

What differs between tasks is not here but in ``dla.tasks`` (the ``Task`` contract).
"""

from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import dump_config, load_config
from .evaluate import evaluate_checkpoint
from .predict import predict_files
from .rundir import MetricsLogger, RunDir, code_version
from .schedules import build_scheduler, poly_schedule, step_schedule
from .trainer import train

__all__ = [
    "MetricsLogger",
    "RunDir",
    "build_scheduler",
    "code_version",
    "dump_config",
    "evaluate_checkpoint",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "poly_schedule",
    "predict_files",
    "save_checkpoint",
    "step_schedule",
    "train",
]
