"""Boundary detection datasets: the shared base, the consensus rule, and a generic folder layout.

A boundary dataset is a two-class segmentation dataset (``background``, ``boundary``; ``ignore_index``
255) with ``task = "boundaries"``, so training reuses the segmentation transforms unchanged:
``dataset[i]`` is ``transform(image, label)`` with ``label`` an ``int64 (H, W)`` map, 1 on boundaries,
0 elsewhere, 255 where ignored (padding from rotation and cropping, and optionally uncertain pixels).

Benchmarks such as BSDS500 have several human annotators per image. Evaluation scores full images against
every one of them, so :meth:`BoundaryDataset.read_annotated` returns the image with all their boolean maps,
untransformed (:meth:`BoundaryDataset.annotations`: the maps alone).
Training supervises with their consensus (:func:`consensus_label`): a pixel is a boundary when at least
``min_annotators`` annotators mark it (3 by default, as in the DLA paper, Sec. 5.4). The threshold is
clamped to the number of annotators an image has, so with a single annotator the label is simply that
annotator's map. With ``ignore_uncertain`` (as in RCF) pixels that some but too few annotators mark are
ignored (255) instead of counted as background.

:class:`BoundaryFolder` (``"boundary_folder"``) is the generic layout, one annotator per image:
``root/images/{split}/<stem>.<ext>`` with ``root/labels/{split}/<stem>.png``, where each PNG is either a
boundary map (``label_kind="boundaries"``: nonzero pixels are boundaries) or a segment / instance mask
(``label_kind="segments"``: boundaries are where the ids change, :func:`boundaries_from_segmentation`).
PASCAL Boundaries goes through this layout, from its instance masks or from boundary PNGs exported from
its release. In a segment mask every distinct value is a segment, a void band included (VOC's 255 borders
would give boundaries on both of its sides): export such datasets as boundary maps instead.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..constants import IGNORE_INDEX
from ..errors import DLAError
from .base import (
    PathLike,
    Sample,
    SegmentationDataset,
    Transform,
    list_images,
    load_image,
    load_label,
    pair_files,
    require_dir,
)
from .meta import DatasetMeta

BOUNDARY_CLASSES = ("background", "boundary")
BOUNDARY_PALETTE = ((0, 0, 0), (255, 255, 255))
LABEL_KINDS = ("boundaries", "segments")


def boundary_meta(name: str) -> DatasetMeta:
    """The meta of a boundary dataset called ``name``: two classes, black and white, ignore value 255."""
    return DatasetMeta(name=name, classes=BOUNDARY_CLASSES, palette=BOUNDARY_PALETTE)


def consensus_label(
    annotations: Sequence[np.ndarray], min_annotators: int, ignore_uncertain: bool, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """The training label of boolean boundary maps ``annotations`` (all ``(H, W)``): ``int64 (H, W)``.

    1 where at least ``min(min_annotators, len(annotations))`` annotators mark the pixel, else 0; with
    ``ignore_uncertain``, pixels marked by at least one but fewer annotators are ``ignore_index``.
    """
    if not annotations:
        raise DLAError("consensus_label needs at least one annotation")
    if min_annotators < 1:
        raise DLAError(f"min_annotators must be at least 1, got {min_annotators}")
    counts = np.sum([np.asarray(a, dtype=bool) for a in annotations], axis=0)
    threshold = min(min_annotators, len(annotations))
    label = (counts >= threshold).astype(np.int64)
    if ignore_uncertain:
        label[(counts > 0) & (counts < threshold)] = ignore_index
    return label


def boundaries_from_segmentation(segment_ids: np.ndarray) -> np.ndarray:
    """The thin (1-pixel) boundaries of an ``(H, W)`` segment / instance id map, as a ``bool (H, W)`` map.

    Convention: pixel ``(y, x)`` is a boundary when its id differs from its right neighbour ``(y, x + 1)``
    or its lower neighbour ``(y + 1, x)``; an edge between two segments is marked on its left / upper side
    only. The image border is not a boundary.
    """
    ids = np.asarray(segment_ids)
    boundaries = np.zeros(ids.shape, dtype=bool)
    boundaries[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    boundaries[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return boundaries


class BoundaryDataset(SegmentationDataset):
    """A split of a boundary dataset: ``files`` pairs each image with the file holding its annotations.

    Subclasses implement ``find_files`` and ``load_annotations`` (every annotator's map in one label
    file). ``read(i)`` gives ``(RGB image, consensus label)``; :meth:`annotations` every annotator's map.
    Attributes beyond :class:`SegmentationDataset`'s: ``min_annotators``, ``ignore_uncertain``.
    """

    task = "boundaries"

    def __init__(
        self,
        root: PathLike | None,
        split: str = "train",
        transform: Transform | None = None,
        min_annotators: int = 3,
        ignore_uncertain: bool = False,
    ) -> None:
        if min_annotators < 1:
            raise DLAError(f"min_annotators must be at least 1, got {min_annotators}")
        self.min_annotators, self.ignore_uncertain = min_annotators, ignore_uncertain
        super().__init__(root, split, transform)

    def load_meta(self) -> DatasetMeta:
        return boundary_meta(self.root_dir.name)

    def load_annotations(self, path: Path) -> list[np.ndarray]:
        """Every annotator's boundary map stored in label file ``path``, as arrays (any dtype, nonzero = boundary)."""
        raise NotImplementedError

    def annotations(self, index: int) -> list[np.ndarray]:
        """Every annotator's ``bool (H, W)`` boundary map of sample ``index``, untransformed, sizes checked."""
        return self.read_annotated(index)[1]

    def read(self, index: int) -> Sample:
        """Sample ``index`` untransformed: ``(RGB PIL image, int64 (H, W) consensus label)``."""
        image, maps = self.read_annotated(index)
        return image, self.consensus(maps)

    def read_label(self, index: int) -> np.ndarray:
        """The consensus label of sample ``index`` from its annotations alone, the image not read."""
        return self.consensus([m != 0 for m in self._annotations(self.files[index][1])])

    def consensus(self, maps: Sequence[np.ndarray]) -> np.ndarray:
        """The training label of one image's boolean annotator maps (``consensus_label`` with this split's rule)."""
        return consensus_label(maps, self.min_annotators, self.ignore_uncertain, self.meta.ignore_index)

    def read_annotated(self, index: int) -> tuple[Image.Image, list[np.ndarray]]:
        """Sample ``index`` untransformed with every annotator's ``bool (H, W)`` map, each checked to be the
        image's size: what the benchmark scores (one read of the image and of its annotations)."""
        image_path, label_path = self.files[index]
        image = load_image(image_path)
        maps = self._annotations(label_path)
        width, height = image.size
        for k, boundary_map in enumerate(maps, 1):
            if boundary_map.shape != (height, width):
                shape = "x".join(str(s) for s in boundary_map.shape[::-1])
                raise DLAError(
                    f"{label_path}: annotator {k}'s boundary map is {shape} but its image {image_path} is "
                    f"{width}x{height} (width x height); they must be the same size"
                )
        return image, [m != 0 for m in maps]

    def _annotations(self, label_path: Path) -> list[np.ndarray]:
        maps = self.load_annotations(label_path)
        if not maps:
            raise DLAError(f"{label_path}: holds no annotations")
        return maps


