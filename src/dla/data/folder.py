"""A plain folder layout: images in one folder, masks in another, paired by file stem.

``images_dir`` and ``masks_dir`` are relative to ``root`` (or absolute) and may contain ``{split}``,
which is replaced by the split name: the defaults ``images/{split}`` and ``masks/{split}`` read
``root/images/train/a.jpg`` with ``root/masks/train/a.png``. Pass ``"images"`` / ``"masks"`` for a
dataset with one split. A mask is the file in ``masks_dir`` whose stem is the image's stem plus
``mask_suffix`` (any image extension). Class names come from ``classes`` or from ``root/classes.txt``
(one name per line, in index order). Masks are single-channel images of class indices.
"""

from collections.abc import Sequence
from pathlib import Path

from ..constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from ..errors import DLAError
from .base import PathLike, SegmentationDataset, Transform, list_images, pair_files, read_lines, require_dir
from .meta import DatasetMeta, channel_triple, colour, default_palette


class FolderDataset(SegmentationDataset):
    """Images and masks paired by stem (see the module docstring); ``split`` fills ``{split}`` in the folder names."""

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        images_dir: str = "images/{split}",
        masks_dir: str = "masks/{split}",
        classes: Sequence[str] | None = None,
        ignore_index: int = IGNORE_INDEX,
        mask_suffix: str = "",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        palette: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.images_dir, self.masks_dir, self.mask_suffix = images_dir, masks_dir, mask_suffix
        self._classes, self._palette = classes, palette
        self._ignore_index, self._mean, self._std = ignore_index, mean, std
        super().__init__(root, split, transform)

    def load_meta(self) -> DatasetMeta:
        names = tuple(self._classes) if self._classes is not None else self._read_classes()
        if not names:
            raise DLAError(f"{self.root}: FolderDataset needs at least one class name")
        palette = self._palette if self._palette is not None else default_palette(len(names))
        if len(palette) < len(names):
            raise DLAError(f"palette has {len(palette)} colours for {len(names)} classes")
        return DatasetMeta(
            name=self.root_dir.name,
            classes=names,
            palette=tuple(colour(c, f"palette colour {i}") for i, c in enumerate(palette[: len(names)])),
            mean=channel_triple(self._mean, "mean"),
            std=channel_triple(self._std, "std"),
            ignore_index=int(self._ignore_index),
        )

    def _read_classes(self) -> tuple[str, ...]:
        path = self.root_dir / "classes.txt"
        if not path.is_file():
            raise DLAError(f"{path}: not found; pass the class names (classes=[...]) or write them there, one per line")
        return tuple(read_lines(path))

    def find_files(self) -> list[tuple[Path, Path]]:
        images = require_dir(self.root_dir / self.images_dir.format(split=self.split), "image folder")
        masks = require_dir(self.root_dir / self.masks_dir.format(split=self.split), "mask folder")
        by_stem = _index_by_stem(list_images(masks))
        return pair_files(list_images(images), lambda p: by_stem.get(p.stem + self.mask_suffix), str(masks))


def _index_by_stem(paths: list[Path]) -> dict[str, Path]:
    """``{stem: path}``; :class:`DLAError` when two files share a stem (the pairing would be ambiguous)."""
    index: dict[str, Path] = {}
    for path in paths:
        if path.stem in index:
            raise DLAError(f"{path}: two masks share the stem {path.stem!r} ({index[path.stem].name} and {path.name})")
        index[path.stem] = path
    return index
