"""What the dense tasks (segmentation, boundaries: a map of logits at the input's resolution) share: the model, the
joint augmentation of image and label, the losses that ``optim.loss`` names, and images as a normalised batch."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..config import Config, pair, required
from ..data.meta import DatasetMeta
from ..data.transforms import train_transforms
from ..errors import DLAError
from ..losses import LossFunction, LossTerm, loss_terms
from ..models import create_model
from .visualize import as_rgb_image


def dense_model(cfg: Config, num_classes: int, weights: Any) -> tuple[nn.Module, dict[str, Any]]:
    """A dense-prediction model with ``num_classes`` outputs, ``model.down_ratio`` when set (DLA's), and the
    keyword arguments that rebuild it; a model that does not take them is named with what it refused."""
    model, name = cfg.model, required(cfg.model.name, "model.name")
    kwargs = {"num_classes": num_classes, **({"down_ratio": model.down_ratio} if model.down_ratio else {}), **model.kwargs}
    try:
        return create_model(name, pretrained_backbone=weights, **kwargs), kwargs
    except TypeError as e:  # an argument the model does not have
        raise DLAError(f"model {name} cannot be built with {kwargs} (model.down_ratio, model.kwargs): {e}") from e


def dense_train_transform(cfg: Config, meta: DatasetMeta) -> Callable:
    """The dense tasks' joint augmentation of ``cfg.data``: scale, rotate, crop, flip, colour jitter."""
    data = cfg.data
    return train_transforms(
        meta,
        pair(data.crop_size, "data.crop_size"),
        pair(data.scale, "data.scale"),
        required(data.rotation, "data.rotation"),
        data.flip,
        data.color_jitter,
    )


def dense_loss_terms(cfg: Config, losses: Mapping[str, LossFunction]) -> list[LossTerm]:
    """The terms of ``optim.loss``, checked against the ``losses`` the task offers (a DLAError naming the entry)."""
    return loss_terms(required(cfg.optim.loss, "optim.loss"), losses)


def dense_loss_problems(cfg: Config, losses: Mapping[str, LossFunction]) -> list[str]:
    """What is wrong with ``optim.loss`` for a task offering ``losses``, for ``Task.check``."""
    try:
        dense_loss_terms(cfg, losses)
    except DLAError as e:
        return [str(e)]
    return []


def to_input(images: Sequence[Image.Image | np.ndarray], meta: DatasetMeta, device: str | torch.device) -> Tensor:
    """RGB images of one size (PIL, or ``H x W x 3`` uint8) as a normalised ``N x 3 x H x W`` float tensor on ``device``."""
    pixels = [np.asarray(as_rgb_image(image), dtype=np.float32) for image in images]
    if len({array.shape for array in pixels}) > 1:
        raise DLAError(f"a batch holds images of one size, got {sorted({a.shape[1::-1] for a in pixels})} (width, height)")
    mean, std = (np.asarray(v, dtype=np.float32) for v in (meta.mean, meta.std))
    tensor = torch.from_numpy((np.stack(pixels) / 255.0 - mean) / std).permute(0, 3, 1, 2)
    return tensor.contiguous().to(device)


__all__ = ["dense_loss_problems", "dense_loss_terms", "dense_model", "dense_train_transform", "to_input"]
