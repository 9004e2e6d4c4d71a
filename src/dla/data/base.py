"""The base classes of every dataset (:class:`SegmentationDataset`, :class:`ClassificationDataset`) and
the file helpers the layouts share.

Segmentation contract. ``read(i)`` returns ``(image, label)``: ``image`` a ``PIL.Image`` in mode ``RGB``
(grayscale, RGBA, palette and CMYK inputs are converted; an alpha channel is dropped), ``label`` a
``numpy.int64`` array of shape ``(H, W)`` (the image's size) holding class indices
``0 .. meta.num_classes - 1`` or ``meta.ignore_index``. ``dataset[i]`` is ``transform(image, label)``,
or the raw pair without a transform.

Classification contract. ``read(i)`` returns ``(image, label)``: ``image`` as above, ``label`` an ``int``
class index ``0 .. len(classes) - 1``. ``dataset[i]`` is ``(transform(image), label)``: the transform
sees the image only; without one the raw pair is returned. ``samples`` lists ``(image_path, label)``
sorted by path, ``targets`` the labels alone (read without opening an image).

Validation is split by cost. The constructor checks what is cheap and would otherwise fail hours into
training: the root and split folders exist, the split is known, every image has its label (list files
parse, every class named or numbered is a class, every listed image exists), the split is not empty.
What needs the pixels (the image decodes completely, the label has the image's size and only valid
values) is checked by ``read``, every time a sample is read. Every problem raises
:class:`~dla.errors.DLAError` naming the file (and the line).

Segmentation subclasses (one per on-disk layout) set ``splits`` (or leave it ``None`` for free-form split
names) and implement ``load_meta`` and ``find_files``; ``decode_label`` turns stored label values into
class indices where the stored ones differ (CamVid's void, Cityscapes' label ids). Classification
subclasses (:mod:`dla.data.imagefolder`, :mod:`dla.data.finegrained`) set ``name``, ``splits`` and
``aliases``, and implement ``load_classes`` and ``find_samples``; ``locate_root`` lets them accept the
folder that contains the dataset's own top folder.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DLAError
from .meta import DatasetMeta, default_palette

PathLike = str | Path
Sample = tuple[Image.Image, np.ndarray]
Transform = Callable[[Image.Image, np.ndarray], object]
ImageTransform = Callable[[Image.Image], object]
ClassSample = tuple[Path, int]

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


def check_sample(image: Image.Image, label: np.ndarray, meta: DatasetMeta, image_path: PathLike, label_path: PathLike) -> None:
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


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def pair_files(images: Iterable[Path], label_for: Callable[[Path], Path | None], where: str) -> list[tuple[Path, Path]]:
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


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`DLAError` saying which file (``what``) is missing."""
    if not path.is_file():
        raise DLAError(f"{path}: {what} not found")
    return path


def _list_file_lines(path: Path) -> list[str]:
    """All lines of the list file ``path``; :class:`DLAError` when it cannot be read."""
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DLAError(f"{path}: cannot read the list file ({e})") from e


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a text file, stripped; :class:`DLAError` when it cannot be read."""
    return [line.strip() for line in _list_file_lines(path) if line.strip()]


def read_records(path: Path, fields: int) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` for each non-blank line of the list file ``path``.

    A line is split on whitespace into exactly ``fields`` fields, the last one taking the rest of the
    line (so it may hold spaces, as FGVC-Aircraft's class names do); a shorter line is an error naming
    the file and line.
    """
    records = []
    for number, line in enumerate(_list_file_lines(require_file(path, "list file")), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=fields - 1)
        if len(parts) != fields:
            raise DLAError(f"{path}, line {number}: expected {fields} fields separated by spaces, got {line.strip()!r}")
        records.append((number, parts))
    return records


class TaskDataset(torch.utils.data.Dataset):
    """What every dataset has, and what the engine and the tasks read of one: the task its samples are for,
    ``meta`` (classes, palette, normalisation, ignore value) and its length; and what both base classes share,
    the split name (checked, aliases resolved) and the root folder."""

    task: str  # what the samples are for (the trainer checks it against the config's task)
    meta: DatasetMeta
    splits: Sequence[str] | None = None  # accepted split names; None: any name
    aliases: Mapping[str, str] = {}  # other accepted split names -> the split they read
    needs_root: bool = True

    def __len__(self) -> int:
        raise NotImplementedError

    def _resolve_split(self, split: str) -> str:
        split = self.aliases.get(split, split)
        if self.splits is not None and split not in self.splits:
            valid = ", ".join(self.splits)
            also = "".join(f" (or {alias}, an alias of {name})" for alias, name in self.aliases.items())
            raise DLAError(f"{type(self).__name__} has no split {split!r}; valid splits: {valid}{also}")
        return split

    def _root_folder(self, root: PathLike | None) -> Path | None:
        """``root`` as a ``Path`` (``None`` stays ``None``); checked to be a folder when ``needs_root``."""
        if self.needs_root:
            return self._required_root(root)
        return Path(root).expanduser() if root is not None else None

    def _required_root(self, root: PathLike | None) -> Path:
        """``root`` as a ``Path``, checked to be a folder; :class:`DLAError` when it is ``None`` or no folder."""
        if root is None:
            raise DLAError(f"{type(self).__name__} needs a root folder (got none)")
        return require_dir(Path(root).expanduser(), f"{type(self).__name__} root folder")


