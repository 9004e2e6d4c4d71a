"""Building the backbone of a composite model (DLASeg, DeepLabv3, Ladder DenseNet): the registry look-up, the
family check and the ImageNet weights, in the model's builder function, outside any ``__init__``
(torchvision's ``_deeplabv3_resnet`` pattern: the composite's ``__init__`` takes the built backbone)."""

import os
from typing import TypeVar, Union

from torch import nn

from ..errors import DLAError
from ._pretrained import load_pretrained
from ._registry import model_entrypoint

Backbone = TypeVar("Backbone", bound=nn.Module)


def create_backbone(
    backbone: str | nn.Module,
    family: type[Backbone],
    owner: str,
    example: str,
    pretrained: Union[bool, str, "os.PathLike[str]", None] = None,
    **kwargs,
) -> Backbone:
    """The backbone of an ``owner`` model: registered model ``backbone`` built with ``kwargs`` (or a built
    module, taken as it is), checked to be a ``family`` network (``example`` names one for the error), with
    ``pretrained`` weights loaded (``True``, a path or a URL, as ``load_pretrained``) when given."""
    model = model_entrypoint(backbone)(**kwargs) if isinstance(backbone, str) else backbone
    if not isinstance(model, family):
        name = backbone if isinstance(backbone, str) else type(backbone).__name__
        raise DLAError(f"the {owner} backbone must be a {family.__name__} (e.g. {example!r}), got {name!r}")
    if pretrained:
        load_pretrained(model, pretrained)
    return model


__all__ = ["create_backbone"]
