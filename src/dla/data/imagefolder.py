"""The base class of every classification dataset, and the ImageFolder layout.

Contract. ``read(i)`` returns ``(image, label)``: ``image`` a ``PIL.Image`` in mode ``RGB`` (grayscale,
RGBA, palette and CMYK inputs are converted by :func:`~dla.data.base.load_image`), ``label`` an ``int``
class index ``0 .. len(classes) - 1``. ``dataset[i]`` is ``(transform(image), label)``: the transform
sees the image only; without one the raw pair is returned. ``samples`` lists ``(image_path, label)``
sorted by path, ``targets`` the labels alone (read without opening an image).

Validation is split by cost, as for segmentation. The constructor checks what is cheap: the root exists,
the split is known, the list files exist and every line parses, every class named or numbered is a
class, every listed image file exists, the split is not empty. Whether an image decodes is checked by
``read``, every time. Every problem raises :class:`~dla.errors.DLAError` naming the file (and the line).

Subclasses (one per on-disk layout, see also :mod:`dla.data.finegrained`) set ``name``, ``splits`` and
``aliases``, and implement ``load_classes`` and ``find_samples``; ``locate_root`` lets them accept the
folder that contains the dataset's own top folder. The helpers :func:`require_file`,
:func:`read_records`, :func:`parse_label` and :func:`class_by_name` parse list files with messages that
name the file and line.

ImageFolder layout (:class:`ImageFolder`, ImageNet style): ``root/<split>/<class>/<image>``, e.g.
``root/train/n01440764/n01440764_10026.JPEG`` and ``root/val/n01440764/...``. Classes are the sorted
sub-folder names of ``root/train`` when it exists, else of the split's own folder, so that every split
gets the same class indices even when one lacks a class; ``classes=[...]`` fixes the list and order.
Images are the files with an image extension (any case), hidden files skipped. Empty class folders
are allowed; an empty split is not.
"""

from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from PIL import Image

from ..errors import DLAError
from .base import PathLike, list_images, load_image, require_dir
from .meta import DatasetMeta, default_palette

ImageTransform = Callable[[Image.Image], object]
ClassSample = Tuple[Path, int]


class ClassificationDataset(torch.utils.data.Dataset):
    """A split of an image classification dataset: ``samples`` pairs image paths with class indices.

    Attributes: ``root`` (``Path``, after ``locate_root``), ``split`` (the canonical name, aliases
    resolved), ``transform``, ``classes`` (``list`` of names), ``samples`` (``list`` of ``(path, label)``,
    sorted), ``targets`` and ``meta`` (:class:`DatasetMeta`; ``name`` is the class attribute ``name``,
    or the root folder's name when that is ``None``). See the module docstring for the sample contract.
    """

    task = "classification"
    needs_root = True
    name: Optional[str] = None  # DatasetMeta.name; None: the root folder's name
    splits: Optional[Tuple[str, ...]] = None  # accepted split names; None: any name
    aliases: Mapping[str, str] = {}  # other accepted split names -> the split they read
    unpacks_into: Optional[str] = None  # the folder of the published archive, which root may hold

    def __init__(self, root: PathLike, split: str = "train", transform: Optional[ImageTransform] = None) -> None:
        super().__init__()
        self.split = self._resolve_split(split)
        self.transform = transform
        if root is None:
            raise DLAError(f"{type(self).__name__} needs a root folder (got none)")
        self.root = self.locate_root(require_dir(Path(root).expanduser(), f"{type(self).__name__} root folder"))
        self.classes: List[str] = list(self.load_classes())
        self._check_classes()
        self.samples: List[ClassSample] = sorted(self.find_samples())
        self._check_samples()
        self.meta = DatasetMeta(
            name=self.name or self.root.name,
            classes=tuple(self.classes),
            palette=tuple(default_palette(len(self.classes))),
        )

    def _resolve_split(self, split: str) -> str:
        split = self.aliases.get(split, split)
        if self.splits is not None and split not in self.splits:
            valid = ", ".join(self.splits)
            also = "".join(f" (or {alias}, an alias of {name})" for alias, name in self.aliases.items())
            raise DLAError(f"{type(self).__name__} has no split {split!r}; valid splits: {valid}{also}")
        return split

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

    def load_classes(self) -> List[str]:
        """The class names, in index order."""
        raise NotImplementedError

    def find_samples(self) -> List[ClassSample]:
        """The ``(image_path, label)`` pairs of the split (any order; missing files are reported by the base)."""
        raise NotImplementedError

    @property
    def targets(self) -> List[int]:
        """The label of every sample, in ``samples`` order."""
        return [label for _, label in self.samples]

    def read(self, index: int) -> Tuple[Image.Image, int]:
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


