"""A trained checkpoint and its run's validation images, for the benchmarks that check predictions."""

from pathlib import Path

from torch import nn

from dla.config import Config
from dla.data import build_dataset
from dla.data.base import TaskDataset
from dla.data.meta import DatasetMeta
from dla.engine.checkpoint import load_checkpoint, model_from_checkpoint, run_config
from dla.engine.config_loader import resolve_data_root
from dla.tasks import get_task


def trained_model(checkpoint: Path, split: str = "val") -> tuple[nn.Module, DatasetMeta, Config, TaskDataset]:
    """The checkpoint's model (eval mode), dataset meta and run config, and ``split`` of its run's dataset with the
    task's evaluation transform (whole, normalised images)."""
    state = load_checkpoint(checkpoint)
    model, meta = model_from_checkpoint(state)
    cfg = run_config(state, str(checkpoint))
    root = resolve_data_root(cfg.data.dataset, cfg.data.root)
    data = build_dataset(
        cfg.data.dataset, root, split, transform=get_task(cfg.task).eval_transform(cfg, meta), **cfg.data.options
    )
    return model.eval(), meta, cfg, data
