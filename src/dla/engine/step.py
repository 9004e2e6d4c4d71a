"""One training step: forward and backward passes over an iteration's micro-batches, then the optimizer update.

``TrainStep`` is what ``dla train`` runs every iteration (``trainer.py``) and what ``dla bench --train`` times
(``dla.bench.train``): one object, so that the benchmark measures the step that trains.
"""

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .. import distributed
from ..distributed import Processes
from ..errors import DLAError
from ..models import AuxOutput
from ..tasks import Criterion


@dataclass
class TrainStep:
    """The training step of ``net`` (the model, or DistributedDataParallel around it) on a batch's micro-batches.

    ``backward`` then ``update`` (the trainer checks the loss in between); calling the step does both.
    """

    net: nn.Module  # what runs the forward pass
    model: nn.Module  # the model itself, whose gradients ``grad_clip`` clips
    optimizer: torch.optim.Optimizer
    criterion: Criterion
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # the autocast dtype; None: full precision
    aux_weight: float  # of an ``AuxOutput``'s auxiliary logits in the loss (``optim.aux_weight``)
    grad_clip: float | None
    device: torch.device

    def __call__(self, micro_batches: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        loss = self.backward(micro_batches)
        self.update()
        return loss

    def backward(self, micro_batches: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        """Clear the gradients, then accumulate those of the micro-batches' mean loss; that loss (detached)."""
        self.optimizer.zero_grad(set_to_none=True)
        return accumulate_gradients(
            self.net, micro_batches, self.criterion, self.aux_weight, self.amp_dtype, self.scaler, self.device
        )

    def update(self) -> None:
        """The optimizer step on the accumulated gradients (``apply_gradients``)."""
        apply_gradients(self.model, self.optimizer, self.scaler, self.grad_clip)


def accumulate_gradients(
    net: nn.Module,
    micro_batches: Sequence[tuple[Tensor, Tensor]],
    criterion: Criterion,
    aux_weight: float,
    amp_dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> Tensor:
    """Forward and backward passes over this process's share of a batch, one micro-batch at a time; returns the
    share's mean loss (detached). The gradients are those of that mean, and DistributedDataParallel averages
    them over the processes during the last backward pass only (``no_sync`` before it)."""
    total = torch.zeros((), device=device)
    for step, (images, targets) in enumerate(micro_batches):
        last = step == len(micro_batches) - 1
        with contextlib.nullcontext() if last or not isinstance(net, DistributedDataParallel) else net.no_sync():
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = forward(net, images)
                loss = weighted_loss(criterion, outputs, targets, aux_weight) / len(micro_batches)
            scaler.scale(loss).backward()
        total += loss.detach()
    return total


def forward(net: nn.Module, images: Tensor) -> Tensor | AuxOutput:
    """The training forward pass; BatchNorm's refusal of one value per channel (a batch of one image whose
    feature maps shrink to 1x1) becomes a DLAError that says which settings to raise."""
    try:
        return net(images)
    except ValueError as e:
        if "Expected more than 1 value per channel" not in str(e):
            raise
        size = "x".join(str(side) for side in images.shape[-2:])
        raise DLAError(
            f"at {images.shape[0]} image(s) of {size} per step, the model's feature maps shrink to one value per channel, "
            "where BatchNorm cannot train; raise data.crop_size (the smallest sides per model are in docs/reliability.md) "
            "or the images per step (data.batch_size / processes / optim.accumulate) to 2 or more"
        ) from None


def weighted_loss(criterion: Criterion, outputs: Tensor | AuxOutput, targets: Tensor, aux_weight: float) -> Tensor:
    """The task's loss (``criterion``) of the model's outputs; an ``AuxOutput`` (Ladder DenseNet's context-layer
    logits beside the main ones) is scored ``(1 - aux_weight) x main + aux_weight x auxiliary``."""
    if isinstance(outputs, AuxOutput):
        return (1 - aux_weight) * criterion(outputs.logits, targets) + aux_weight * criterion(outputs.aux_logits, targets)
    return criterion(outputs, targets)


def apply_gradients(
    model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float | None
) -> None:
    """The optimizer step on the accumulated gradients (unscaled for fp16), optionally clipped to ``grad_clip``."""
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def agree(loss: Tensor, stop: bool, processes: Processes) -> tuple[float, bool]:
    """The loss averaged over the processes, and whether any of them was asked to stop: one small collective per
    iteration, so that every process logs the same loss and stops (on a signal or a non-finite loss) together."""
    values = torch.stack([loss.float(), loss.new_tensor(float(stop), dtype=torch.float32)])
    distributed.all_reduce_sum(values)
    return values[0].item() / processes.world_size, values[1].item() > 0


def groups_of(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """Consecutive groups of ``size`` items (an iteration's micro-batches); an incomplete last group is dropped."""
    iterator = iter(items)
    return zip(*[iterator] * size, strict=False)
