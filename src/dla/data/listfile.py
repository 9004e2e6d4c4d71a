"""The DLA authors' list-file format: ``{split}_images.txt`` and ``{split}_labels.txt`` plus ``info.json``.

``root/{split}_images.txt`` and ``root/{split}_labels.txt`` hold one path per line, relative to ``root``
(absolute paths work too), paired by line number; blank lines are skipped in both. ``root/info.json``
holds ``mean`` and ``std`` (three numbers each, on the 0..1 scale), and optionally ``classes`` (a list
of names, or their number), ``palette`` (a list of ``[r, g, b]``) and ``ignore_index`` (default 255).
Labels are single-channel images of class indices, used as stored.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..constants import IGNORE_INDEX
from ..errors import DLAError
from .base import PathLike, SegmentationDataset, Transform, read_lines
from .meta import DatasetMeta, channel_triple, colour, default_palette


class ListFileDataset(SegmentationDataset):
    """A dataset described by list files (see the module docstring); ``split`` is the list files' prefix.

    ``num_classes`` is needed when ``info.json`` has no ``classes``; when both are given they must agree.
    Class names default to ``class_0, class_1, ...``; the palette to :func:`default_palette`.
    """

    def __init__(
        self, root: PathLike, split: str = "train", transform: Transform | None = None, num_classes: int | None = None
    ) -> None:
        self.num_classes = num_classes
        super().__init__(root, split, transform)

    def load_meta(self) -> DatasetMeta:
        path = self.root_dir / "info.json"
        info = _read_info(path)
        classes = _class_names(info.get("classes"), self.num_classes, path)
        palette = info.get("palette", default_palette(len(classes)))
        if len(palette) < len(classes) or any(len(c) != 3 for c in palette):
            raise DLAError(f"{path}: 'palette' must hold an [r, g, b] colour for each of the {len(classes)} classes")
        return DatasetMeta(
            name=self.root_dir.name,
            classes=classes,
            palette=tuple(colour(c, f"{path}: palette colour {i}") for i, c in enumerate(palette[: len(classes)])),
            mean=_triple(info, "mean", path),
            std=_triple(info, "std", path),
            ignore_index=int(info.get("ignore_index", IGNORE_INDEX)),
        )

    def find_files(self) -> list[tuple[Path, Path]]:
        image_list, label_list = (self.root_dir / f"{self.split}_{kind}.txt" for kind in ("images", "labels"))
        for path in (image_list, label_list):
            if not path.is_file():
                raise DLAError(f"{path}: list file for split {self.split!r} not found")
        images, labels = read_lines(image_list), read_lines(label_list)
        if len(images) != len(labels):
            raise DLAError(
                f"{image_list} lists {len(images)} images but {label_list} lists {len(labels)} labels; they pair by line"
            )
        pairs = [(self.root_dir / image, self.root_dir / label) for image, label in zip(images, labels, strict=True)]
        for line, (image, label) in enumerate(pairs, 1):
            if not image.is_file():
                raise DLAError(f"{image}: image not found (line {line} of {image_list})")
            if not label.is_file():
                raise DLAError(f"{label}: label not found for image {image} (line {line} of {label_list})")
        return pairs


def _read_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise DLAError(f"{path}: info.json not found (it must give 'mean' and 'std')") from None
    except (OSError, ValueError) as e:
        raise DLAError(f"{path}: cannot read it as JSON ({e})") from e
    if not isinstance(info, dict):
        raise DLAError(f"{path}: expected a JSON object with 'mean' and 'std'")
    return info


def _triple(info: dict[str, Any], key: str, path: Path) -> tuple[float, float, float]:
    value = info.get(key)
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, (int, float)) for v in value):
        raise DLAError(f"{path}: {key!r} must be a list of three numbers (one per RGB channel), got {value!r}")
    return channel_triple(value, f"{path}: {key!r}")


def _class_names(classes: Any, num_classes: int | None, path: Path) -> tuple[str, ...]:
    """Class names from info.json's ``classes`` (names or a count) and/or the ``num_classes`` argument."""
    if isinstance(classes, int) and not isinstance(classes, bool):
        names: Sequence[str] | None = [f"class_{i}" for i in range(classes)]
    elif isinstance(classes, list) and all(isinstance(c, str) for c in classes):
        names = classes
    elif classes is None:
        names = None
    else:
        raise DLAError(f"{path}: 'classes' must be a list of class names or their number, got {classes!r}")
    if names is None:
        if num_classes is None:
            raise DLAError(f"{path}: no 'classes' given; add them to info.json or pass num_classes")
        names = [f"class_{i}" for i in range(num_classes)]
    elif num_classes is not None and len(names) != num_classes:
        raise DLAError(f"{path}: 'classes' lists {len(names)} classes but num_classes={num_classes} was given")
    if not names:
        raise DLAError(f"{path}: the dataset needs at least one class")
    return tuple(names)
