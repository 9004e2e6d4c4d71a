"""Folding BatchNorm into the convolution before it, for inference.

In eval mode BatchNorm is an affine map per channel, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``;
when ``x`` is a convolution's output and nothing else reads ``x``, the map folds into that convolution:
``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``.
The BatchNorm becomes ``nn.Identity``. The folded model computes the same function (up to rounding) with
one pass over each map fewer.

Which BatchNorm follows which convolution is found by running the model once on an example input, not by
reading module names: a forward hook follows each convolution's output tensor (by weak reference, so the run
costs the memory of a normal forward pass), and a BatchNorm whose
input *is* that tensor, unchanged since (same ``_version``), is a candidate. A
``torch.overrides.TorchFunctionMode`` counts every torch call that reads each convolution output; a pair is
folded only if the BatchNorm is the output's single reader (a residual that also reads it would see the
folded values). Modules called more than once must pair the same way at every call. What does not qualify
stays as it is, so folding never changes what the model computes, only how fast.
"""

import copy
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves


@dataclass
class _Output:
    """One call's output of a convolution, followed while it lives: who made it, its version, its readers."""

    conv: nn.Module
    ref: "weakref.ref[Tensor]"
    version: int
    reads: int = 0


class _ReadCounter(TorchFunctionMode):
    """Counts the torch calls (returning a tensor) that read each tracked convolution output while it lives.

    Outputs are held by weak references, so the probe's memory is that of a normal forward pass; a tensor that
    dies leaves the table before its id can be reused.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, _Output] = {}

    def track(self, conv: nn.Module, out: Tensor) -> _Output:
        key = id(out)
        record = _Output(conv, weakref.ref(out, lambda _: self.live.pop(key, None)), out._version)
        self.live[key] = record
        return record

    def find(self, x: Tensor) -> _Output | None:
        record = self.live.get(id(x))
        return record if record is not None and record.ref() is x else None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if any(isinstance(leaf, Tensor) for leaf in tree_leaves(out)):
            for leaf in tree_leaves((args, kwargs or {})):
                record = self.find(leaf) if isinstance(leaf, Tensor) else None
                if record is not None:
                    record.reads += 1
        return out


def conv_bn_pairs(model: nn.Module, example: Tensor) -> list[tuple[str, str]]:
    """Names ``(conv, bn)`` of the ``nn.Conv2d`` -> ``nn.BatchNorm2d`` pairs of ``model`` that can be folded:
    at every call the BatchNorm reads the convolution's output, unchanged, and nothing else reads it (module
    docstring). Runs ``model`` once on ``example`` (``N x C x H x W``) without gradients."""
    names = {module: name for name, module in model.named_modules(remove_duplicate=False)}
    outputs: list[_Output] = []
    calls: Counter[nn.Module] = Counter()
    paired: Counter[tuple[nn.Module, nn.Module]] = Counter()
    counter = _ReadCounter()

    def after_conv(conv: nn.Module, args: Any, out: Tensor) -> None:
        calls[conv] += 1
        outputs.append(counter.track(conv, out))

    def before_bn(bn: nn.Module, args: tuple) -> None:
        calls[bn] += 1
        record = counter.find(args[0])
        if record is not None and args[0]._version == record.version:
            paired[record.conv, bn] += 1

    with _hooks(model, after_conv, before_bn), torch.no_grad(), counter:
        model(example)
    return [
        (names[conv], names[bn])
        for (conv, bn), count in paired.items()
        if count == calls[conv] == calls[bn] and all(output.reads == 1 for output in outputs if output.conv is conv)
    ]


class _hooks:
    """Forward hooks on every ``nn.Conv2d`` and pre-hooks on every eval-mode ``nn.BatchNorm2d`` with running
    statistics, removed on exit."""

    def __init__(self, model: nn.Module, after_conv: Any, before_bn: Any) -> None:
        self.handles = [m.register_forward_hook(after_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
        self.handles += [m.register_forward_pre_hook(before_bn) for m in _foldable_norms(model)]

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()


def _foldable_norms(model: nn.Module) -> Iterator[nn.BatchNorm2d]:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not module.training and module.running_var is not None:
            yield module


def example_input(model: nn.Module, size: tuple[int, int] = (224, 224), batch: int = 1) -> Tensor:
    """Zeros of ``batch x C x H x W`` on the model's device, ``C`` the input channels of its first convolution
    (3 if it has none): an input to run or trace a model with when only its shape matters."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = first.in_channels if first is not None else 3
    return torch.zeros(batch, channels, *size, device=next(model.parameters()).device)


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` (eval mode) into ``conv`` in place: ``conv`` gains a bias if it had none."""
    mean, var = bn.running_mean, bn.running_var
    if mean is None or var is None:
        raise ValueError(f"{bn} has no running statistics to fold")
    scale = var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)


def fold_batchnorm(model: nn.Module, example: Tensor | None = None, inplace: bool = False) -> nn.Module:
    """``model`` in eval mode with every foldable BatchNorm folded into its convolution and replaced by
    ``nn.Identity`` (module docstring says which qualify).

    Args:
        model: any network; it is put in eval mode.
        example: an input to find the pairs with (default ``example_input(model)``: 224 x 224 zeros);
            any size the model accepts gives the same pairs.
        inplace: fold into ``model`` itself; by default a deep copy is folded and ``model`` is untouched.

    The folded model is for inference: its state dict has no BatchNorm entries and convolutions with
    biases, so it is not a checkpoint of the original architecture; save the original.
    """
    model = (model if inplace else copy.deepcopy(model)).eval()
    if example is None:
        example = example_input(model)
    for conv_name, bn_name in conv_bn_pairs(model, example):
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)  # conv_bn_pairs pairs only these
        fold_conv_bn(conv, bn)
        model.set_submodule(bn_name, nn.Identity())
    return model
