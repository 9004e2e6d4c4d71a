"""One transform stack for images and image/mask pairs, and the segmentation recipes built from it.

Every transform is called as ``t(image)`` or ``t(image, mask)`` and returns what it was given, transformed:
the image alone, or the ``(image, mask)`` pair. ``image`` is a ``PIL.Image`` in mode ``RGB`` of size
``W x H`` until :class:`ToTensor`, a ``float32 (3, H, W)`` tensor on the 0..1 scale after it; ``mask``
is a ``numpy`` integer array of shape ``(H, W)`` (class indices or the ignore value) until
:class:`ToTensor`, an ``int64 (H, W)`` tensor after it. Geometric transforms move the mask with the
image: the image is resampled bilinearly, the mask with nearest neighbour (classes are never blended),
and mask pixels that come from outside the image get the ignore value. Photometric transforms
(:class:`ColorJitter`, :class:`Lighting`, :class:`Normalize`) change the image only. :class:`TenCrop`
turns one image (and mask) into lists of 10, which :class:`ToTensor` stacks.

Segmentation datasets call ``transform(image, label)``, classification datasets ``transform(image)``;
:func:`train_transforms` / :func:`eval_transforms` here and
:func:`~dla.data.classification_transforms.classification_train_transforms` /
:func:`~dla.data.classification_transforms.classification_eval_transforms` are the two recipes.

Randomness comes only from torch's global generator (``torch.rand`` / ``torch.randint`` /
``torch.randperm`` / ``torch.randn``), so ``torch.manual_seed`` fixes the augmentation. The trainer
seeds the generators for every training item with a seed drawn from ``(seed, epoch)`` (``SeededBatches``
and ``SeededItems`` in :mod:`dla.engine.sampling`), which makes the augmentation independent of the
workers and exact on resume; the transforms keep no state of their own.
"""

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance

from ..constants import IGNORE_INDEX, IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC
from ..errors import DLAError
from .meta import DatasetMeta

Mask = np.ndarray | None
Size = int | tuple[int, int]
Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]  # PIL crop box: left, top, right, bottom
Resampler = Callable[[Image.Image, Image.Resampling], Image.Image]


def _uniform(low: float, high: float) -> float:
    """A float uniform in ``[low, high)`` from torch's global generator."""
    return low + (high - low) * float(torch.rand(()))


def _pair(size: Size) -> tuple[int, int]:
    """``(h, w)`` from an int (square) or a pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _mask_image(mask: np.ndarray) -> Image.Image:
    """A mask as a 32-bit integer PIL image (mode ``I``), so that PIL's geometry applies to it unchanged."""
    return Image.fromarray(np.ascontiguousarray(mask, dtype=np.int32))


def _resample(image: Image.Image, mask: Mask, op: Resampler) -> tuple[Image.Image, Mask]:
    """``op(picture, resampling)`` applied to the image (bilinear) and to the mask (nearest, dtype kept)."""
    image = op(image, Image.Resampling.BILINEAR)
    if mask is not None:
        mask = np.asarray(op(_mask_image(mask), Image.Resampling.NEAREST)).astype(mask.dtype)
    return image, mask


