"""The model registry: ``register_model``, ``create_model``, ``list_models`` (timm's conventions)."""

import fnmatch
import os
from collections.abc import Callable, Sequence
from typing import Union

from torch import nn

from ..errors import DLAError

ModelFactory = Callable[..., nn.Module]

_model_entrypoints: dict[str, ModelFactory] = {}


def register_model(fn: ModelFactory) -> ModelFactory:
    """Register a model constructor under its function name; ``create_model(name)`` then builds it.

    The constructor takes the model's keyword arguments (``num_classes``, ``in_chans``, ``output_stride``,
    ``drop_rate``, ...) and returns an ``nn.Module`` that has a ``pretrained_cfg`` attribute.
    """
    name = fn.__name__
    if name in _model_entrypoints:
        raise DLAError(f"a model named {name!r} is already registered")
    _model_entrypoints[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"dla*x*"``), in registration order."""
    return [name for name in _model_entrypoints if fnmatch.fnmatchcase(name, pattern)]


def model_entrypoint(name: str) -> ModelFactory:
    """The registered constructor of ``name``; a ``DLAError`` listing the known names otherwise."""
    if name not in _model_entrypoints:
        raise DLAError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _model_entrypoints[name]


def create_model(
    name: str,
    pretrained: Union[bool, str, "os.PathLike[str]"] = False,
    num_classes: int | None = None,
    in_chans: int = 3,
    features_only: bool = False,
    out_indices: Sequence[int] = (1, 2, 3, 4, 5),
    output_stride: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model, optionally with pretrained weights and as a feature extractor.

    Args:
        name: a name from ``list_models()``.
        pretrained: ``True`` for the published weights of ``model.pretrained_cfg`` (downloaded once, hash
            checked, into the ``torch.hub`` cache), or a local path (``str`` or ``os.PathLike``) or URL of a checkpoint.
        num_classes: classifier outputs (default: the model's own, 1000 for the ImageNet classifiers); with
            pretrained weights of another class count the backbone is loaded and the classifier is freshly
            initialised. ``0`` removes a classifier's head.
        in_chans: input channels; pretrained RGB filters are adapted (summed for 1, tiled otherwise).
        features_only: return a ``FeatureListNet`` whose forward gives the feature maps of ``out_indices``
            (the backbone's ``forward_intermediates``), with the backbone's own state-dict keys.
        out_indices: levels to return with ``features_only``, indices into ``feature_info`` (DLA: 0-5, ResNet
            and DenseNet: 0-4).
        output_stride: 32, 16 or 8; the last levels trade stride for dilation below 32. ``None``: the
            model's own (32 for classifiers, 16 for DeepLabv3).
        **kwargs: passed to the model's constructor (``drop_rate``, ...).
    """
    from ._features import Backbone, FeatureListNet
    from ._pretrained import load_pretrained

    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if output_stride is not None:
        kwargs["output_stride"] = output_stride
    model = model_entrypoint(name)(in_chans=in_chans, **kwargs)
    if pretrained:
        load_pretrained(model, pretrained)
    if features_only:
        if not isinstance(model, Backbone):
            raise DLAError(f"{name} is not a backbone: features_only=True needs a model with feature_info")
        model = FeatureListNet(model, out_indices)
    return model
