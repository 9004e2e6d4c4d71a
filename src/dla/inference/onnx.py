"""ONNX export, and onnxruntime (or OpenVINO) running an exported graph as a PyTorch module.

What the graph holds. Input ``image``: float32 ``N x 3 x H x W``, already *normalised* (``(rgb / 255 - mean) /
std`` with the dataset's mean and std); output ``logits``: what the PyTorch model returns in eval mode
(segmentation and boundaries: ``N x C x H x W`` at the input's resolution, the final upsampling included;
classification: ``N x C``). Normalisation stays outside the graph, as it is outside the PyTorch model, so the
one pre-processing code of each task (``to_input``, the eval transforms) serves both, and an exported graph
and its checkpoint are checked against each other on identical inputs. BatchNorm is folded into the
convolutions before export (``fold_batchnorm``), as the fast path does; a BatchNorm that does not follow a
convolution (DenseNet's pre-activation BN-ReLU-conv, after a concatenation) stays a ``BatchNormalization``.
Softmax and argmax stay outside too: the tasks' test-time procedure (scales, flips, windows) sums
probabilities of several runs.

Batch, height and width are dynamic: one file serves any image size the model accepts (from 32 x 32).

onnx, onnxruntime and onnxscript are the optional extra ``dla[export]``; they are imported when used.
"""

import importlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import DLAError
from .fold import example_input, fold_batchnorm

DEFAULT_OPSET = 18
MIN_SIZE = 32  # the least height and width the graph takes (see export_onnx)
INPUT_NAME, OUTPUT_NAME = "image", "logits"
_EXPORT_EXTRA = "pip install 'dla[export]'"


