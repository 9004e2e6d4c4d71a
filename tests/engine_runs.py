"""Set-ups the engine tests share: a quick run's config, stand-in models, tiny datasets and a boundary layout."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from dla.config import Config
from dla.data.meta import DatasetMeta, default_palette
from dla.engine.config_loader import load_config
from dla.engine.trainer import train
from dla.models import PretrainedCfg, register_model

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
    model = nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1))
    model.pretrained_cfg = PretrainedCfg(first_conv="0", classifier="3", paper_name="a stand-in")  # pretrained= works
    return model


@register_model
def engine_train_tiny_gn(num_classes: int = 3, in_chans: int = 3, **kwargs) -> nn.Module:
    """``engine_train_tiny`` with GroupNorm: no batch statistics, so a batch split into steps trains the same."""
    return nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


@register_model
def engine_classify_tiny(num_classes: int = 2, in_chans: int = 3, **kwargs) -> nn.Module:
    """A stand-in classifier: conv-BN-ReLU, global average pooling, a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(in_chans, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


class Generated(Dataset):
    """``length`` samples, each drawn from a generator seeded by its index; with ``augment``, a random horizontal
    flip drawn from torch's global generator, as the real transforms draw theirs."""

    def __init__(self, length: int = 8, augment: bool = True) -> None:
        self.length, self.augment = length, augment

    def __len__(self) -> int:
        return self.length


class Shades(Generated):
    """16x16 noisy images, class 1 brighter than class 0 (alternating)."""

    meta = DatasetMeta("shades", ("dark", "bright"), tuple(default_palette(2)))

    def __getitem__(self, index: int):
        g = torch.Generator().manual_seed(index)
        image = 0.5 * torch.randn(3, 16, 16, generator=g) + (index % 2) - 0.5
        if self.augment and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image, index % 2


class Squares(Generated):
    """32x32 images of a bright (class 1) or dark (class 2) square on class 0, top row ignored."""

    meta = DatasetMeta("squares", ("background", "bright", "dark"), tuple(default_palette(3)))

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


def squares(length: int = 8, val_length: int = 4):
    return Squares(length), Squares(val_length, augment=False)


def shades(length: int = 8, val_length: int = 5):
    return Shades(length), Shades(val_length, augment=False)


def write_boundary_folder(root: Path, counts: dict[str, int], size: tuple[int, int]) -> Path:
    """A generic boundary layout (``boundary_folder``) at ``root``: ``counts[split]`` noisy images of ``size``
    (height, width), each of a bright rectangle whose one-pixel outline is the boundary map."""
    height, width = size
    rng = np.random.default_rng(0)
    for split, count in counts.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            top, left = rng.integers(height // 8, 3 * height // 8, 2)
            bottom, right = top + height * 15 // 32, left + width // 2
            pixels = rng.integers(0, 60, (height, width, 3))
            pixels[top:bottom, left:right] += 150
            outline = np.zeros((height, width), np.uint8)
            outline[top:bottom, left:right] = 255
            outline[top + 1 : bottom - 1, left + 1 : right - 1] = 0
            Image.fromarray(pixels.astype(np.uint8)).save(root / "images" / split / f"{i}.png")
            Image.fromarray(outline).save(root / "labels" / split / f"{i}.png")
    return root


def train_tiny(out: Path, task: str, data_root: Path | None = None) -> str:
    """One epoch of a stand-in model of ``task`` into ``out`` (seconds on a CPU); its ``last.pt``. Segmentation trains on
    ``squares``, classification on ``shades``, boundaries on a ``write_boundary_folder`` of 32x32 images written into
    ``data_root``."""
    one_epoch = ("optim.epochs=1",)
    if task == "segmentation":
        train(quick_config(out, "model.name=engine_train_tiny", "data.batch_size=4", *one_epoch), datasets=squares())
    elif task == "classification":
        overrides = ("task=classification", "model.name=engine_classify_tiny", "data.crop_size=[16, 16]", "data.resize=[16]")
        train(quick_config(out, *overrides, "data.batch_size=4", *one_epoch), datasets=shades())
    else:
        assert data_root is not None, "boundaries train on a folder the test writes"
        root = write_boundary_folder(data_root, {"train": 2, "val": 1}, (32, 32))
        overrides = ("task=boundaries", "model.name=engine_train_tiny", "data.dataset=boundary_folder", f"data.root={root}")
        train(quick_config(out, *overrides, "data.crop_size=[32, 32]", "data.batch_size=2", *one_epoch, "eval.thresholds=9"))
    return str(out / "checkpoints" / "last.pt")


def write_image(path: Path, size: tuple[int, int] = (24, 20), seed: int = 0, mode: str = "RGB") -> str:
    """A noisy image of ``size`` (width, height) in ``mode`` at ``path`` (folders created); its path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return str(path)
