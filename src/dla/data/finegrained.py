"""Fine-grained classification datasets in their published layouts: CUB-200-2011, Stanford Cars,
FGVC-Aircraft and Food-101.

Each adapter only parses its list files into ``(image_path, label)`` samples and class names; checking
(missing images, empty splits, labels out of range) and reading are :class:`ClassificationDataset`'s.
Where the published archive unpacks into a folder of its own (``CUB_200_2011/``,
``fgvc-aircraft-2013b/``, ``food-101/``), ``root`` may be that folder or the one that contains it. The
datasets without a validation split accept ``val`` as an alias of ``test``, the split the papers
report on, so that the trainer's default validation split works.
"""

from pathlib import Path

import numpy as np
import scipy  # scipy.io loads on first use, not at every ``dla`` start

from ..errors import DLAError
from .base import ClassificationDataset, ClassSample, ImageTransform, PathLike, read_lines, read_records, require_file


class CUB200(ClassificationDataset):
    """Caltech-UCSD Birds-200-2011 (Wah et al., CNS-TR-2011-001): 200 bird species, 5,994 train / 5,794 test.

    Layout of ``CUB_200_2011.tgz``: ``images.txt`` (``<image_id> <path under images/>``),
    ``image_class_labels.txt`` (``<image_id> <class_id>``, from 1), ``train_test_split.txt``
    (``<image_id> <1: train, 0: test>``), ``classes.txt`` (``<class_id> <name>``, e.g.
    ``1 001.Black_footed_Albatross``) and ``images/<class>/<file>.jpg``.
    """

    name = "cub200"
    splits = ("train", "test")
    aliases = {"val": "test"}
    unpacks_into = "CUB_200_2011"

    def load_classes(self) -> list[str]:
        path = self.root / "classes.txt"
        records = read_records(path, 2)
        for position, (line, (number, _)) in enumerate(records, 1):
            if number != str(position):
                raise DLAError(f"{path}, line {line}: class number {number!r}, expected {position} (1, 2, ...)")
        return [name for _, (_, name) in records]

    def find_samples(self) -> list[ClassSample]:
        paths, labels = _by_id(self.root / "images.txt"), _by_id(self.root / "image_class_labels.txt")
        wanted = "1" if self.split == "train" else "0"
        samples = []
        for image_id, (flag, where) in _by_id(self.root / "train_test_split.txt").items():
            if flag not in ("0", "1"):
                raise DLAError(f"{where}: expected 1 (train) or 0 (test), got {flag!r}")
            if flag != wanted:
                continue
            for table, name in ((paths, "images.txt"), (labels, "image_class_labels.txt")):
                if image_id not in table:
                    raise DLAError(f"{self.root / name}: no line for image {image_id} (listed in {where})")
            number, label_where = labels[image_id]
            label = parse_label(number, len(self.classes), label_where)
            samples.append((self.root / "images" / paths[image_id][0], label))
        return samples


def _by_id(path: Path) -> dict[str, tuple[str, str]]:
    """``{image_id: (value, "<path>, line N")}`` from a CUB file of ``<image_id> <value>`` lines."""
    table: dict[str, tuple[str, str]] = {}
    for line, (image_id, value) in read_records(path, 2):
        if image_id in table:
            raise DLAError(f"{path}, line {line}: image id {image_id} is listed twice (first at {table[image_id][1]})")
        table[image_id] = (value, f"{path}, line {line}")
    return table


class StanfordCars(ClassificationDataset):
    """Stanford Cars (Krause et al., 3dRR 2013): 196 car models, 8,144 train / 8,041 test images.

    Original release: ``devkit/cars_meta.mat`` (``class_names``), ``devkit/cars_train_annos.mat`` and
    ``cars_test_annos_withlabels.mat`` (at the root or in ``devkit/``; the devkit's own
    ``cars_test_annos.mat`` has no labels): struct arrays ``annotations`` with fields ``bbox_x1``,
    ``bbox_y1``, ``bbox_x2``, ``bbox_y2``, ``class`` (from 1) and ``fname``; images in
    ``cars_train/<fname>`` and ``cars_test/<fname>``. Boxes are not used.
    """

    name = "stanford_cars"
    splits = ("train", "test")
    aliases = {"val": "test"}

    def load_classes(self) -> list[str]:
        return [str(name) for name in np.atleast_1d(_load_mat(self.root / "devkit" / "cars_meta.mat", "class_names"))]

    def find_samples(self) -> list[ClassSample]:
        if self.split == "train":
            path = self.root / "devkit" / "cars_train_annos.mat"
        else:
            name = "cars_test_annos_withlabels.mat"
            path = next((p for p in (self.root / name, self.root / "devkit" / name) if p.is_file()), self.root / name)
        annotations = np.atleast_1d(_load_mat(path, "annotations"))
        fields = annotations.dtype.names or ()
        if "class" not in fields or "fname" not in fields:
            raise DLAError(
                f"{path}: 'annotations' has fields {', '.join(fields) or 'none'}, not 'class' and 'fname' "
                "(the test labels are in cars_test_annos_withlabels.mat)"
            )
        folder = self.root / f"cars_{self.split}"
        return [
            (folder / str(fname), parse_label(str(number), len(self.classes), f"{path}, annotation {i}"))
            for i, (fname, number) in enumerate(zip(annotations["fname"], annotations["class"], strict=True), 1)
        ]