def require(module: str, install: str = _EXPORT_EXTRA) -> ModuleType:
    """``import module``, or a DLAError saying how to install it (the export packages are an optional extra)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DLAError(f"{module} is not installed ({e}); {install}") from None


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_size: tuple[int, int] = (224, 224),
    opset: int = DEFAULT_OPSET,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model`` (eval mode, BatchNorm folded) to ``path`` as ONNX with dynamic batch, height and width.

    ``model`` is untouched: a folded copy is exported. The graph is traced on a ``2 x 3 x H x W`` example of
    ``input_size`` (batch 2, since ``torch.export`` specialises sizes 0 and 1; for the same reason a size whose
    coarsest feature maps shrink to 1 fails, e.g. 64 x 96 for the Ladder DenseNet: trace at 128 or more); any
    size the model accepts works afterwards. What the graph's input and output are is in the module docstring.

    Exporter: ``torch.onnx.export(dynamo=True)`` (``torch.export``, then onnxscript), the exporter PyTorch
    maintains; the TorchScript one is deprecated since torch 2.9. It makes batch, height and width symbolic
    for all six families (DLA classification, DLA-up segmentation and boundaries, DeepLabv3, Ladder DenseNet,
    DFANet); the named dimensions (``batch``, ``height``, ``width``, which the file's input and output shapes
    show) make it fail rather than silently fix a size. Height and width are declared at least ``MIN_SIZE``
    (32): with an unbounded range the size expressions of the Ladder DenseNet's ceil-mode poolings keep
    ``Min`` terms, and the graph computed a wrong up-sampling size at 97 x 131 (a Concat of 25 and 32 rows);
    from 32 on they simplify away and every family matches PyTorch (``tests/test_export_onnx.py``). Its cost
    is export time (symbolic shape reasoning: seconds for DLA, ~30 s for DenseNet-121 on one core). Opset 18
    by default: ONNX Runtime supports it fully, and it is the lowest opset at which the exporter's library
    is written, so no conversion pass runs.

    ``metadata`` goes into the file's ``metadata_props`` (``dla.model_name``, ``dla.config``, ...; see
    ``dla.commands.loading``); ``dla.input`` and, for a model with one, ``dla.output_stride`` are added. The file
    is written to a temporary name in the same folder and renamed, so ``path`` is never half-written.
    Returns ``path``.
    """
    require("onnxscript")
    require("onnx")
    path = Path(path)
    example = example_input(model, input_size, batch=2)
    folded = fold_batchnorm(model, example).cpu()
    example = example.cpu()
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=MIN_SIZE), 3: torch.export.Dim("width", min=MIN_SIZE)}
    try:
        program = torch.onnx.export(
            folded,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=(dims,),
            verbose=False,
        )
    except Exception as e:  # torch.export's many error types: data-dependent control flow, unsupported operators
        raise DLAError(f"cannot export {type(model).__name__} to ONNX: {e}") from e
    assert program is not None  # dynamo=True always returns the program
    props = program.model.metadata_props
    props["dla.input"] = f"{INPUT_NAME}: float32 N x 3 x H x W, normalised: (rgb / 255 - mean) / std of dla.dataset_meta"
    if isinstance(getattr(model, "output_stride", None), int):
        props["dla.output_stride"] = str(model.output_stride)
    props.update(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        program.save(tmp, external_data=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class ExportedModel(nn.Module):
    """An exported graph run by another runtime, called like the PyTorch model it was exported from.

    ``forward`` takes the graph's input (``N x 3 x H x W`` float32, normalised) on any device and returns its
    first output as a float32 tensor on that device. No parameters and no train mode: ``eval()``, ``train()``
    and ``to()`` change nothing, so the tasks' evaluation and prediction run it unchanged.

    ``metadata`` is the file's ``metadata_props``. ``output_stride`` is the stride the graph was exported at
    (DeepLabv3, from ``dla.output_stride``), fixed in the graph: ``set_output_stride`` accepts only that one,
    so that ``eval.output_stride`` is honoured or refused, never silently ignored.
    """

    def __init__(self, name: str, metadata: Mapping[str, str]) -> None:
        super().__init__()
        self.name, self.metadata = name, dict(metadata)
        stride = self.metadata.get("dla.output_stride")
        self.output_stride = int(stride) if stride is not None else None

    def run(self, image: np.ndarray) -> np.ndarray:
        """The graph's first output for ``image`` (``N x 3 x H x W`` float32)."""
        raise NotImplementedError

    def set_output_stride(self, output_stride: int) -> None:
        if output_stride != self.output_stride:
            fixed = "without an output stride" if self.output_stride is None else f"at output stride {self.output_stride}"
            raise DLAError(
                f"{self.name} was exported {fixed} and cannot run at {output_stride}; "
                f"export the checkpoint with eval.output_stride {output_stride}, or drop --output-stride"
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.run(x.detach().cpu().float().numpy())
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


class OnnxRuntimeModel(ExportedModel):
    """An ONNX file run by an ``onnxruntime.InferenceSession`` on the CPU provider (``ExportedModel``)."""

    def __init__(self, session: Any, name: str = "the ONNX model") -> None:
        super().__init__(name, session.get_modelmeta().custom_metadata_map)
        self.session, self.input_name = session, session.get_inputs()[0].name

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], threads: int | None = None) -> "OnnxRuntimeModel":
        """The graph in ``path`` with ``threads`` intra-op threads (default: torch's, ``torch.get_num_threads()``,
        so ``dla bench --threads`` applies to it too). Idle threads do not spin: onnxruntime's default busy-wait
        after each call would hold the cores while the next thing runs (the task's post-processing, or the other
        backends ``dla bench`` interleaves with it). A DLAError names the file when it is missing or not a graph
        onnxruntime runs."""
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(os.fspath(_existing(path)), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail / InvalidGraph / ... types
            raise DLAError(f"onnxruntime cannot load {path}: {e}") from None
        return cls(session, str(path))

    def run(self, image: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: image})[0]


class OpenVinoModel(ExportedModel):
    """An ONNX file compiled by OpenVINO for the CPU (``ExportedModel``); needs ``pip install openvino``.

    Compiled at fp32 (``INFERENCE_PRECISION_HINT``): OpenVINO's CPU default is bf16 where the CPU has it, which
    changes outputs by ~1e-2 relative; the fast path's bf16 is a separate, checked choice (``dla.optimize``).
    """

    def __init__(self, compiled: Any, name: str, metadata: Mapping[str, str]) -> None:
        super().__init__(name, metadata)
        self.compiled = compiled

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "OpenVinoModel":
        """The graph in ``path``, compiled for the CPU; its ``metadata_props`` read with onnx."""
        ov = require("openvino", "pip install openvino")
        onnx = require("onnx")
        model = onnx.load(os.fspath(_existing(path)), load_external_data=False)
        metadata = {prop.key: prop.value for prop in model.metadata_props}
        return cls(ov.Core().compile_model(os.fspath(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), str(path), metadata)

    def run(self, image: np.ndarray) -> np.ndarray:
        return self.compiled(image)[0]


def onnxruntime_backend(model: nn.Module, example: Tensor) -> nn.Module:
    """The ``onnxruntime`` backend: ``model`` exported (``export_onnx``, traced at ``example``'s height and width)
    to a temporary folder and loaded into an ``OnnxRuntimeModel``; the folder is gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="dla-onnx-") as folder:
        return OnnxRuntimeModel.from_file(export_onnx(model, Path(folder) / "model.onnx", input_size=_size(example)))


def openvino_backend(model: nn.Module, example: Tensor) -> nn.Module:
    """The ``openvino`` backend: as ``onnxruntime_backend``, the graph compiled by OpenVINO instead. OpenVINO is
    no dependency of dla, not even an optional one; without it a DLAError says ``pip install openvino``."""
    require("openvino", "pip install openvino")
    with tempfile.TemporaryDirectory(prefix="dla-openvino-") as folder:
        return OpenVinoModel.from_file(export_onnx(model, Path(folder) / "model.onnx", input_size=_size(example)))


def _existing(path: str | os.PathLike[str]) -> Path:
    if not Path(path).is_file():
        raise DLAError(f"ONNX model {path} not found")
    return Path(path)


def _size(example: Tensor) -> tuple[int, int]:
    if example.dim() != 4:
        raise DLAError(f"the example input should be N x 3 x H x W, got shape {tuple(example.shape)}")
    return int(example.shape[-2]), int(example.shape[-1])
