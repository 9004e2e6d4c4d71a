"""The pieces of a run's set-up that ``trainer.set_up`` calls: the checks made before the first iteration (the
checkpoint to resume, input channels, class weights), the batch's description, and ``distribute``
(DistributedDataParallel, synchronised BatchNorm). Kept here so that ``trainer.py`` reads as the recipe."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..config import Config
from ..data import TaskDataset
from ..data.meta import DatasetMeta
from ..distributed import Processes
from ..errors import DLAError
from ..layers import convert_sync_batchnorm
from .checkpoint import load_checkpoint, run_config
from .config_loader import check_resumable
from .sampling import SeededItems


def check_input_channels(model: nn.Module, train_set: TaskDataset, cfg: Config) -> None:
    """Refuse, before the run directory is made, a model whose first convolution takes another number of channels
    than the training images have (``model.kwargs.in_chans: 1`` with RGB data)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or len(train_set) == 0:
        return
    image = SeededItems(train_set)[(0, 0)][0]  # one sample, drawn without touching the global generators
    channels = image.shape[-3]
    if channels != first.in_channels:
        raise DLAError(
            f"{cfg.model.name} takes {first.in_channels}-channel images but {train_set.meta.name} gives {channels}-channel "
            f"images; set model.kwargs.in_chans={channels} (or use data with {first.in_channels} channels)"
        )


def checkpoint_to_resume(path: Path, cfg: Config) -> dict[str, Any]:
    """The checkpoint a run resumes from, refused when ``cfg`` changes what a resumed run must keep: the global
    batch, and the settings outside ``config.RESUMABLE_CHANGES``."""
    checkpoint = load_checkpoint(path)
    check_global_batch(checkpoint, cfg.data.batch_size, path)
    check_resumable(run_config(checkpoint, path), cfg, path)
    return checkpoint


def check_global_batch(checkpoint: dict[str, Any], batch_size: int, path: Path) -> None:
    """Refuse to resume a run with another global batch; any number of processes and accumulation steps that
    split the same global batch may continue it."""
    saved = checkpoint.get("global_batch", batch_size)
    if saved != batch_size:
        raise DLAError(
            f"cannot resume {path}: it trained with a global batch of {saved} (data.batch_size) and would continue with "
            f"{batch_size}; keep data.batch_size={saved}, with any number of processes and optim.accumulate that divide it"
        )


def loss_weights(weights: Sequence[float] | None, meta: DatasetMeta, device: torch.device) -> Tensor | None:
    """``optim.class_weights`` as a tensor, checked against the dataset's classes."""
    if weights is None:
        return None
    if len(weights) != meta.num_classes:
        raise DLAError(
            f"optim.class_weights has {len(weights)} values but {meta.name} has {meta.num_classes} classes "
            f"({', '.join(meta.classes)}); give one weight per class"
        )
    return torch.tensor(weights, dtype=torch.float32, device=device)


def describe_batch(batch_size: int, accumulate: int, world_size: int) -> str:
    """``global batch 16 = 2 processes x 2 accumulation steps x 4 images``, as printed at the start of a run."""
    share = batch_size // (accumulate * world_size)
    parts = [f"{world_size} process{'es' if world_size > 1 else ''}"]
    if accumulate > 1:
        parts.append(f"{accumulate} accumulation steps")
    return f"global batch {batch_size} = {' x '.join(parts)} x {share} samples (per process {batch_size // world_size})"


def distribute(model: nn.Module, processes: Processes, device: torch.device, sync_bn: bool) -> tuple[nn.Module, nn.Module]:
    """The model, and the module that trains it: DistributedDataParallel over several processes (BatchNorm
    synchronised with ``sync_bn``), the model itself in one process.

    DDP looks for unused parameters (``find_unused_parameters``) because the DLA backbones keep the authors'
    unused ``project`` layers, whose keys the published checkpoints hold; it costs one graph traversal per
    iteration, and PyTorch warns once, for models without unused parameters, that it found none.
    """
    if processes.world_size == 1:
        return model, model
    if sync_bn:
        model = convert_sync_batchnorm(model)
    net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=True)
    return model, net