class ImageFolder(ClassificationDataset):
    """``root/<split>/<class>/<image>`` (see the module docstring); any split name that is a folder.

    ``classes`` fixes the class names and their order: the class-defining folder (``root/train`` when
    it exists, else the split's) must then hold exactly those sub-folders, and the split's folder no
    others.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Optional[ImageTransform] = None,
        classes: Optional[Sequence[str]] = None,
    ) -> None:
        self._classes = classes
        super().__init__(root, split, transform)

    def _split_dir(self) -> Path:
        folder = self.root / self.split
        if not folder.is_dir():
            found = ", ".join(p.name for p in _subfolders(self.root)) or "none"
            raise DLAError(f"{folder}: folder of split {self.split!r} not found; split folders in {self.root}: {found}")
        return folder

    def _class_dir(self) -> Path:
        """The folder whose sub-folders define the classes: ``root/train`` when it exists, else the split's."""
        train = self.root / "train"
        return train if train.is_dir() else self._split_dir()

    def load_classes(self) -> List[str]:
        folder = self._class_dir()
        found = [p.name for p in _subfolders(folder)]
        if self._classes is None:
            return found
        classes = list(self._classes)
        missing = [name for name in classes if name not in found]
        if missing:
            raise DLAError(f"{folder / missing[0]}: no folder for the class {missing[0]!r} listed in classes=")
        extra = [name for name in found if name not in classes]
        if extra:
            raise DLAError(f"{folder / extra[0]}: class folder {extra[0]!r} is not one of the classes= passed")
        return classes

    def find_samples(self) -> List[ClassSample]:
        index = {name: i for i, name in enumerate(self.classes)}
        samples = []
        for folder in _subfolders(self._split_dir()):
            if folder.name not in index:
                raise DLAError(
                    f"{folder}: class folder {folder.name!r} is not one of the {len(index)} classes "
                    f"(the sub-folders of {self._class_dir()}, or those passed in classes=)"
                )
            samples.extend((path, index[folder.name]) for path in list_images(folder))
        return samples


def _subfolders(folder: Path) -> List[Path]:
    """The folders directly inside ``folder``, sorted by name (hidden ones skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`DLAError` saying which file (``what``) is missing."""
    if not path.is_file():
        raise DLAError(f"{path}: {what} not found")
    return path


def read_records(path: Path, fields: int) -> List[Tuple[int, List[str]]]:
    """``(line number, fields)`` for each non-blank line of the list file ``path``.

    A line is split on whitespace into exactly ``fields`` fields, the last one taking the rest of the
    line (so it may hold spaces, as FGVC-Aircraft's class names do); a shorter line is an error naming
    the file and line.
    """
    try:
        lines = require_file(path, "list file").read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DLAError(f"{path}: cannot read the list file ({e})") from e
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=fields - 1)
        if len(parts) != fields:
            raise DLAError(f"{path}, line {number}: expected {fields} fields separated by spaces, got {line.strip()!r}")
        records.append((number, parts))
    return records


def parse_label(text: str, num_classes: int, where: str, first: int = 1) -> int:
    """The class index of the class number ``text`` (numbered from ``first``); ``where`` names file and line."""
    try:
        number = int(text)
    except ValueError:
        raise DLAError(f"{where}: class number {text!r} is not an integer") from None
    if not first <= number < first + num_classes:
        last = first + num_classes - 1
        raise DLAError(f"{where}: class {number} is not one of the {num_classes} classes {first}..{last}")
    return number - first


def class_by_name(name: str, index: Dict[str, int], where: str) -> int:
    """The index of class ``name`` in ``index`` (name -> index); ``where`` names file and line."""
    try:
        return index[name]
    except KeyError:
        raise DLAError(f"{where}: unknown class {name!r} (not one of the {len(index)} classes)") from None
