"""The base class of every segmentation dataset, and the file helpers the layouts share.

Contract. ``read(i)`` returns ``(image, label)``: ``image`` a ``PIL.Image`` in mode ``RGB`` (grayscale,
RGBA, palette and CMYK inputs are converted; an alpha channel is dropped), ``label`` a ``numpy.int64``
array of shape ``(H, W)`` (the image's size) holding class indices ``0 .. meta.num_classes - 1`` or
``meta.ignore_index``. ``dataset[i]`` is ``transform(image, label)``, or the raw pair without a transform.

Validation is split by cost. The constructor checks what is cheap and would otherwise fail hours into
training: the root and split folders exist, every image has its label, the split is not empty. What
needs the pixels (the image decodes completely, the label has the image's size and only valid values)
is checked by ``read``, every time a sample is read. Every problem raises :class:`~dla.errors.DLAError`
naming the file.

Subclasses (one per on-disk layout) set ``splits`` (or leave it ``None`` for free-form split names) and
implement ``load_meta`` and ``find_files``; ``decode_label`` turns stored label values into class
indices where the stored ones differ (CamVid's void, Cityscapes' label ids).
"""

from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from ..errors import DLAError
from .meta import DatasetMeta

PathLike = Union[str, Path]
Sample = Tuple[Image.Image, np.ndarray]
Transform = Callable[[Image.Image, np.ndarray], object]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".gif", ".webp")

