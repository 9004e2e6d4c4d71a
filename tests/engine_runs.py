"""Set-ups the engine tests share: a quick run's config, a stand-in segmentation model and tiny datasets."""

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from dla.config import Config
from dla.data.meta import DatasetMeta, default_palette
from dla.engine.config import load_config
from dla.models import register_model

# What every quick test run shares: no loader processes, no TensorBoard, a log record and an evaluation per epoch.
QUICK = ("data.workers=0", "eval.every_epochs=1", "log.every_iterations=1", "log.tensorboard=false")


def quick_config(out_dir: Path, *overrides: str) -> Config:
    """The default config for a quick run into ``out_dir``, then ``overrides`` (``--set`` strings)."""
    return load_config(None, [f"out_dir={out_dir}", *QUICK, *overrides])


@register_model
def engine_train_tiny(
    num_classes: int = 3, in_chans: int = 3, down_ratio: int = 2, pretrained_backbone=None, **kwargs
) -> nn.Module:
    """A stand-in segmentation model: conv-BN-ReLU then a 1x1 classifier, logits at the input resolution."""
    return nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


class Squares(Dataset):
    """``length`` 32x32 images of a bright (class 1) or dark (class 2) square on class 0, top row ignored.

    With ``augment``, a random horizontal flip drawn from torch's global generator, as the real
    transforms draw theirs.
    """

    meta = DatasetMeta("squares", ("background", "bright", "dark"), tuple(default_palette(3)))

    def __init__(self, length: int = 8, augment: bool = True) -> None:
        self.length, self.augment = length, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        g = torch.Generator().manual_seed(index)
        y, x = torch.randint(0, 20, (2,), generator=g).tolist()
        label = torch.zeros(32, 32, dtype=torch.int64)
        label[y : y + 12, x : x + 12] = 1 + index % 2
        label[0] = 255
        image = 0.3 * torch.randn(3, 32, 32, generator=g) + (label == 1).float() - (label == 2).float()
        if self.augment and torch.rand(()) < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        return image, label


def squares(length: int = 8):
    return Squares(length), Squares(4, augment=False)
