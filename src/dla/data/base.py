"""The base classes of every dataset (:class:`SegmentationDataset`, :class:`ClassificationDataset`) and
the file helpers the layouts share.

Segmentation contract. ``read(i)`` returns ``(image, label)``: ``image`` a ``PIL.Image`` in mode ``RGB``
(other modes are converted, see below; an alpha channel is dropped), ``label`` a
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
What the file headers tell (every image and label opens as an image of a mode the readers handle, the
label has its image's size) is checked by :meth:`TaskDataset.verify`, for every file of the split at once,
which the engine calls before training. What needs the pixels (the image decodes completely, the label
holds only valid values) is checked by ``read``, every time a sample is read. Every problem raises
:class:`~dla.errors.DLAError` naming the file (and the line).

Image modes. :func:`load_image` gives ``RGB`` from bilevel, grayscale, palette, RGB(A), CMYK, YCbCr and
LAB files; 16-bit grayscale (PNG, TIFF, PGM) is scaled to 8 bits (``v >> 8``), not clipped to
white; 32-bit float (``F``) and any other mode are refused naming the file and the mode.
:func:`load_label` reads bilevel, 8- and 16-bit grayscale and palette indices, and refuses the rest.

Segmentation subclasses (one per on-disk layout) set ``splits`` (or leave it ``None`` for free-form split
names) and implement ``load_meta`` and ``find_files``; ``decode_label`` turns stored label values into
class indices where the stored ones differ (CamVid's void, Cityscapes' label ids). Classification
subclasses (:mod:`dla.data.imagefolder`, :mod:`dla.data.finegrained`) set ``name``, ``splits`` and
``aliases``, and implement ``load_classes`` and ``find_samples``; ``locate_root`` lets them accept the
folder that contains the dataset's own top folder.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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

# How each PIL mode becomes RGB. PIL converts these keeping their meaning: bilevel and 8-bit grayscale
# repeated, palette colours looked up, alpha dropped, CMYK / YCbCr / LAB / HSV converted to RGB.
_CONVERTIBLE_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"})
# Grayscale wider than 8 bits, which PIL's own conversion clips to white: 16-bit PNG, TIFF and PGM (I;16*),
# and 32-bit ``I`` (what 16-bit PGMs and some TIFFs open as). Scaled to 8 bits by ``_wide_gray_to_rgb``.
_WIDE_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
IMAGE_MODES = _CONVERTIBLE_MODES | _WIDE_GRAY_MODES
# Single-channel modes whose stored values are class indices (``P``: the palette indices, not the colours).
LABEL_MODES = frozenset({"1", "L", "P"}) | _WIDE_GRAY_MODES
_MAX_16_BIT = 65535

# Why a mode that is not read is refused, where there is more to say than that it is not one of the above.
_REFUSED_BECAUSE = {
    "F": "32-bit floating point, whose scale to 8 bits is ambiguous: 0..1? 0..255?",
}


@contextmanager
def _opened(path: PathLike, what: str) -> Iterator[Image.Image]:
    """``Image.open(path)`` (the header only, until ``.load()``), with every failure to open or decode it inside
    the block a :class:`DLAError` naming the file; ``what`` (``image``, ``label image``) says which file it is."""
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise DLAError(f"{path}: {what} file not found") from None
    except _PIL_ERRORS as e:
        raise DLAError(f"{path}: cannot read the {what} ({e}); not an image, or truncated or corrupt") from e


def _require_image_mode(path: PathLike, mode: str) -> None:
    if mode not in IMAGE_MODES:
        why = _REFUSED_BECAUSE.get(mode, "not a mode dla converts to RGB")
        raise DLAError(f"{path}: image has mode {mode} ({why}); save it as 8-bit RGB, 8-bit grayscale or 16-bit grayscale")


def _require_label_mode(path: PathLike, mode: str) -> None:
    if mode not in LABEL_MODES:
        raise DLAError(
            f"{path}: label image has mode {mode}; expected a single-channel image of class "
            "indices (8- or 16-bit grayscale or palette), not a colour rendering"
        )


def _wide_gray_to_rgb(image: Image.Image, path: PathLike) -> Image.Image:
    """A 16-bit grayscale image as 8-bit RGB: value ``v`` becomes its high byte ``v >> 8`` (``0 -> 0``,
    ``65535 -> 255``, ``257 k -> k``), as PIL itself reads 16-bit RGB and RGBA PNGs, so that a 16-bit grayscale
    image and its 16-bit colour copy give the same pixels.

    Mode ``I`` (32-bit signed) is read as 16-bit whatever its values: its maximum does not choose the scale,
    so an image's brightness does not depend on its content; a value outside ``0 .. 65535`` is refused.
    """
    values = np.asarray(image, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() > _MAX_16_BIT):
        raise DLAError(
            f"{path}: image has mode {image.mode} with values {values.min()}..{values.max()}, outside the 16-bit range "
            f"0..{_MAX_16_BIT} dla reads it as; save it as 8-bit or 16-bit grayscale"
        )
    return Image.fromarray((values >> 8).astype(np.uint8)).convert("RGB")


def load_image(path: PathLike) -> Image.Image:
    """The image at ``path`` as ``RGB``, fully decoded (``.load()`` so that truncated files fail here).

    Modes: see ``_CONVERTIBLE_MODES`` and ``_WIDE_GRAY_MODES`` (16-bit grayscale scaled to 8 bits, not
    clipped); any other (``F``: floats of unknown range) is refused naming the file and the mode. Palette
    images with a transparent colour go through ``RGBA`` (PIL's advice); alpha is dropped, so a transparent
    pixel keeps the colour stored under it.
    """
    with _opened(path, "image") as image:
        image.load()
        return to_rgb(image, path)


def to_rgb(image: Image.Image, source: PathLike) -> Image.Image:
    """A decoded image of any mode :func:`load_image` reads as ``RGB``, the same conversion for a file and for an
    image in memory; ``source`` (the file, or what the image is) names it in the :class:`DLAError` of a mode refused."""
    _require_image_mode(source, image.mode)
    if image.mode in _WIDE_GRAY_MODES:
        return _wide_gray_to_rgb(image, source)
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def load_label(path: PathLike) -> np.ndarray:
    """The single-channel label image at ``path`` as a ``(H, W)`` ``int64`` array of its stored values.

    Modes ``LABEL_MODES``: palette (``P``) PNGs give their indices, not their colours, which is how VOC
    stores classes; 16-bit values are kept as they are (ids, not intensities). Colour, alpha or float
    images are refused: they are almost always a visualisation saved instead of the labels.
    """
    with _opened(path, "label image") as label:
        _require_label_mode(path, label.mode)
        label.load()
        return np.asarray(label).astype(np.int64)


def image_header(path: PathLike) -> tuple[int, int]:
    """The ``(width, height)`` of the image at ``path`` from its header alone (no pixels decoded), after
    checking that it opens as an image of a mode :func:`load_image` reads; :class:`DLAError` otherwise."""
    with _opened(path, "image") as image:
        _require_image_mode(path, image.mode)
        return image.size


def label_header(path: PathLike) -> tuple[int, int]:
    """The ``(width, height)`` of the label image at ``path`` from its header alone, after checking that it
    opens as an image of a mode :func:`load_label` reads; :class:`DLAError` otherwise."""
    with _opened(path, "label image") as label:
        _require_label_mode(path, label.mode)
        return label.size


def require_same_size(
    label_size: tuple[int, int], image_size: tuple[int, int], label_path: PathLike, image_path: PathLike
) -> None:
    """:class:`DLAError` naming both files when a label (``(width, height)``) is not its image's size."""
    if label_size != image_size:
        raise DLAError(
            f"{label_path}: label is {label_size[0]}x{label_size[1]} but its image {image_path} is "
            f"{image_size[0]}x{image_size[1]} (width x height); they must be the same size"
        )


def check_sample(image: Image.Image, label: np.ndarray, meta: DatasetMeta, image_path: PathLike, label_path: PathLike) -> None:
    """Raise :class:`DLAError` when ``label`` is not the image's size or holds values that are not classes."""
    height, width = label.shape
    require_same_size((width, height), image.size, label_path, image_path)
    bad = ((label < 0) | (label >= meta.num_classes)) & (label != meta.ignore_index)
    if bad.any():
        values = np.unique(label[bad])
        shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise DLAError(
            f"{label_path}: label values {shown} are outside the {meta.num_classes} classes 0..{meta.num_classes - 1} "
            f"of {meta.name} and are not the ignore value {meta.ignore_index}"
        )


def listed(items: Sequence[object], limit: int) -> str:
    """The first ``limit`` of ``items`` joined by commas, and how many more there are: ``a, b and 3 more``."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(str(item) for item in items[:limit]) + more


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
        raise DLAError(f"{len(missing)} image(s) have no label in {where}: {listed(missing, 5)}")
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


VERIFY_SHOWN = 5  # bad files TaskDataset.verify names in its message


class TaskDataset(torch.utils.data.Dataset):
    """What every dataset has, and what the engine and the tasks read of one: the task its samples are for,
    ``meta`` (classes, palette, normalisation, ignore value) and its length; and what both base classes share,
    the split name (checked, aliases resolved) and the root folder."""

    task: str  # what the samples are for (the trainer checks it against the config's task)
    meta: DatasetMeta
    split: str
    splits: Sequence[str] | None = None  # accepted split names; None: any name
    aliases: Mapping[str, str] = {}  # other accepted split names -> the split they read
    needs_root: bool = True

    def __len__(self) -> int:
        raise NotImplementedError

    def verify(self) -> None:
        """Check every sample's files from their headers alone, before training reads them; raise
        :class:`DLAError` listing the bad files (the first ``VERIFY_SHOWN``, and how many there are), each
        with what is wrong.

        Headers only (``Image.open`` without ``.load()``, the MAT-file header): each image opens as an
        image of a mode :func:`load_image` reads, each label as one :func:`load_label` reads, of its image's
        size. A file truncated after its header or a label value that is not a class is still found by
        ``read``, when the sample is read. Every sample is checked, so one run names every bad file.
        """
        problems = []
        for index in range(len(self)):
            try:
                self.verify_sample(index)
            except DLAError as e:
                problems.append(str(e))
        if problems:
            shown = "".join(f"\n  {problem}" for problem in problems[:VERIFY_SHOWN])
            more = f"\n  and {len(problems) - VERIFY_SHOWN} more" if len(problems) > VERIFY_SHOWN else ""
            raise DLAError(
                f"{len(problems)} of the {len(self)} samples of the {self.split!r} split of {type(self).__name__} "
                f"cannot be read; fix or remove these files:{shown}{more}"
            )

    def verify_sample(self, index: int) -> None:
        """Raise :class:`DLAError` naming the file when the headers of sample ``index``'s files show that
        it cannot be read (see :meth:`verify`); decode no pixels."""
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

    def verify_sample(self, index: int) -> None:
        image_path, label_path = self.files[index]
        self.verify_label(label_path, image_path, image_header(image_path))

    def verify_label(self, label_path: Path, image_path: Path, image_size: tuple[int, int]) -> None:
        """Raise :class:`DLAError` when the header of ``label_path`` shows it is no label of the image
        ``image_path`` of ``image_size`` ``(width, height)``: a label image of a mode read, of that size."""
        require_same_size(label_header(label_path), image_size, label_path, image_path)

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
            raise DLAError(f"{len(missing)} of the {len(self.samples)} images of {what} not found: {listed(missing, 3)}")
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

    def verify_sample(self, index: int) -> None:
        image_header(self.samples[index][0])

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
