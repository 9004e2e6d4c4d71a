"""What is timed: a model on random input, run by a backend, and the post-processing of its output.

The timed step is ``postprocess(module(x))`` under ``torch.no_grad()``, with ``x`` already on the device (data
loading and host-device copies are excluded). The post-processing follows the model's output (found by a
forward pass on the meta device, no arithmetic):

- ``argmax``: a dense output of several classes at the input resolution, ``(N, C, H, W)`` (segmentation): the
  per-pixel class. The models up-sample their logits to the input size themselves, so the up-sampling and the
  argmax are both timed, which is what a user of the label map waits for;
- ``sigmoid``: a dense output of one channel (boundaries): the per-pixel probability;
- ``logits``: anything else (classification): the logits as returned.

Backends come from ``dla.inference.BACKENDS``: a name and a function ``(eval model, example input) -> module``
that is timed in place of the model (``eager`` returns the model itself). Backends leave the model they are given
unchanged (``optimize`` works on a copy), so every backend of a configuration is prepared from one model.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from ..errors import DLAError
from ..inference import get_backend
from ..inference.tiled import SlidingWindow
from ..models import create_model
from .timing import Step

POSTPROCESS: dict[str, Callable[[Tensor], Tensor]] = {
    "argmax": lambda y: y.argmax(1),
    "sigmoid": torch.sigmoid,
    "logits": lambda y: y,
}


def backend_names(names: Sequence[str]) -> list[str]:
    """The backends to run, ``eager`` first (added if missing: every ratio is taken against it); unknown ones refused."""
    for name in names:
        get_backend(name)
    return ["eager"] + [name for name in dict.fromkeys(names) if name != "eager"]


def prepare_backend(name: str, model: nn.Module, example: Tensor, window: Sequence[int] | None = None) -> nn.Module:
    """The module that backend ``name`` makes of the eval ``model``, run on overlapping windows of ``window`` (H, W)
    when given (``SlidingWindow``). A backend whose package is missing says how to install it (a DLAError)."""
    module = get_backend(name)(model, example if window is None else example[..., : window[0], : window[1]])
    return module if window is None else SlidingWindow(module, (window[0], window[1]))


def parse_model_args(pairs: Sequence[str]) -> dict[str, Any]:
    """``["backbone=dla46_c", "num_classes=11"]`` -> keyword arguments of ``create_model`` (values read as YAML)."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DLAError(f"model argument {pair!r}: write KEY=VALUE, e.g. backbone=dla46_c or num_classes=11")
        kwargs[key] = yaml.safe_load(value)
    return kwargs


def build_model(name: str, model_kwargs: Mapping[str, Any], device: torch.device) -> nn.Module:
    """The registered model ``name`` in eval mode on ``device``, random weights (speed does not depend on them)."""
    return create_model(name, **model_kwargs).eval().to(device)


def meta_model(name: str, model_kwargs: Mapping[str, Any]) -> nn.Module:
    """The model on the meta device: shapes, parameters and multiply-adds without memory or arithmetic."""
    with torch.device("meta"):
        return create_model(name, **model_kwargs).eval()


def input_shape(model_kwargs: Mapping[str, Any], batch: int, size: Sequence[int]) -> tuple[int, int, int, int]:
    """``(batch, in_chans, H, W)``."""
    return (batch, model_kwargs.get("in_chans", 3), size[0], size[1])


def output_kind(model: nn.Module, shape: Sequence[int]) -> str:
    """``argmax``, ``sigmoid`` or ``logits`` (module docstring) from the output of ``model`` on the meta device."""
    with torch.no_grad():
        y = model(torch.zeros(*shape, device="meta"))
    if y.ndim != 4 or tuple(y.shape[-2:]) != tuple(shape[-2:]):
        return "logits"
    return "sigmoid" if y.shape[1] == 1 else "argmax"


def inference_step(module: nn.Module, x: Tensor, kind: str) -> Step:
    """One timed inference: ``POSTPROCESS[kind](module(x))`` without gradients."""
    postprocess = POSTPROCESS[kind]

    def step() -> Tensor:
        with torch.no_grad():
            return postprocess(module(x))

    return step
