"""What ``--train`` times: the training step of ``dla train`` (``dla.engine.step.TrainStep``: forward, loss,
backward, optimizer update) at batch N.

Two settings, each on its own copy of the model and its own optimizer, timed side by side:

- ``eager``: fp32, contiguous (NCHW) tensors, ``torch.optim.SGD`` as constructed by default;
- ``fast``: channels_last model and input, bf16 autocast where the device computes bf16 natively
  (``machine.native_bf16``; fp32 elsewhere), and the fused SGD kernel (``fused=True``; ``foreach`` where a torch
  build has no fused SGD for the device).

SGD with momentum 0.9 and weight decay 1e-4 is the papers' optimizer. The loss is the cross-entropy against
random targets of the output's shape: one class per pixel for dense outputs, one per image for logits, and the
binary cross-entropy for one-channel (boundary) outputs. A model's auxiliary logits (``AuxOutput``) are weighed
as training weighs them, ``(1 - aux_weight) x main + aux_weight x auxiliary`` with the default
``optim.aux_weight``, so their backward pass is part of the step. Gradients are set to ``None`` between steps.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import OptimConfig
from ..engine.step import TrainStep
from ..inference import native_bf16
from ..models import AuxOutput
from .timing import Step

SETTINGS = ("eager", "fast")


def make_optimizer(model: nn.Module, fast: bool) -> torch.optim.Optimizer:
    """SGD over the trainable parameters; with ``fast`` its fused kernel, or ``foreach`` where there is none."""
    sgd = partial(torch.optim.SGD, [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, weight_decay=1e-4)
    if not fast:
        return sgd()
    try:
        return sgd(fused=True)
    except RuntimeError:  # no fused SGD for this device in this torch build
        return sgd(foreach=True)


def random_targets(output: Tensor, device: torch.device) -> Tensor:
    """Targets for an output of ``output``'s shape (meta tensor): class indices, or 0/1 maps for one channel."""
    shape = tuple(output.shape)
    if shape[1] == 1:
        return torch.randint(0, 2, shape, device=device).float()
    return torch.randint(0, shape[1], shape[:1] + shape[2:], device=device)


def random_target_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy (binary for one channel) of one logits tensor against ``random_targets``, in fp32."""
    loss = F.binary_cross_entropy_with_logits if targets.is_floating_point() else F.cross_entropy
    return loss(logits.float(), targets)


def train_step(model: nn.Module, x: Tensor, targets: Tensor, setting: str) -> Step:
    """The training step of ``dla train`` (``TrainStep``) of ``model`` (changed in place: pass a copy) on ``x``, in
    ``setting`` (``SETTINGS``)."""
    fast = setting == "fast"
    if fast:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from the stubs
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    step = TrainStep(
        net=model,
        model=model,
        optimizer=make_optimizer(model, fast),
        criterion=random_target_loss,
        scaler=torch.amp.GradScaler(x.device.type, enabled=False),  # bf16 and fp32 need no loss scaling
        amp_dtype=torch.bfloat16 if fast and native_bf16(x.device) else None,
        aux_weight=OptimConfig().aux_weight,
        grad_clip=None,
        device=x.device,
    )
    return partial(step, [(x, targets)])


def train_output(model: nn.Module, shape: tuple[int, ...]) -> Tensor:
    """The main logits of ``model`` (on the meta device) in training mode for an input of ``shape``."""
    with torch.no_grad():
        output = model.train()(torch.zeros(*shape, device="meta"))
    model.eval()
    return output.logits if isinstance(output, AuxOutput) else output