# Errors PIL raises for files that are not images, are truncated or are corrupt.
_PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def load_image(path: PathLike) -> Image.Image:
    """The image at ``path`` as ``RGB``, fully decoded (``.load()`` so that truncated files fail here).

    Palette images with a transparent colour go through ``RGBA`` (PIL's advice); alpha is dropped, so a
    transparent pixel keeps the colour stored under it.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            return image.convert("RGB")
    except FileNotFoundError:
        raise DLAError(f"{path}: image file not found") from None
    except _PIL_ERRORS as e:
        raise DLAError(f"{path}: cannot read the image ({e}); not an image, or truncated or corrupt") from e


def load_label(path: PathLike) -> np.ndarray:
    """The single-channel label image at ``path`` as a ``(H, W)`` ``int64`` array of its stored values.

    Palette (``P``) PNGs give their indices, not their colours, which is how VOC stores classes. Colour
    or float images are refused: they are almost always a visualisation saved instead of the labels.
    """
    try:
        with Image.open(path) as label:
            label.load()
            if label.mode not in ("1", "L", "P") and not label.mode.startswith("I"):
                raise DLAError(
                    f"{path}: label image has mode {label.mode}; expected a single-channel image of class "
                    "indices (8- or 16-bit grayscale or palette), not a colour rendering"
                )
            return np.asarray(label).astype(np.int64)
    except FileNotFoundError:
        raise DLAError(f"{path}: label file not found") from None
    except _PIL_ERRORS as e:
        raise DLAError(f"{path}: cannot read the label image ({e}); not an image, or truncated or corrupt") from e


def check_sample(
    image: Image.Image, label: np.ndarray, meta: DatasetMeta, image_path: PathLike, label_path: PathLike
) -> None:
    """Raise :class:`DLAError` when ``label`` is not the image's size or holds values that are not classes."""
    height, width = label.shape
    if (width, height) != image.size:
        raise DLAError(
            f"{label_path}: label is {width}x{height} but its image {image_path} is {image.size[0]}x{image.size[1]} "
            "(width x height); they must be the same size"
        )
    bad = ((label < 0) | (label >= meta.num_classes)) & (label != meta.ignore_index)
    if bad.any():
        values = np.unique(label[bad])
        shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise DLAError(
            f"{label_path}: label values {shown} are outside the {meta.num_classes} classes 0..{meta.num_classes - 1} "
            f"of {meta.name} and are not the ignore value {meta.ignore_index}"
        )


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a :class:`DLAError` saying which folder (``what``) is missing."""
    if not path.is_dir():
        raise DLAError(f"{path}: {what} not found (no such folder)")
    return path


def list_images(folder: Path) -> List[Path]:
    """The image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def pair_files(images: Iterable[Path], label_for: Callable[[Path], Optional[Path]], where: str) -> List[Tuple[Path, Path]]:
    """Pair each image with ``label_for(image)``; a :class:`DLAError` naming the images whose label is missing.

    ``label_for`` returns the expected label path, or ``None`` when it cannot even name one. ``where``
    says where labels were looked for, for the message.
    """
    pairs, missing = [], []
    for image in images:
        label = label_for(image)
        if label is None or not label.is_file():
            missing.append(image)
        else:
            pairs.append((image, label))
    if missing:
        names = ", ".join(str(p) for p in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DLAError(f"{len(missing)} image(s) have no label in {where}: {names}")
    return pairs


def read_lines(path: Path) -> List[str]:
    """The non-blank lines of a text file, stripped; :class:`DLAError` when it cannot be read."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DLAError(f"{path}: cannot read the list file ({e})") from e
    return [line.strip() for line in text.splitlines() if line.strip()]


class SegmentationDataset(torch.utils.data.Dataset):
    """A split of a semantic segmentation dataset: ``files`` pairs image and label paths.

    Attributes: ``root`` (``Path`` or ``None``), ``split``, ``transform``, ``meta`` (:class:`DatasetMeta`),
    ``files`` (``list`` of ``(image_path, label_path)``). See the module docstring for the sample contract.
    """

    task = "segmentation"  # what the samples are for (the trainer checks it against the config's task)
    splits: Optional[Sequence[str]] = None  # accepted split names; None: any name
    needs_root: bool = True

    def __init__(self, root: Optional[PathLike], split: str = "train", transform: Optional[Transform] = None) -> None:
        super().__init__()
        self.split = split
        self.transform = transform
        self.root = Path(root).expanduser() if root is not None else None
        self._check_split()
        if self.needs_root:
            self._check_root()
        self.meta: DatasetMeta = self.load_meta()
        self.files: List[Tuple[Path, Path]] = self.find_files()
        if len(self) == 0:
            raise DLAError(f"{self.root}: the {split!r} split of {type(self).__name__} is empty (no images found)")

    def _check_split(self) -> None:
        if self.splits is not None and self.split not in self.splits:
            raise DLAError(f"{type(self).__name__} has no split {self.split!r}; valid splits: {', '.join(self.splits)}")

    def _check_root(self) -> None:
        if self.root is None:
            raise DLAError(f"{type(self).__name__} needs a root folder (got none)")
        require_dir(self.root, f"{type(self).__name__} root folder")

    def load_meta(self) -> DatasetMeta:
        """Class names, palette, normalisation and ignore value of this dataset."""
        raise NotImplementedError

    def find_files(self) -> List[Tuple[Path, Path]]:
        """The ``(image_path, label_path)`` pairs of the split; raise :class:`DLAError` on missing files."""
        raise NotImplementedError

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Stored label values ``(H, W)`` to class indices / ``meta.ignore_index``; identity by default."""
        return raw

    def read(self, index: int) -> Sample:
        """Sample ``index`` untransformed: ``(RGB PIL image, int64 (H, W) label)``, validated."""
        image_path, label_path = self.files[index]
        image = load_image(image_path)
        label = self.decode_label(load_label(label_path), label_path)
        check_sample(image, label, self.meta, image_path, label_path)
        return image, label

    def __getitem__(self, index: int):
        image, label = self.read(index)
        if self.transform is None:
            return image, label
        return self.transform(image, label)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"samples={len(self)}, classes={self.meta.num_classes})"
        )


def lookup_table(mapping: Dict[int, int], size: int, fill: int) -> np.ndarray:
    """An ``int64`` table ``t`` of ``size`` entries, ``t[k] = mapping[k]`` and ``fill`` elsewhere.

    For vectorised relabelling: ``t[label]`` maps a whole label array at once.
    """
    table = np.full(size, fill, dtype=np.int64)
    for key, value in mapping.items():
        table[key] = value
    return table
