"""Inference backends by name, for ``dla bench --backend``, ``dla predict --backend`` and ``dla eval --backend``.

A backend is a function ``(model, example) -> module``: it takes a network in eval mode and an input it
accepts (``N x C x H x W``, on the model's device) and returns a module computing the same outputs, called
like the model. ``eager`` is the model itself (fp32, as trained).
"""

from collections.abc import Callable

from torch import Tensor, nn

from ..errors import DLAError
from .fast import optimize
from .onnx import onnxruntime_backend, openvino_backend

Backend = Callable[[nn.Module, Tensor], nn.Module]


def eager(model: nn.Module, example: Tensor) -> nn.Module:
    """The model as it is, in eval mode: the baseline every ratio is measured against."""
    return model.eval()


def fast(model: nn.Module, example: Tensor) -> nn.Module:
    """``optimize(model)``: BatchNorm folded, channels_last, bf16 where native, inference mode."""
    return optimize(model, example=example)


def fast_fp32(model: nn.Module, example: Tensor) -> nn.Module:
    """``optimize(model, precision="fp32")``: the fast path without bf16, for eager's predictions to rounding."""
    return optimize(model, precision="fp32", example=example)


def compiled(model: nn.Module, example: Tensor) -> nn.Module:
    """``optimize(model, compile=True)``: the fast path compiled by ``torch.compile`` (inductor)."""
    return optimize(model, example=example, compile=True)


BACKENDS: dict[str, Backend] = {
    "eager": eager,
    "fast": fast,
    "fast_fp32": fast_fp32,
    "compile": compiled,
    "onnxruntime": onnxruntime_backend,  # the model exported to ONNX, run by onnxruntime (pip install 'dla[export]')
    "openvino": openvino_backend,  # the same ONNX graph, compiled by OpenVINO (pip install openvino)
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a DLAError lists the known ones."""
    if name not in BACKENDS:
        raise DLAError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    return BACKENDS[name]
