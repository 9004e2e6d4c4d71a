"""Drawing label maps: a colour mask and a blend of it over the image.

Pixels without a colour (the ignore value, or a class beyond the palette) are drawn black in the mask and
left untouched in the overlay, so "no class" never looks like a class.
"""

from typing import Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..constants import IGNORE_INDEX
from ..errors import DLAError

Palette = Sequence[Tuple[int, int, int]]


def _palette_lookup(label: np.ndarray, palette: Palette, ignore_index: int) -> Tuple[np.ndarray, np.ndarray]:
    """``H x W x 3`` uint8 colours of ``label`` (``H x W``) and the ``H x W`` mask of pixels that have one."""
    label = np.asarray(label)
    colours = np.asarray(palette, dtype=np.uint8)
    if label.ndim != 2:
        raise DLAError(f"a label map is H x W, got shape {label.shape}")
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise DLAError(f"a palette is a list of (r, g, b) triples, got an array of shape {colours.shape}")
    label = label.astype(np.int64)
    valid = (label >= 0) & (label < len(colours)) & (label != ignore_index)
    rgb = np.zeros(label.shape + (3,), dtype=np.uint8)
    rgb[valid] = colours[label[valid]]
    return rgb, valid


def colorize(label: np.ndarray, palette: Palette, ignore_index: int = IGNORE_INDEX) -> Image.Image:
    """An RGB image of ``label`` (``H x W`` class indices) in ``palette``'s colours; uncoloured pixels black."""
    return Image.fromarray(_palette_lookup(label, palette, ignore_index)[0])


def overlay(image: Union[Image.Image, np.ndarray], label: np.ndarray, palette: Palette, alpha: float = 0.5,
            ignore_index: int = IGNORE_INDEX) -> Image.Image:
    """``image`` with the colour mask blended in: ``(1 - alpha) * image + alpha * colour`` where a pixel has a
    class colour, the image unchanged elsewhere. ``image``: PIL or ``H x W x 3`` uint8, same size as ``label``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise DLAError(f"alpha must be within [0, 1], got {alpha}")
    base = np.asarray(as_rgb_image(image), dtype=np.float32)
    rgb, valid = _palette_lookup(label, palette, ignore_index)
    if base.shape != rgb.shape:
        raise DLAError(f"image is {base.shape[1]}x{base.shape[0]} but the label map is {rgb.shape[1]}x{rgb.shape[0]}")
    blended = np.where(valid[..., None], (1 - alpha) * base + alpha * rgb, base)
    return Image.fromarray(np.rint(blended).astype(np.uint8))


def as_rgb_image(image: Union[Image.Image, np.ndarray]) -> Image.Image:
    """A PIL RGB image from a PIL image (any mode) or an ``H x W x 3`` uint8 array."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise DLAError(f"expected an H x W x 3 uint8 image, got shape {array.shape} and dtype {array.dtype}")
    return Image.fromarray(array)
