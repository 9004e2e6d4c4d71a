"""Synthetic shapes: a segmentation dataset generated on the fly, for tests, smoke runs and demos.

Each sample is a function of ``(seed, split, index)`` alone: its generator is
``numpy.random.Generator(PCG64([seed, split stream, index]))`` (NumPy's ``SeedSequence`` mixes the
three), independent of any global RNG, of the order samples are read and of DataLoader workers. Splits
use different streams, so train and val never share a sample.

What the network must learn. A textured background carries 2..``max_shapes`` shapes of five classes
(circle, square, triangle, ring, cross) at random positions, sizes and angles; later shapes occlude
earlier ones. Colours and textures are drawn per shape around a class tendency with ranges that overlap
between classes (and with the background's, which is drawn from all colours), so colour alone does not
tell the class: the shape ("what") and its boundary ("where") do. Gaussian pixel noise is added.
Generation is vectorised NumPy (about 1 ms for 128x128).
"""

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DLAError
from .base import PathLike, Sample, SegmentationDataset, Transform
from .meta import DatasetMeta, default_palette

SYNTHETIC_CLASSES = ("background", "circle", "square", "triangle", "ring", "cross")
SYNTHETIC_META = DatasetMeta(name="synthetic", classes=SYNTHETIC_CLASSES, palette=tuple(default_palette(len(SYNTHETIC_CLASSES))))

_SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
_DEFAULT_LENGTHS = {"train": 512, "val": 64, "test": 64}

# Per foreground class: the centre of its colour range (spread +-_COLOUR_SPREAD per channel, so
# neighbouring classes overlap) and its preferred texture (used half the time, a random one otherwise).
_CLASS_COLOURS = np.array([(200, 80, 80), (80, 200, 80), (80, 80, 200), (200, 200, 80), (200, 80, 200)], np.float32)
_COLOUR_SPREAD = 90.0
_TEXTURES = ("stripes", "checker", "dots", "flat")
_CLASS_TEXTURES = ("stripes", "checker", "stripes", "dots", "flat")
_NOISE_STD = 6.0

Grid = tuple[np.ndarray, np.ndarray]
Box = tuple[slice, slice]


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> Grid:
    """Pixel-centre coordinates ``(y, x)``, each ``float32 (H, W)`` (cached; treat as read-only)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return y, x


def _pattern(kind: str, rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A ``(H, W)`` texture in ``[0, 1]`` of the given kind, random frequency, angle and phase."""
    freq, angle, phase = rng.uniform(0.15, 0.6), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = y * np.cos(angle) - x * np.sin(angle)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(freq * u + phase)
    if kind == "checker":
        return (np.sin(freq * u + phase) * np.sin(freq * v) > 0).astype(np.float32)
    if kind == "dots":
        return 0.5 + 0.5 * np.sin(freq * u + phase) * np.sin(freq * v)
    return np.clip(0.5 + 0.004 * (u - u.mean()), 0, 1)  # flat: a faint gradient


