"""The engine: one training loop and evaluation for every model, configs, checkpoints, schedules, run directories.

- ``config``: the config schema and ``load_config`` (YAML + ``--set`` overrides), ``dump_config``.
- ``checkpoint``: ``save_checkpoint`` (atomic), ``load_checkpoint`` (``weights_only``), ``model_from_checkpoint``.
- ``schedules``: per-iteration ``poly`` and ``step`` learning-rate schedules.
- ``rundir``: the run directory layout and ``MetricsLogger`` (JSONL, CSV, TensorBoard).
- ``tasks``: what each task (segmentation, classification) brings to the loop: transforms, model, loss, evaluation.
- ``trainer``: ``train(cfg)``, ``evaluate_checkpoint``.
"""

from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import dump_config, load_config
from .rundir import MetricsLogger, RunDir, code_version
from .schedules import build_scheduler, poly_schedule, step_schedule
from .tasks import TASKS, get_task
from .trainer import evaluate_checkpoint, train

__all__ = [
    "MetricsLogger",
    "RunDir",
    "TASKS",
    "build_scheduler",
    "code_version",
    "dump_config",
    "evaluate_checkpoint",
    "get_task",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "poly_schedule",
    "save_checkpoint",
    "step_schedule",
    "train",
]
