"""Joint image/label transforms for segmentation training and evaluation.

Every transform is a callable ``(image, label) -> (image, label)`` on a ``PIL.Image`` in mode ``RGB`` of
size ``W x H`` and a ``numpy`` integer label of shape ``(H, W)`` (class indices or the ignore value),
except :class:`ToTensorNormalize`, the last one, which returns tensors: ``float32 (3, H, W)`` and
``int64 (H, W)``. Geometric transforms move image and label together: the image is resampled
bilinearly, the label with nearest neighbour (labels are never blended); pixels that come from outside
the image get the ignore value in the label.

Randomness comes only from torch's global generator (``torch.rand`` / ``torch.randint``): DataLoader
seeds it per worker, and a checkpoint that saves ``torch.get_rng_state()`` resumes the same
augmentations, so ``torch.manual_seed`` makes a run reproducible.
"""

from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageEnhance

from ..constants import IGNORE_INDEX
from .meta import DatasetMeta

Pair = Tuple[Image.Image, np.ndarray]
Size = Union[int, Tuple[int, int]]
Colour = Tuple[int, int, int]


def _uniform(low: float, high: float) -> float:
    """A float uniform in ``[low, high)`` from torch's global generator."""
    return low + (high - low) * float(torch.rand(()))


def _label_image(label: np.ndarray) -> Image.Image:
    """A label as a 32-bit integer PIL image (mode ``I``), so that PIL's geometry applies to it unchanged."""
    return Image.fromarray(np.ascontiguousarray(label, dtype=np.int32))


def _label_array(image: Image.Image, dtype: np.dtype) -> np.ndarray:
    return np.asarray(image).astype(dtype)


def mean_colour(mean: Sequence[float]) -> Colour:
    """A normalisation mean on the 0..1 scale as an 8-bit RGB colour (padding that normalises to ~0)."""
    return tuple(int(round(255 * m)) for m in mean)


class Compose:
    """Apply transforms in order to an ``(image, label)`` pair."""

    def __init__(self, transforms: Iterable) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Image.Image, label: np.ndarray):
        for transform in self.transforms:
            image, label = transform(image, label)
        return image, label

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class RandomScale:
    """Resize both by a factor uniform in ``[min_scale, max_scale]``: ``(H, W) -> (round(sH), round(sW))``.

    Image bilinear (PIL antialiases when shrinking), label nearest; both use pixel-centre alignment, so
    they stay registered.
    """

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0) -> None:
        self.min_scale, self.max_scale = min_scale, max_scale

    def __call__(self, image: Image.Image, label: np.ndarray) -> Pair:
        scale = _uniform(self.min_scale, self.max_scale)
        width, height = image.size
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
        label = _label_array(_label_image(label).resize(size, Image.Resampling.NEAREST), label.dtype)
        return image, label

    def __repr__(self) -> str:
        return f"RandomScale({self.min_scale}, {self.max_scale})"


class RandomRotate:
    """Rotate both about the centre by an angle uniform in ``[-degrees, degrees]``; the size is kept.

    Corners that come from outside are ``fill`` in the image (black by default; :func:`train_transforms`
    passes the mean colour, which normalises to zero) and ``ignore_index`` in the label.
    """

    def __init__(self, degrees: float = 10.0, ignore_index: int = IGNORE_INDEX, fill: Colour = (0, 0, 0)) -> None:
        self.degrees, self.ignore_index, self.fill = degrees, ignore_index, tuple(fill)

    def __call__(self, image: Image.Image, label: np.ndarray) -> Pair:
        angle = _uniform(-self.degrees, self.degrees)
        image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=self.fill)
        rotated = _label_image(label).rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=self.ignore_index)
        return image, _label_array(rotated, label.dtype)

    def __repr__(self) -> str:
        return f"RandomRotate({self.degrees}, ignore_index={self.ignore_index})"


