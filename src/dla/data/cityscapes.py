"""Cityscapes fine annotations: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``gtFine/...``.

The stored ``*_gtFine_labelIds.png`` hold the 34 label ids (0..33); training uses the 19 evaluated
classes (train ids 0..18) and ignores the rest (255). The mapping is a 256-entry lookup table applied
to the whole array at once. When ``*_gtFine_labelTrainIds.png`` exists next to a label-ids file (as the
official ``createTrainIdLabelImgs`` script or :func:`prepare_cityscapes` writes it) it is read instead:
no relabelling, and the same result.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from ..constants import IGNORE_INDEX
from ..errors import DLAError
from .base import PathLike, SegmentationDataset, load_label, lookup_table, pair_files, require_dir
from .meta import DatasetMeta

CITYSCAPES_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
CITYSCAPES_PALETTE = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)
# label id -> train id for the 19 evaluated classes (cityscapesScripts' labels.py); all other ids -> 255.
LABEL_TO_TRAIN_ID = {
    label_id: train_id
    for train_id, label_id in enumerate((7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33))
}
NUM_LABEL_IDS = 34
_TRAIN_ID_TABLE = lookup_table(LABEL_TO_TRAIN_ID, 256, IGNORE_INDEX)

CITYSCAPES_META = DatasetMeta(name="cityscapes", classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE)

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"


def label_ids_to_train_ids(label_ids: np.ndarray, path: PathLike) -> np.ndarray:
    """Map a ``(H, W)`` array of label ids (0..33; 255 is kept as ignore) to train ids (0..18, 255).

    Other values mean the file is not a label-id image: :class:`DLAError` naming ``path``.
    """
    bad = ((label_ids < 0) | (label_ids >= NUM_LABEL_IDS)) & (label_ids != IGNORE_INDEX)
    if bad.any():
        raise DLAError(
            f"{path}: label ids must be 0..{NUM_LABEL_IDS - 1} (or 255), found {np.unique(label_ids[bad])[:8].tolist()}; "
            "is this a *_gtFine_labelIds.png file?"
        )
    return _TRAIN_ID_TABLE[label_ids]


def prepare_cityscapes(root: PathLike) -> int:
    """Write ``*_gtFine_labelTrainIds.png`` (8-bit) next to every ``*_gtFine_labelIds.png`` under ``root/gtFine``.

    Existing train-id files are overwritten (the result is the same). Returns the number of files written.
    Afterwards :class:`Cityscapes` reads the train ids directly.
    """
    gt = require_dir(Path(root).expanduser() / "gtFine", "Cityscapes gtFine folder")
    count = 0
    for path in sorted(gt.glob(f"*/*/*{LABEL_IDS_SUFFIX}")):
        train_ids = label_ids_to_train_ids(load_label(path), path)
        target = path.with_name(path.name[: -len(LABEL_IDS_SUFFIX)] + TRAIN_IDS_SUFFIX)
        Image.fromarray(train_ids.astype(np.uint8)).save(target)
        count += 1
    if count == 0:
        raise DLAError(f"{gt}: no *{LABEL_IDS_SUFFIX} files found under <split>/<city>/")
    return count


class Cityscapes(SegmentationDataset):
    """Cityscapes with fine labels, 19 classes.

    ``split``: ``train`` (2975 images), ``val`` (500) or ``test`` (1525, whose labels are all ignore).

    Images and labels ``1024x2048``; labels are train ids 0..18 or 255.
    """

    splits = ("train", "val", "test")

    def load_meta(self) -> DatasetMeta:
        return CITYSCAPES_META

    def find_files(self) -> list[tuple[Path, Path]]:
        images = require_dir(self.root_dir / "leftImg8bit" / self.split, f"Cityscapes {self.split!r} image folder")
        labels = require_dir(self.root_dir / "gtFine" / self.split, f"Cityscapes {self.split!r} label folder")
        return pair_files(sorted(images.glob(f"*/*{IMAGE_SUFFIX}")), lambda p: _label_path(p, labels), str(labels))

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if path.name.endswith(LABEL_IDS_SUFFIX):
            return label_ids_to_train_ids(raw, path)
        return raw


def _label_path(image: Path, labels: Path) -> Path:
    """The train-id label of ``image`` when it exists, else its label-id file (whether or not it exists)."""
    stem = image.name[: -len(IMAGE_SUFFIX)]
    city = labels / image.parent.name
    train_ids = city / (stem + TRAIN_IDS_SUFFIX)
    return train_ids if train_ids.is_file() else city / (stem + LABEL_IDS_SUFFIX)
