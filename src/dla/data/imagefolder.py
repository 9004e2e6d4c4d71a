"""The ImageFolder classification layout (ImageNet style).

``root/<split>/<class>/<image>``, e.g. ``root/train/n01440764/n01440764_10026.JPEG`` and
``root/val/n01440764/...``. Classes are the sorted sub-folder names of ``root/train`` when it exists, else
of the split's own folder, so that every split gets the same class indices even when one lacks a class;
``classes=[...]`` fixes the list and order. Images are the files with an image extension (any case),
hidden files skipped. An empty split is refused, and so is a class folder without images in the split
whose folders define the classes (a class the model could never learn: usually a copy that failed, or
images whose extension is not one read); another split may lack a class, or have it empty. Checking and
reading are otherwise :class:`~dla.data.base.ClassificationDataset`'s.
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..errors import DLAError
from .base import IMAGE_EXTENSIONS, ClassificationDataset, ClassSample, ImageTransform, PathLike, list_images, listed


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
        transform: ImageTransform | None = None,
        classes: Sequence[str] | None = None,
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

    def load_classes(self) -> list[str]:
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

    def find_samples(self) -> list[ClassSample]:
        index = {name: i for i, name in enumerate(self.classes)}
        samples: list[ClassSample] = []
        for folder in _subfolders(self._split_dir()):
            if folder.name not in index:
                raise DLAError(
                    f"{folder}: class folder {folder.name!r} is not one of the {len(index)} classes "
                    f"(the sub-folders of {self._class_dir()}, or those passed in classes=)"
                )
            samples.extend((path, index[folder.name]) for path in list_images(folder))
        return samples

    def _check_samples(self) -> None:
        """The base's checks, then that every class has an image when this split defines the classes."""
        super()._check_samples()
        if self._split_dir() != self._class_dir():
            return
        counts = Counter(self.targets)
        empty = [name for label, name in enumerate(self.classes) if counts[label] == 0]
        if empty:
            others = f" (the same holds for {listed(empty[1:], 3)})" if len(empty) > 1 else ""
            raise DLAError(
                f"{self._split_dir() / empty[0]}: class folder {empty[0]!r} of the {self.split!r} split has no images "
                f"(no file ending in {', '.join(IMAGE_EXTENSIONS)}); add images to it or remove the folder{others}"
            )


def _subfolders(folder: Path) -> list[Path]:
    """The folders directly inside ``folder``, sorted by name (hidden ones skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
