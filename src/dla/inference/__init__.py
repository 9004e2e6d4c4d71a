"""Fast inference: BatchNorm folding, the ``optimize`` fast path, ONNX export, and backends by name."""

from .backends import BACKENDS, Backend, get_backend
from .fast import FastModel, native_bf16, optimize, resolve_precision
from .fold import conv_bn_pairs, example_input, fold_batchnorm, fold_conv_bn
from .onnx import ExportedModel, OnnxRuntimeModel, OpenVinoModel, export_onnx

__all__ = [
    "BACKENDS",
    "Backend",
    "ExportedModel",
    "FastModel",
    "OnnxRuntimeModel",
    "OpenVinoModel",
    "conv_bn_pairs",
    "example_input",
    "export_onnx",
    "fold_batchnorm",
    "fold_conv_bn",
    "get_backend",
    "native_bf16",
    "optimize",
    "resolve_precision",
]
