"""The classification recipes (the paper's Sec. 5.1 and 5.2), built from the transforms of :mod:`dla.data.transforms`.

Classification datasets call ``transform(image)``. The image steps come first; :class:`ToTensor` makes
``float32 (3, H, W)`` on the 0..1 scale (``(10, 3, H, W)`` after :class:`TenCrop`), :class:`Lighting` adds
PCA colour noise on that scale, and :class:`Normalize` subtracts the mean and divides by the std. Keeping
the three apart places the colour noise where AlexNet and fb.resnet.torch put it: after the 0..1
conversion, before normalisation.

Paper settings: ImageNet trains on random-resized crops of 224 and evaluates the central 224 x 224 crop
after resizing the shorter side to 256; the fine-grained sets resize to 512 x 512 and crop 448 (Food:
256 x 256 and 224), with the scale and aspect-ratio augmentation, PCA colour noise and Howard's
photometric distortions (:class:`ColorJitter` in a random order).
"""

from collections.abc import Callable

from ..errors import DLAError
from .meta import DatasetMeta
from .transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Lighting,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    Size,
    TenCrop,
    ToTensor,
)


def classification_train_transforms(
    meta: DatasetMeta,
    crop_size: Size = (224, 224),
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    color_jitter: float = 0.0,
    lighting: float = 0.0,
    resize: Size | None = None,
) -> Compose:
    """Training: [resize], random resized crop, [flip], [colour jitter], tensor, [lighting], normalise.

    ``resize``: an int (shorter side) or ``(h, w)``, applied first (the fine-grained sets: ``(512, 512)``
    with ``crop_size=448``; Food: ``(256, 256)`` and 224). ``color_jitter`` is the strength of brightness,
    contrast and saturation alike (0.4 in fb.resnet.torch), applied in a random order (Howard's photometric
    distortions); ``lighting`` is the std of the PCA colour noise (0.1); 0 turns either off (the paper's
    ImageNet runs use neither). Normalisation uses ``meta.mean`` and ``meta.std``. Output: ``float32 (3, h, w)``.
    """
    steps: list[Callable] = []
    if resize is not None:
        steps.append(Resize(resize))
    steps.append(RandomResizedCrop(crop_size, scale, ratio))
    if flip:
        steps.append(RandomHorizontalFlip())
    if color_jitter > 0:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter, random_order=True))
    steps.append(ToTensor())
    if lighting > 0:
        steps.append(Lighting(lighting))
    steps.append(Normalize(meta.mean, meta.std))
    return Compose(steps)


def classification_eval_transforms(
    meta: DatasetMeta,
    resize: Size | None = 256,
    crop_size: Size | None = (224, 224),
    ten_crop: bool = False,
) -> Compose:
    """Evaluation: [resize], centre crop or 10-crop, tensor, normalise; deterministic.

    ``resize``: an int (shorter side; ImageNet: 256) or ``(h, w)`` (fine-grained: ``(512, 512)``), ``None``
    to keep the size; ``crop_size``: ``None`` for no crop (with ``resize=None``, the whole image).
    Output: ``float32 (3, h, w)``, or ``(10, 3, h, w)`` with ``ten_crop`` (see :class:`TenCrop`).
    """
    if ten_crop and crop_size is None:
        raise DLAError("ten_crop needs a crop_size")
    steps: list[Callable] = []
    if resize is not None:
        steps.append(Resize(resize))
    if crop_size is not None:
        steps.append(TenCrop(crop_size) if ten_crop else CenterCrop(crop_size))
    steps += [ToTensor(), Normalize(meta.mean, meta.std)]
    return Compose(steps)