class RandomCrop:
    """Crop a random ``size = (h, w)`` window (an int means square) at the same place in both.

    A side shorter than the crop is first padded (after the content: bottom and right) with ``fill`` in
    the image (0 by default) and ``ignore_index`` in the label, so the output is always ``(h, w)``.
    """

    def __init__(self, size: Size, ignore_index: int = IGNORE_INDEX, fill: Colour = (0, 0, 0)) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.ignore_index, self.fill = ignore_index, tuple(fill)

    def __call__(self, image: Image.Image, label: np.ndarray) -> Pair:
        image, label = self._pad(image, label)
        crop_h, crop_w = self.size
        height, width = label.shape
        top = int(torch.randint(0, height - crop_h + 1, ()))
        left = int(torch.randint(0, width - crop_w + 1, ()))
        image = image.crop((left, top, left + crop_w, top + crop_h))
        return image, label[top : top + crop_h, left : left + crop_w].copy()

    def _pad(self, image: Image.Image, label: np.ndarray) -> Pair:
        height, width = label.shape
        new_h, new_w = max(height, self.size[0]), max(width, self.size[1])
        if (new_h, new_w) == (height, width):
            return image, label
        padded_image = Image.new("RGB", (new_w, new_h), self.fill)
        padded_image.paste(image, (0, 0))
        padded_label = np.full((new_h, new_w), self.ignore_index, dtype=label.dtype)
        padded_label[:height, :width] = label
        return padded_image, padded_label

    def __repr__(self) -> str:
        return f"RandomCrop({self.size}, ignore_index={self.ignore_index})"


class RandomHorizontalFlip:
    """Mirror both left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image: Image.Image, label: np.ndarray) -> Pair:
        if float(torch.rand(())) < self.p:
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), label[:, ::-1].copy()
        return image, label

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip({self.p})"


class ColorJitter:
    """Scale brightness, contrast and saturation of the image (label untouched), in that fixed order.

    Each factor is uniform in ``[max(0, 1 - x), 1 + x]`` for strength ``x``; a strength of 0 draws nothing.
    """

    _ENHANCERS = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0) -> None:
        self.strengths = (brightness, contrast, saturation)

    def __call__(self, image: Image.Image, label: np.ndarray) -> Pair:
        for enhancer, strength in zip(self._ENHANCERS, self.strengths):
            if strength > 0:
                image = enhancer(image).enhance(_uniform(max(0.0, 1 - strength), 1 + strength))
        return image, label

    def __repr__(self) -> str:
        return "ColorJitter(brightness={}, contrast={}, saturation={})".format(*self.strengths)


class ToTensorNormalize:
    """``(RGB image W x H, label (H, W))`` -> ``(float32 (3, H, W) = (x / 255 - mean) / std, int64 (H, W))``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: Image.Image, label: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        pixels = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
        tensor = (pixels.float().div_(255) - self.mean) / self.std
        return tensor.contiguous(), torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))

    def __repr__(self) -> str:
        return f"ToTensorNormalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def train_transforms(
    meta: DatasetMeta,
    crop_size: Optional[Size],
    scale: Optional[Tuple[float, float]] = (0.5, 2.0),
    rotation: float = 10.0,
    flip: bool = True,
    color_jitter: float = 0.0,
) -> Compose:
    """The training augmentation: scale, rotate, crop, flip, colour jitter, then tensor + normalise.

    ``crop_size``: ``(h, w)`` or an int (square), ``None`` for no crop (then samples keep varying sizes
    and batch only with batch size 1). ``scale=None``, ``rotation=0``, ``flip=False`` and
    ``color_jitter=0`` turn steps off; ``color_jitter`` is the strength of brightness, contrast and
    saturation alike. Padding from rotation and cropping is the mean colour in the image (zero after
    normalisation) and ``meta.ignore_index`` in the label. Output: ``float32 (3, h, w)``, ``int64 (h, w)``.
    """
    fill = mean_colour(meta.mean)
    steps = []
    if scale is not None and tuple(scale) != (1.0, 1.0):
        steps.append(RandomScale(*scale))
    if rotation:
        steps.append(RandomRotate(rotation, meta.ignore_index, fill))
    if crop_size is not None:
        steps.append(RandomCrop(crop_size, meta.ignore_index, fill))
    if flip:
        steps.append(RandomHorizontalFlip())
    if color_jitter:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter))
    steps.append(ToTensorNormalize(meta.mean, meta.std))
    return Compose(steps)


def eval_transforms(meta: DatasetMeta) -> Compose:
    """Evaluation: the full image, only tensor + normalise: ``float32 (3, H, W)``, ``int64 (H, W)``."""
    return Compose([ToTensorNormalize(meta.mean, meta.std)])
