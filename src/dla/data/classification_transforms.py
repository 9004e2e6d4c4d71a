"""Image-only transforms for classification training and evaluation (the paper's Sec. 5.1 and 5.2).

The PIL steps are callables ``RGB PIL image (W x H) -> PIL image`` (:class:`TenCrop` returns a list of 10);
the tensor steps come last: :class:`ToFloatTensor` makes ``float32 (3, H, W)`` on the 0..1 scale (or
``(10, 3, H, W)`` from a list), :class:`Lighting` adds PCA colour noise on that scale, and
:class:`Normalize` subtracts the mean and divides by the std. Keeping the three apart places the colour
noise where AlexNet and fb.resnet.torch put it: after the 0..1 conversion, before normalisation.

Randomness comes only from torch's global generator, as in :mod:`dla.data.transforms`, so
``torch.manual_seed`` makes the augmentation reproducible.

Paper settings: ImageNet trains on random-resized crops of 224 and evaluates the central 224 x 224 crop
after resizing the shorter side to 256; the fine-grained sets resize to 512 x 512 and crop 448 (Food:
256 x 256 and 224), with the scale and aspect-ratio augmentation, PCA colour noise and Howard's
photometric distortions.
"""

import math
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageEnhance

from ..constants import IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC
from ..errors import DLAError
from .meta import DatasetMeta
from .transforms import Size, _uniform

Box = Tuple[int, int, int, int]  # PIL crop box: left, top, right, bottom


