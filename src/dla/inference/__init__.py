"""Fast inference: BatchNorm folding, the ``optimize`` fast path, and backends by name."""

from .backends import BACKENDS, Backend, get_backend
from .fast import FastModel, native_bf16, optimize, resolve_precision
from .fold import conv_bn_pairs, fold_batchnorm, fold_conv_bn

__all__ = [
    "BACKENDS",
    "Backend",
    "FastModel",
    "conv_bn_pairs",
    "fold_batchnorm",
    "fold_conv_bn",
    "get_backend",
    "native_bf16",
    "optimize",
    "resolve_precision",
]