class SegmentationDataset(TaskDataset):
    """A split of a semantic segmentation dataset: ``files`` pairs image and label paths.

    Attributes: ``root`` (``Path`` or ``None``), ``split``, ``transform``, ``meta`` (:class:`DatasetMeta`),
    ``files`` (``list`` of ``(image_path, label_path)``). See the module docstring for the sample contract.
    """

    task = "segmentation"

    def __init__(self, root: PathLike | None, split: str = "train", transform: Transform | None = None) -> None:
        super().__init__()
        self.split = self._resolve_split(split)
        self.transform = transform
        self.root: Path | None = self._root_folder(root)
        self.meta: DatasetMeta = self.load_meta()
        self.files: list[tuple[Path, Path]] = self.find_files()
        if len(self) == 0:
            raise DLAError(f"{self.root}: the {split!r} split of {type(self).__name__} is empty (no images found)")

    @property
    def root_dir(self) -> Path:
        """``root`` for the layouts that read files from it (``needs_root``, so it was checked to be a folder)."""
        if self.root is None:
            raise DLAError(f"{type(self).__name__} has no root folder to read files from")
        return self.root

    def load_meta(self) -> DatasetMeta:
        """Class names, palette, normalisation and ignore value of this dataset."""
        raise NotImplementedError

    def find_files(self) -> list[tuple[Path, Path]]:
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


class ClassificationDataset(TaskDataset):
    """A split of an image classification dataset: ``samples`` pairs image paths with class indices.

    Attributes: ``root`` (``Path``, after ``locate_root``), ``split`` (the canonical name, aliases
    resolved), ``transform``, ``classes`` (``list`` of names), ``samples`` (``list`` of ``(path, label)``,
    sorted), ``targets`` and ``meta`` (:class:`DatasetMeta`; ``name`` is the class attribute ``name``,
    or the root folder's name when that is ``None``). See the module docstring for the sample contract.
    """

    task = "classification"
    name: str | None = None  # DatasetMeta.name; None: the root folder's name
    unpacks_into: str | None = None  # the folder of the published archive, which root may hold

    def __init__(self, root: PathLike | None, split: str = "train", transform: ImageTransform | None = None) -> None:
        super().__init__()
        self.split = self._resolve_split(split)
        self.transform = transform
        self.root: Path = self.locate_root(self._required_root(root))
        self.classes: list[str] = list(self.load_classes())
        self._check_classes()
        self.samples: list[ClassSample] = sorted(self.find_samples())
        self._check_samples()
        self.meta = DatasetMeta(
            name=self.name or self.root.name,
            classes=tuple(self.classes),
            palette=tuple(default_palette(len(self.classes))),
        )

    def _check_classes(self) -> None:
        if not self.classes:
            raise DLAError(f"{self.root}: {type(self).__name__} found no classes")
        seen = set()
        for name in self.classes:
            if name in seen:
                raise DLAError(f"{self.root}: class {name!r} is listed twice; class names must be unique")
            seen.add(name)

    def _check_samples(self) -> None:
        what = f"the {self.split!r} split of {type(self).__name__}"
        if not self.samples:
            raise DLAError(f"{self.root}: {what} is empty (no images found)")
        missing = [path for path, _ in self.samples if not path.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise DLAError(f"{len(missing)} of the {len(self.samples)} images of {what} not found: {shown}{more}")
        count = len(self.classes)
        for path, label in self.samples:
            if not 0 <= label < count:
                raise DLAError(f"{path}: label {label} is outside the {count} classes 0..{count - 1} of {what}")

    def locate_root(self, root: Path) -> Path:
        """The folder the layout's paths are relative to, given the ``root`` passed in: ``root``, or its
        ``unpacks_into`` sub-folder (the folder of the published archive) when there is one."""
        inner = root / self.unpacks_into if self.unpacks_into else None
        return inner if inner is not None and inner.is_dir() else root

    def load_classes(self) -> list[str]:
        """The class names, in index order."""
        raise NotImplementedError

    def find_samples(self) -> list[ClassSample]:
        """The ``(image_path, label)`` pairs of the split (any order; missing files are reported by the base)."""
        raise NotImplementedError

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in ``samples`` order."""
        return [label for _, label in self.samples]

    def read(self, index: int) -> tuple[Image.Image, int]:
        """Sample ``index`` untransformed: ``(RGB PIL image, class index)``."""
        path, label = self.samples[index]
        return load_image(path), label

    def __getitem__(self, index: int):
        image, label = self.read(index)
        return (image if self.transform is None else self.transform(image)), label

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"images={len(self)}, classes={len(self.classes)})"
        )


def lookup_table(mapping: dict[int, int], size: int, fill: int) -> np.ndarray:
    """An ``int64`` table ``t`` of ``size`` entries, ``t[k] = mapping[k]`` and ``fill`` elsewhere.

    For vectorised relabelling: ``t[label]`` maps a whole label array at once.
    """
    table = np.full(size, fill, dtype=np.int64)
    for key, value in mapping.items():
        table[key] = value
    return table