def _pair(size: Size) -> Tuple[int, int]:
    """``(h, w)`` from an int (square) or a pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class ImageCompose:
    """Apply transforms in order to one value (an image, then whatever the previous step returned)."""

    def __init__(self, transforms: Iterable[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, value: Any) -> Any:
        for transform in self.transforms:
            value = transform(value)
        return value

    def __repr__(self) -> str:
        return "ImageCompose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    """An int: shorter side to ``size``, aspect kept (longer side truncated, as torchvision); a pair: exactly
    ``(h, w)``. Bilinear (PIL antialiases when shrinking)."""

    def __init__(self, size: Size) -> None:
        self.size = size if isinstance(size, int) else _pair(size)

    def __call__(self, image: Image.Image) -> Image.Image:
        if isinstance(self.size, int):
            width, height = image.size
            short, long = min(width, height), max(width, height)
            other = int(self.size * long / short)
            target = (self.size, other) if width <= height else (other, self.size)
        else:
            target = (self.size[1], self.size[0])
        return image.resize(target, Image.Resampling.BILINEAR)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class RandomResizedCrop:
    """Inception-style scale and aspect-ratio augmentation (Szegedy et al.), then a bilinear resize to ``size``.

    :meth:`get_params` tries up to 10 times a box of area fraction uniform in ``scale`` and aspect ratio
    ``w / h`` log-uniform in ``ratio`` (torchvision's rule; the authors' code draws the ratio uniformly);
    when none fits, it takes the largest centred box whose ratio is clamped to ``ratio``. Output: exactly
    ``size`` (an int means square, a pair is ``(h, w)``).
    """

    def __init__(self, size: Size, scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3)) -> None:
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

    def __call__(self, image: Image.Image) -> Image.Image:
        crop = image.crop(self.get_params(*image.size))
        return crop.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, scale={self.scale}, ratio={self.ratio})"


class CenterCrop:
    """The central ``size`` window (an int means square, a pair is ``(h, w)``), offsets rounded as torchvision.

    A crop larger than the image is padded with black (PIL's crop fills outside pixels with zero).
    """

    def __init__(self, size: Size) -> None:
        self.size = _pair(size)

    def __call__(self, image: Image.Image) -> Image.Image:
        crop_h, crop_w = self.size
        width, height = image.size
        left, top = int(round((width - crop_w) / 2)), int(round((height - crop_h) / 2))
        return image.crop((left, top, left + crop_w, top + crop_h))

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class TenCrop:
    """The standard 10-crop evaluation: a list of 10 ``size`` crops.

    Crops 0-4 are the top-left, top-right, bottom-left, bottom-right and central windows; crop ``5 + i`` is
    crop ``i`` mirrored left-right (the authors' ``sample_10`` and Caffe's oversampling; as a set, the same
    crops as taking the five windows of the mirrored image). The crop must fit in the image.
    """

    def __init__(self, size: Size) -> None:
        self.size = _pair(size)

    def __call__(self, image: Image.Image) -> List[Image.Image]:
        crop_h, crop_w = self.size
        width, height = image.size
        if crop_h > height or crop_w > width:
            raise DLAError(f"a {crop_h}x{crop_w} ten-crop does not fit in a {height}x{width} image; resize first")
        right, bottom = width - crop_w, height - crop_h
        corners = [(0, 0), (right, 0), (0, bottom), (right, bottom)]
        crops = [image.crop((x, y, x + crop_w, y + crop_h)) for x, y in corners]
        crops.append(CenterCrop(self.size)(image))
        return crops + [crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for crop in crops]

    def __repr__(self) -> str:
        return f"TenCrop({self.size})"


class RandomFlip:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        if float(torch.rand(())) < self.p:
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image

    def __repr__(self) -> str:
        return f"RandomFlip({self.p})"


class PhotometricDistortion:
    """Howard's (arXiv 1312.5402) photometric distortions: brightness, contrast and saturation scaled by factors
    uniform in ``[max(0, 1 - x), 1 + x]``, applied in a random order (fb.resnet.torch's ColorJitter).

    PIL's ``ImageEnhance`` does the blending, as in the joint :class:`~dla.data.transforms.ColorJitter`
    (brightness towards black, contrast towards the mean grey, saturation towards the greyscale image),
    clipping to 0..255 after each step. A strength of 0 leaves its step out and draws nothing.
    """

    _ENHANCERS = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4) -> None:
        self.strengths = (brightness, contrast, saturation)

    def __call__(self, image: Image.Image) -> Image.Image:
        active = [(e, s) for e, s in zip(self._ENHANCERS, self.strengths) if s > 0]
        if not active:
            return image
        for index in torch.randperm(len(active)).tolist():
            enhancer, strength = active[index]
            image = enhancer(image).enhance(_uniform(max(0.0, 1 - strength), 1 + strength))
        return image

    def __repr__(self) -> str:
        return "PhotometricDistortion(brightness={}, contrast={}, saturation={})".format(*self.strengths)


class ToFloatTensor:
    """RGB PIL image ``W x H`` -> ``float32 (3, H, W)`` on the 0..1 scale; a list of ``N`` equal-sized images
    (from :class:`TenCrop`) -> ``(N, 3, H, W)``."""

    def __call__(self, image: Union[Image.Image, Sequence[Image.Image]]) -> torch.Tensor:
        if isinstance(image, Image.Image):
            pixels = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
            return pixels.float().div_(255).contiguous()
        return torch.stack([self(crop) for crop in image])

    def __repr__(self) -> str:
        return "ToFloatTensor()"


class Lighting:
    """AlexNet-style PCA colour noise on a ``(..., 3, H, W)`` tensor on the 0..1 scale (before normalisation).

    Draws ``alpha ~ N(0, std)`` per eigenvector and adds ``eigvec @ (alpha * eigval)`` to every pixel; one
    offset per call (so all crops of a stack share it). ``eigvec`` rows are the R, G, B channels, columns the
    eigenvectors. No clipping, as in fb.resnet.torch (the offsets are about 0.01). ``std = 0`` is the
    identity and draws nothing.
    """

    def __init__(self, std: float = 0.1, eigval: Sequence[float] = IMAGENET_PCA_EIGVAL,
                 eigvec: Sequence[Sequence[float]] = IMAGENET_PCA_EIGVEC) -> None:
        self.std = std
        self.eigval = torch.tensor(eigval, dtype=torch.float32)
        self.eigvec = torch.tensor(eigvec, dtype=torch.float32)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.std == 0:
            return tensor
        alpha = torch.randn(3) * self.std
        offset = self.eigvec @ (alpha * self.eigval)
        return tensor + offset.view(3, 1, 1)

    def __repr__(self) -> str:
        return f"Lighting(std={self.std})"


class Normalize:
    """``(..., 3, H, W)`` tensor on the 0..1 scale -> ``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def classification_train_transforms(
    meta: DatasetMeta,
    crop_size: Size = (224, 224),
    scale: Tuple[float, float] = (0.08, 1.0),
    ratio: Tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    color_jitter: float = 0.0,
    lighting: float = 0.0,
    resize: Optional[Size] = None,
) -> ImageCompose:
    """The training augmentation: [resize], random resized crop, [flip], [photometric], tensor, [lighting], normalise.

    ``resize``: an int (shorter side) or ``(h, w)``, applied first (the fine-grained sets: ``(512, 512)``
    with ``crop_size=448``; Food: ``(256, 256)`` and 224). ``color_jitter`` is the strength of brightness,
    contrast and saturation alike (0.4 in fb.resnet.torch), ``lighting`` the std of the PCA colour noise
    (0.1); 0 turns either off (the paper's ImageNet runs use neither). Normalisation uses ``meta.mean`` and
    ``meta.std``. Output: ``float32 (3, h, w)``.
    """
    steps: List[Callable[[Any], Any]] = []
    if resize is not None:
        steps.append(Resize(resize))
    steps.append(RandomResizedCrop(crop_size, scale, ratio))
    if flip:
        steps.append(RandomFlip())
    if color_jitter > 0:
        steps.append(PhotometricDistortion(color_jitter, color_jitter, color_jitter))
    steps.append(ToFloatTensor())
    if lighting > 0:
        steps.append(Lighting(lighting))
    steps.append(Normalize(meta.mean, meta.std))
    return ImageCompose(steps)


def classification_eval_transforms(
    meta: DatasetMeta,
    resize: Optional[Size] = 256,
    crop_size: Optional[Size] = (224, 224),
    ten_crop: bool = False,
) -> ImageCompose:
    """Evaluation: [resize], centre crop or 10-crop, tensor, normalise; deterministic.

    ``resize``: an int (shorter side; ImageNet: 256) or ``(h, w)`` (fine-grained: ``(512, 512)``), ``None``
    to keep the size; ``crop_size``: ``None`` for no crop (with ``resize=None``, the whole image).
    Output: ``float32 (3, h, w)``, or ``(10, 3, h, w)`` with ``ten_crop`` (see :class:`TenCrop`).
    """
    if ten_crop and crop_size is None:
        raise DLAError("ten_crop needs a crop_size")
    steps: List[Callable[[Any], Any]] = []
    if resize is not None:
        steps.append(Resize(resize))
    if crop_size is not None:
        steps.append(TenCrop(crop_size) if ten_crop else CenterCrop(crop_size))
    steps += [ToFloatTensor(), Normalize(meta.mean, meta.std)]
    return ImageCompose(steps)
