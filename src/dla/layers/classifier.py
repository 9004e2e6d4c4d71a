"""The classifier of the classification networks (DLA, ResNet, DenseNet): made by one function for their
constructors and ``reset_classifier`` alike."""

from torch import nn


def create_classifier(num_features: int, num_classes: int, conv: bool = False) -> nn.Module:
    """A linear classifier of ``num_features`` pooled features into ``num_classes`` scores, or ``nn.Identity``
    for ``num_classes=0`` (the pooled features are then the output).

    ``conv=True`` stores it as a 1x1 convolution, ``(N, C, 1, 1) -> (N, num_classes, 1, 1)``, as the DLA
    authors' checkpoints do (``fc.weight`` of shape ``(num_classes, C, 1, 1)``); otherwise ``nn.Linear``,
    ``(N, C) -> (N, num_classes)``, torchvision's. PyTorch's default initialisation in both cases.
    """
    if num_classes <= 0:
        return nn.Identity()
    if conv:
        return nn.Conv2d(num_features, num_classes, 1)
    return nn.Linear(num_features, num_classes)


__all__ = ["create_classifier"]