def _load_mat(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of the MATLAB file ``path``, singleton dimensions squeezed."""
    require_file(path, "annotation file")
    try:
        contents = scipy.io.loadmat(path, squeeze_me=True)
    except Exception as e:  # scipy raises anything on a bad file: MatReadError, ValueError, IndexError, ...
        raise DLAError(f"{path}: cannot read it as a MATLAB file ({e})") from e
    if key not in contents:
        found = ", ".join(k for k in contents if not k.startswith("__")) or "none"
        raise DLAError(f"{path}: no variable {key!r} (found: {found})")
    return contents[key]


class FGVCAircraft(ClassificationDataset):
    """FGVC-Aircraft 2013b (Maji et al., arXiv:1306.5151): 10,000 images of 100 variants, 70 families,
    30 manufacturers; splits ``train``, ``val``, ``trainval`` (6,667) and ``test`` (3,333).

    Layout of ``fgvc-aircraft-2013b.tar.gz``: ``data/images/<id>.jpg``, the class names in
    ``data/variants.txt`` (one per line; they hold spaces and slashes, e.g. ``Boeing 707-320``,
    ``F/A-18``), and ``data/images_variant_<split>.txt`` lines ``<id> <class name>``;
    ``annotation_level`` ``family`` or ``manufacturer`` reads ``families.txt`` /
    ``images_family_<split>.txt`` or ``manufacturers.txt`` / ``images_manufacturer_<split>.txt``
    instead. ``root`` is the folder holding ``data/`` (or ``fgvc-aircraft-2013b/data/``); ``self.root``
    is ``data/`` itself. The images keep their 20-pixel copyright banner at the bottom.
    """

    name = "fgvc_aircraft"
    splits = ("train", "val", "trainval", "test")
    LEVELS = {"variant": "variants", "family": "families", "manufacturer": "manufacturers"}

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: ImageTransform | None = None,
        annotation_level: str = "variant",
    ) -> None:
        if annotation_level not in self.LEVELS:
            valid = ", ".join(self.LEVELS)
            raise DLAError(f"FGVCAircraft has no annotation_level {annotation_level!r}; valid: {valid}")
        self.annotation_level = annotation_level
        super().__init__(root, split, transform)

    def locate_root(self, root: Path) -> Path:
        inner = root / "fgvc-aircraft-2013b" / "data"
        return inner if inner.is_dir() and not (root / "data").is_dir() else root / "data"

    def load_classes(self) -> list[str]:
        return read_lines(require_file(self.root / f"{self.LEVELS[self.annotation_level]}.txt", "class list"))

    def find_samples(self) -> list[ClassSample]:
        path = self.root / f"images_{self.annotation_level}_{self.split}.txt"
        index = {name: i for i, name in enumerate(self.classes)}
        return [
            (self.root / "images" / f"{image_id}.jpg", class_by_name(name, index, f"{path}, line {line}"))
            for line, (image_id, name) in read_records(path, 2)
        ]


class Food101(ClassificationDataset):
    """Food-101 (Bossard et al., ECCV 2014): 101 dishes, 75,750 train / 25,250 test images.

    Layout of ``food-101.tar.gz``: ``meta/classes.txt`` (one class per line), ``meta/train.txt`` and
    ``meta/test.txt`` (lines ``<class>/<image id>``, e.g. ``apple_pie/1005649``) and
    ``images/<class>/<image id>.jpg``.
    """

    name = "food101"
    splits = ("train", "test")
    aliases = {"val": "test"}
    unpacks_into = "food-101"

    def load_classes(self) -> list[str]:
        return read_lines(require_file(self.root / "meta" / "classes.txt", "class list"))

    def find_samples(self) -> list[ClassSample]:
        path = self.root / "meta" / f"{self.split}.txt"
        index = {name: i for i, name in enumerate(self.classes)}
        samples = []
        for line, (entry,) in read_records(path, 1):
            name, slash, _ = entry.partition("/")
            if not slash:
                raise DLAError(f"{path}, line {line}: expected <class>/<image id>, got {entry!r}")
            samples.append((self.root / "images" / f"{entry}.jpg", class_by_name(name, index, f"{path}, line {line}")))
        return samples


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


def class_by_name(name: str, index: dict[str, int], where: str) -> int:
    """The index of class ``name`` in ``index`` (name -> index); ``where`` names file and line."""
    try:
        return index[name]
    except KeyError:
        raise DLAError(f"{where}: unknown class {name!r} (not one of the {len(index)} classes)") from None
