"""CamVid in the SegNet release layout: ``{split}/`` images and ``{split}annot/`` labels of the same names.

Labels store classes 0..10 and 11 for void (unlabelled); void becomes ``ignore_index`` (255) here, so
losses and metrics leave it out. 480x360 images in the SegNet release (the resolution of the DLA paper's
CamVid results, Tables 5 and 8).
"""

from pathlib import Path

import numpy as np

from .base import SegmentationDataset, list_images, pair_files, require_dir
from .meta import DatasetMeta

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
# The SegNet tutorial's CamVid colours, in class order.
CAMVID_PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
CAMVID_VOID = 11

CAMVID_META = DatasetMeta(name="camvid", classes=CAMVID_CLASSES, palette=CAMVID_PALETTE)


class CamVid(SegmentationDataset):
    """The 11-class CamVid of SegNet: ``root/{split}/*.png`` with ``root/{split}annot/*.png``.

    ``split``: ``train`` (367 images), ``val`` (101) or ``test`` (233). Labels ``(360, 480)``, void -> 255.
    """

    splits = ("train", "val", "test")

    def load_meta(self) -> DatasetMeta:
        return CAMVID_META

    def find_files(self) -> list[tuple[Path, Path]]:
        images = require_dir(self.root_dir / self.split, f"CamVid {self.split!r} image folder")
        labels = require_dir(self.root_dir / f"{self.split}annot", f"CamVid {self.split!r} label folder")
        return pair_files(list_images(images), lambda p: labels / p.name, str(labels))

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return np.where(raw == CAMVID_VOID, self.meta.ignore_index, raw)