class BoundaryFolder(BoundaryDataset):
    """Images and one boundary map or segment mask per image, paired by stem (see the module docstring).

    ``images_dir`` / ``labels_dir`` are relative to ``root`` (or absolute); ``{split}`` becomes the split
    name. ``label_kind``: ``"boundaries"`` (nonzero = boundary) or ``"segments"`` (ids; boundaries where
    they change). One annotator per image, so the label is the map itself whatever ``min_annotators``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        images_dir: str = "images/{split}",
        labels_dir: str = "labels/{split}",
        label_kind: str = "boundaries",
        min_annotators: int = 3,
        ignore_uncertain: bool = False,
    ) -> None:
        if label_kind not in LABEL_KINDS:
            raise DLAError(f"label_kind must be one of {', '.join(LABEL_KINDS)}, got {label_kind!r}")
        self.images_dir, self.labels_dir, self.label_kind = images_dir, labels_dir, label_kind
        super().__init__(root, split, transform, min_annotators, ignore_uncertain)

    def find_files(self) -> list[tuple[Path, Path]]:
        images = require_dir(self.root_dir / self.images_dir.format(split=self.split), "image folder")
        labels = require_dir(self.root_dir / self.labels_dir.format(split=self.split), "boundary label folder")
        return pair_files(list_images(images), lambda p: labels / f"{p.stem}.png", str(labels))

    def load_annotations(self, path: Path) -> list[np.ndarray]:
        label = load_label(path)
        return [boundaries_from_segmentation(label) if self.label_kind == "segments" else label]
