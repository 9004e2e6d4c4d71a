"""CamVid in the SegNet release layout: ``{split}/`` images and ``{split}annot/`` labels of the same names.

Labels store classes 0..10 and 11 for void (unlabelled); void becomes ``ignore_index`` (255) here, so
losses and metrics leave it out. 480x360 images in the SegNet release (the resolution of the DLA paper's
CamVid results, Tables 5 and 8).

Splits. ``train`` (367 frames of drives 0001TP, 0006R0 and 0016E5), ``val`` (101 frames of 0016E5, interleaved with
train's: in-sequence, so it overstates what a model does on a new drive) and ``test`` (233 frames, mostly Seq05VD,
a drive in neither). Two more split the training folder by drive, so that a recipe can be chosen on a drive it never
trained on: ``train_heldout`` (train without ``HELD_OUT_SEQUENCE``, 266 frames) and ``heldout`` (its 101 frames).
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
HELD_OUT_SEQUENCE = "0006R0"  # the drive of train that the heldout split holds out (file names start with it)
SEQUENCE_SPLITS = {"train_heldout": False, "heldout": True}  # split of the train folder: holds the drive or not

CAMVID_META = DatasetMeta(name="camvid", classes=CAMVID_CLASSES, palette=CAMVID_PALETTE)


class CamVid(SegmentationDataset):
    """The 11-class CamVid of SegNet: ``root/{split}/*.png`` with ``root/{split}annot/*.png``.

    ``split``: ``train`` (367 images), ``val`` (101), ``test`` (233), or ``train`` split by drive: ``train_heldout``
    (266, without ``HELD_OUT_SEQUENCE``) and ``heldout`` (its 101). Labels ``(360, 480)``, void -> 255.
    """

    splits = ("train", "val", "test", *SEQUENCE_SPLITS)

    def load_meta(self) -> DatasetMeta:
        return CAMVID_META

    def find_files(self) -> list[tuple[Path, Path]]:
        folder = "train" if self.split in SEQUENCE_SPLITS else self.split
        images = require_dir(self.root_dir / folder, f"CamVid {folder!r} image folder")
        labels = require_dir(self.root_dir / f"{folder}annot", f"CamVid {folder!r} label folder")
        files = list_images(images)
        if self.split in SEQUENCE_SPLITS:
            files = [file for file in files if file.name.startswith(HELD_OUT_SEQUENCE) == SEQUENCE_SPLITS[self.split]]
        return pair_files(files, lambda p: labels / p.name, str(labels))

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return np.where(raw == CAMVID_VOID, self.meta.ignore_index, raw)