def _paint(pattern: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Blend two RGB colours by ``pattern``: ``(H, W)`` in [0, 1] -> ``float32 (H, W, 3)``."""
    return low + pattern[..., None] * (high - low)


def _background(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Two random colours blended by smooth noise (a coarse grid upsampled bilinearly) plus a faint random
    texture: ``float32 (H, W, 3)``."""
    height, width = y.shape
    coarse = rng.random((5, 5), dtype=np.float32)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
    texture = _pattern(_TEXTURES[rng.integers(len(_TEXTURES))], rng, y, x)
    low, high = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    return _paint(0.75 * smooth + 0.25 * texture, low, high)


def _place(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> tuple[Box, np.ndarray, np.ndarray, float]:
    """A random centre, radius and angle: the box ``(rows, cols)`` that holds the shape, and box-local
    coordinates ``(u, v)`` centred on the shape and rotated by the angle, and the radius.

    Every shape stays within ``1.25 * radius`` of its centre (a rotated square's corner is at 1.2), so
    only that box is computed: generation costs the shapes' area, not the image's.
    """
    height, width = y.shape
    cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
    radius, angle = rng.uniform(0.08, 0.25) * min(height, width), rng.uniform(0, 2 * np.pi)
    reach = 1.25 * radius
    box = (
        slice(max(0, int(cy - reach)), min(height, int(cy + reach) + 2)),
        slice(max(0, int(cx - reach)), min(width, int(cx + reach) + 2)),
    )
    dy, dx = y[box] - cy, x[box] - cx
    c, s = np.cos(angle), np.sin(angle)
    return box, dx * c + dy * s, dy * c - dx * s, radius


def _circle(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    return u * u + v * v <= r * r


def _square(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.85 * r


def _triangle(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Equilateral, circumradius ``r``: inside the three edges at distance ``r / 2`` from the centre."""
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        a = np.pi / 2 + 2 * np.pi * k / 3
        inside &= u * np.cos(a) + v * np.sin(a) <= r / 2
    return inside


def _ring(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    d2, inner = u * u + v * v, rng.uniform(0.45, 0.7) * r
    return (d2 <= r * r) & (d2 >= inner * inner)


def _cross(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    au, av, w = np.abs(u), np.abs(v), rng.uniform(0.2, 0.35) * r
    return ((au <= w) & (av <= r)) | ((av <= w) & (au <= r))


_SHAPES: dict[int, Callable[..., np.ndarray]] = {1: _circle, 2: _square, 3: _triangle, 4: _ring, 5: _cross}


def _object_colours(cls: int, rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The fill of one shape of class ``cls`` at pixels ``(y, x)`` (any shape ``S``): ``float32 (*S, 3)``."""
    kind = _CLASS_TEXTURES[cls - 1] if rng.random() < 0.5 else _TEXTURES[rng.integers(len(_TEXTURES))]
    centre = _CLASS_COLOURS[cls - 1]
    low = np.clip(centre + rng.uniform(-_COLOUR_SPREAD, _COLOUR_SPREAD, 3), 0, 255).astype(np.float32)
    high = np.clip(low + rng.uniform(-70, 70, 3), 0, 255).astype(np.float32)
    return _paint(_pattern(kind, rng, y, x), low, high)


def generate_shapes(rng: np.random.Generator, height: int, width: int, max_shapes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """One sample from ``rng``: ``uint8 (H, W, 3)`` image and ``int64 (H, W)`` label in 0..5."""
    y, x = _grid(height, width)
    image = _background(rng, y, x)
    label = np.zeros((height, width), dtype=np.int64)
    for _ in range(int(rng.integers(2, max_shapes + 1))):
        cls = int(rng.integers(1, len(SYNTHETIC_CLASSES)))
        box, u, v, radius = _place(rng, y, x)
        mask = _SHAPES[cls](rng, u, v, radius)
        if not mask.any():
            continue
        image[box][mask] = _object_colours(cls, rng, y[box][mask], x[box][mask])
        label[box][mask] = cls
    image += rng.normal(0, _NOISE_STD, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), label


class SyntheticShapes(SegmentationDataset):
    """Generated shapes, no files (``root`` is ignored and may be ``None``); ``files`` is empty.

    ``split``: ``train``, ``val`` or ``test`` (disjoint streams); ``length``: number of samples (default
    512 for train, 64 otherwise); ``seed``: a non-negative int selecting the whole dataset; images are
    ``height x width`` (default 128x128). ``read(i)`` gives the usual ``(RGB PIL image, int64 (H, W))``.
    """

    splits = tuple(_SPLIT_STREAMS)
    needs_root = False

    def __init__(
        self,
        root: PathLike | None = None,
        split: str = "train",
        transform: Transform | None = None,
        length: int | None = None,
        seed: int = 0,
        height: int = 128,
        width: int = 128,
        max_shapes: int = 6,
    ) -> None:
        self.length = _DEFAULT_LENGTHS.get(split, 0) if length is None else int(length)
        if self.length < 0 or int(seed) < 0 or min(height, width) < 16 or max_shapes < 2:
            raise DLAError(
                f"SyntheticShapes needs length >= 0, seed >= 0, height and width >= 16 and max_shapes >= 2; "
                f"got length={length}, seed={seed}, height={height}, width={width}, max_shapes={max_shapes}"
            )
        self.seed, self.height, self.width, self.max_shapes = int(seed), int(height), int(width), int(max_shapes)
        super().__init__(root, split, transform)

    def load_meta(self) -> DatasetMeta:
        return SYNTHETIC_META

    def find_files(self) -> list[tuple[Path, Path]]:
        return []

    def __len__(self) -> int:
        return self.length

    def verify(self) -> None:
        """Nothing to check: samples are generated, no file is read."""

    def read(self, index: int) -> Sample:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        index %= self.length
        rng = np.random.Generator(np.random.PCG64([self.seed, _SPLIT_STREAMS[self.split], index]))
        image, label = generate_shapes(rng, self.height, self.width, self.max_shapes)
        return Image.fromarray(image), label

    def read_label(self, index: int) -> np.ndarray:
        """The label of sample ``index`` (generated with its image: the two come from one random stream)."""
        return self.read(index)[1]