def _flip(image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
    """Both mirrored left-right."""
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (None if mask is None else mask[:, ::-1].copy())


def mean_colour(mean: tuple[float, float, float]) -> Colour:
    """A normalisation mean on the 0..1 scale as an 8-bit RGB colour (padding that normalises to ~0)."""
    red, green, blue = (int(round(255 * m)) for m in mean)
    return red, green, blue


class Transform:
    """The base of every transform: ``t(image)`` -> image, ``t(image, mask)`` -> ``(image, mask)``.

    Subclasses implement :meth:`apply`, which gets ``mask=None`` when there is none and returns the pair.
    """

    def __call__(self, image: Any, mask: Any = None) -> Any:
        image, mask = self.apply(image, mask)
        return image if mask is None else (image, mask)

    def apply(self, image: Any, mask: Any) -> tuple[Any, Any]:
        raise NotImplementedError


class Compose:
    """Apply transforms in order to an image, or to an ``(image, mask)`` pair (any callables of that form)."""

    def __init__(self, transforms: Iterable[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any, mask: Any = None) -> Any:
        for transform in self.transforms:
            if mask is None:
                image = transform(image)
            else:
                image, mask = transform(image, mask)
        return image if mask is None else (image, mask)

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


# Geometric transforms: the mask moves with the image.


class RandomScale(Transform):
    """Resize by a factor uniform in ``[min_scale, max_scale]``: ``(H, W) -> (round(sH), round(sW))``.

    Bilinear (PIL antialiases when shrinking) and, for the mask, nearest; both use pixel-centre alignment,
    so they stay registered.
    """

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0) -> None:
        self.min_scale, self.max_scale = min_scale, max_scale

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        scale = _uniform(self.min_scale, self.max_scale)
        width, height = image.size
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return _resample(image, mask, lambda picture, resampling: picture.resize(size, resampling))

    def __repr__(self) -> str:
        return f"RandomScale({self.min_scale}, {self.max_scale})"


class RandomRotate(Transform):
    """Rotate about the centre by an angle uniform in ``[-degrees, degrees]``; the size is kept.

    Corners that come from outside are ``fill`` in the image (black by default; :func:`train_transforms`
    passes the mean colour, which normalises to zero) and ``ignore_index`` in the mask.
    """

    def __init__(self, degrees: float = 10.0, ignore_index: int = IGNORE_INDEX, fill: Colour = (0, 0, 0)) -> None:
        self.degrees, self.ignore_index, self.fill = degrees, ignore_index, tuple(fill)

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        angle = _uniform(-self.degrees, self.degrees)

        def rotate(picture: Image.Image, resampling: Image.Resampling) -> Image.Image:
            fill = self.fill if picture.mode == "RGB" else self.ignore_index
            return picture.rotate(angle, resample=resampling, fillcolor=fill)

        return _resample(image, mask, rotate)

    def __repr__(self) -> str:
        return f"RandomRotate({self.degrees}, ignore_index={self.ignore_index})"


class RandomCrop(Transform):
    """Crop a random ``size = (h, w)`` window (an int means square), at the same place in image and mask.

    A side shorter than the crop is first padded (after the content: bottom and right) with ``fill`` in
    the image (0 by default) and ``ignore_index`` in the mask, so the output is always ``(h, w)``.
    """

    def __init__(self, size: Size, ignore_index: int = IGNORE_INDEX, fill: Colour = (0, 0, 0)) -> None:
        self.size = _pair(size)
        self.ignore_index, self.fill = ignore_index, tuple(fill)

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        image, mask = self._pad(image, mask)
        crop_h, crop_w = self.size
        width, height = image.size
        top = int(torch.randint(0, height - crop_h + 1, ()))
        left = int(torch.randint(0, width - crop_w + 1, ()))
        image = image.crop((left, top, left + crop_w, top + crop_h))
        return image, (None if mask is None else mask[top : top + crop_h, left : left + crop_w].copy())

    def _pad(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        width, height = image.size
        new_h, new_w = max(height, self.size[0]), max(width, self.size[1])
        if (new_h, new_w) == (height, width):
            return image, mask
        padded_image = Image.new("RGB", (new_w, new_h), self.fill)
        padded_image.paste(image, (0, 0))
        if mask is not None:
            padded_mask = np.full((new_h, new_w), self.ignore_index, dtype=mask.dtype)
            padded_mask[:height, :width] = mask
            mask = padded_mask
        return padded_image, mask

    def __repr__(self) -> str:
        return f"RandomCrop({self.size}, ignore_index={self.ignore_index})"


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        if float(torch.rand(())) < self.p:
            return _flip(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip({self.p})"


class Resize(Transform):
    """An int: shorter side to ``size``, aspect kept (longer side truncated, as torchvision); a pair: exactly
    ``(h, w)``. Bilinear (PIL antialiases when shrinking); the mask nearest."""

    def __init__(self, size: Size) -> None:
        self.size = size if isinstance(size, int) else _pair(size)

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        if isinstance(self.size, int):
            width, height = image.size
            short, long = min(width, height), max(width, height)
            other = int(self.size * long / short)
            target = (self.size, other) if width <= height else (other, self.size)
        else:
            target = (self.size[1], self.size[0])
        return _resample(image, mask, lambda picture, resampling: picture.resize(target, resampling))

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class RandomResizedCrop(Transform):
    """Inception-style scale and aspect-ratio augmentation (Szegedy et al.), then a resize to ``size``.

    :meth:`get_params` tries up to 10 times a box of area fraction uniform in ``scale`` and aspect ratio
    ``w / h`` log-uniform in ``ratio`` (torchvision's rule; the authors' code draws the ratio uniformly);
    when none fits, it takes the largest centred box whose ratio is clamped to ``ratio``. Output: exactly
    ``size`` (an int means square, a pair is ``(h, w)``); bilinear, the mask nearest.
    """

    def __init__(self, size: Size, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        if not 0 < scale[0] <= scale[1] or not 0 < ratio[0] <= ratio[1]:
            raise DLAError(f"scale and ratio must be positive (low, high) pairs, got {scale} and {ratio}")
        self.size = _pair(size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def get_params(self, width: int, height: int) -> Box:
        """The crop box ``(left, top, right, bottom)`` for an image of ``width x height``."""
        area = width * height
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target_area = area * _uniform(*self.scale)
            aspect = math.exp(_uniform(log_low, log_high))
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, ()))
                left = int(torch.randint(0, width - w + 1, ()))
                return left, top, left + w, top + h
        aspect = width / height
        if aspect < self.ratio[0]:
            w, h = width, max(1, round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            w, h = max(1, round(height * self.ratio[1])), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        box, target = self.get_params(*image.size), (self.size[1], self.size[0])
        return _resample(image, mask, lambda picture, resampling: picture.crop(box).resize(target, resampling))

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, scale={self.scale}, ratio={self.ratio})"


class CenterCrop(Transform):
    """The central ``size`` window (an int means square, a pair is ``(h, w)``), offsets rounded as torchvision.

    A crop larger than the image is padded with black in the image (PIL's crop fills outside pixels with
    zero) and ``ignore_index`` in the mask.
    """

    def __init__(self, size: Size, ignore_index: int = IGNORE_INDEX) -> None:
        self.size, self.ignore_index = _pair(size), ignore_index

    def apply(self, image: Image.Image, mask: Mask) -> tuple[Image.Image, Mask]:
        crop_h, crop_w = self.size
        width, height = image.size
        left, top = int(round((width - crop_w) / 2)), int(round((height - crop_h) / 2))
        image = image.crop((left, top, left + crop_w, top + crop_h))
        if mask is not None:
            window = np.full((crop_h, crop_w), self.ignore_index, dtype=mask.dtype)
            y0, x0 = max(0, top), max(0, left)
            y1, x1 = min(height, top + crop_h), min(width, left + crop_w)
            window[y0 - top : y1 - top, x0 - left : x1 - left] = mask[y0:y1, x0:x1]
            mask = window
        return image, mask

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class TenCrop(Transform):
    """The standard 10-crop evaluation: lists of 10 ``size`` crops (of the image, and of the mask).

    Crops 0-4 are the top-left, top-right, bottom-left, bottom-right and central windows; crop ``5 + i`` is
    crop ``i`` mirrored left-right (the authors' ``sample_10`` and Caffe's oversampling; as a set, the same
    crops as taking the five windows of the mirrored image). The crop must fit in the image.
    """

    def __init__(self, size: Size) -> None:
        self.size = _pair(size)

    def apply(self, image: Image.Image, mask: Mask) -> tuple[list[Image.Image], list[np.ndarray] | None]:
        crop_h, crop_w = self.size
        width, height = image.size
        if crop_h > height or crop_w > width:
            raise DLAError(f"a {crop_h}x{crop_w} ten-crop does not fit in a {height}x{width} image; resize first")
        right, bottom = width - crop_w, height - crop_h
        centre = (int(round(right / 2)), int(round(bottom / 2)))  # CenterCrop's rounding
        corners = [(0, 0), (right, 0), (0, bottom), (right, bottom), centre]
        crops = [image.crop((x, y, x + crop_w, y + crop_h)) for x, y in corners]
        crops += [_flip(crop, None)[0] for crop in crops]
        if mask is None:
            return crops, None
        windows = [mask[y : y + crop_h, x : x + crop_w].copy() for x, y in corners]
        windows += [window[:, ::-1].copy() for window in windows]  # _flip's mirroring of a mask
        return crops, windows

    def __repr__(self) -> str:
        return f"TenCrop({self.size})"


# Photometric transforms: the image alone changes.


class ColorJitter(Transform):
    """Scale brightness, contrast and saturation of the image by factors uniform in ``[max(0, 1 - x), 1 + x]``.

    ``random_order=False``: in that fixed order (the segmentation recipe); ``random_order=True``: in an
    order drawn with ``torch.randperm`` first (Howard, arXiv 1312.5402, as fb.resnet.torch's ColorJitter;
    the classification recipe). PIL's ``ImageEnhance`` does the blending (brightness towards black,
    contrast towards the mean grey, saturation towards the greyscale image), clipping to 0..255 after
    each step. A strength of 0 leaves its step out and draws nothing; all three 0 draw nothing at all.
    """

    _ENHANCERS = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)

    def __init__(
        self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, random_order: bool = False
    ) -> None:
        self.strengths = (brightness, contrast, saturation)
        self.random_order = random_order

    def apply(self, image: Image.Image, mask: Any) -> tuple[Image.Image, Any]:
        active = [(e, s) for e, s in zip(self._ENHANCERS, self.strengths, strict=True) if s > 0]
        if not active:
            return image, mask
        order = torch.randperm(len(active)).tolist() if self.random_order else range(len(active))
        for index in order:
            enhancer, strength = active[index]
            image = enhancer(image).enhance(_uniform(max(0.0, 1 - strength), 1 + strength))
        return image, mask

    def __repr__(self) -> str:
        return "ColorJitter(brightness={}, contrast={}, saturation={}, random_order={})".format(
            *self.strengths, self.random_order
        )


class ToTensor(Transform):
    """RGB PIL image ``W x H`` -> ``float32 (3, H, W)`` on the 0..1 scale, mask -> ``int64 (H, W)``; lists
    of ``N`` equal-sized images and masks (from :class:`TenCrop`) -> ``(N, 3, H, W)`` and ``(N, H, W)``."""

    def apply(self, image: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._image(image), (None if mask is None else self._mask(mask))

    def _image(self, image: Image.Image | Sequence[Image.Image]) -> torch.Tensor:
        if isinstance(image, Image.Image):
            pixels = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
            return pixels.float().div_(255).contiguous()
        return torch.stack([self._image(crop) for crop in image])

    def _mask(self, mask: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        if isinstance(mask, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
        return torch.stack([self._mask(window) for window in mask])

    def __repr__(self) -> str:
        return "ToTensor()"


class Lighting(Transform):
    """AlexNet-style PCA colour noise on a ``(..., 3, H, W)`` tensor on the 0..1 scale (before normalisation).

    Draws ``alpha ~ N(0, std)`` per eigenvector and adds ``eigvec @ (alpha * eigval)`` to every pixel; one
    offset per call (so all crops of a stack share it). ``eigvec`` rows are the R, G, B channels, columns the
    eigenvectors. No clipping, as in fb.resnet.torch (the offsets are about 0.01). ``std = 0`` is the
    identity and draws nothing.
    """

    def __init__(
        self,
        std: float = 0.1,
        eigval: Sequence[float] = IMAGENET_PCA_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_PCA_EIGVEC,
    ) -> None:
        self.std = std
        self.eigval = torch.tensor(eigval, dtype=torch.float32)
        self.eigvec = torch.tensor(eigvec, dtype=torch.float32)

    def apply(self, tensor: torch.Tensor, mask: Any) -> tuple[torch.Tensor, Any]:
        if self.std == 0:
            return tensor, mask
        alpha = torch.randn(3) * self.std
        offset = self.eigvec @ (alpha * self.eigval)
        return tensor + offset.view(3, 1, 1), mask

    def __repr__(self) -> str:
        return f"Lighting(std={self.std})"


class Normalize(Transform):
    """``(..., 3, H, W)`` tensor on the 0..1 scale -> ``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def apply(self, tensor: torch.Tensor, mask: Any) -> tuple[torch.Tensor, Any]:
        return (tensor - self.mean) / self.std, mask

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


# The segmentation recipes.


def train_transforms(
    meta: DatasetMeta,
    crop_size: Size | None,
    scale: tuple[float, float] | None = (0.5, 2.0),
    rotation: float = 10.0,
    flip: bool = True,
    color_jitter: float = 0.0,
) -> Compose:
    """The segmentation training augmentation: scale, rotate, crop, flip, colour jitter, tensor, normalise.

    ``crop_size``: ``(h, w)`` or an int (square), ``None`` for no crop (then samples keep varying sizes
    and batch only with batch size 1). ``scale=None``, ``rotation=0``, ``flip=False`` and
    ``color_jitter=0`` turn steps off; ``color_jitter`` is the strength of brightness, contrast and
    saturation alike, applied in that fixed order. Padding from rotation and cropping is the mean colour
    in the image (zero after normalisation) and ``meta.ignore_index`` in the label. Called on
    ``(image, label)``; output: ``float32 (3, h, w)``, ``int64 (h, w)``.
    """
    fill = mean_colour(meta.mean)
    steps: list[Callable] = []
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
    steps += [ToTensor(), Normalize(meta.mean, meta.std)]
    return Compose(steps)


def eval_transforms(meta: DatasetMeta) -> Compose:
    """Segmentation evaluation: the full image, only tensor and normalise: ``float32 (3, H, W)``, ``int64 (H, W)``."""
    return Compose([ToTensor(), Normalize(meta.mean, meta.std)])
