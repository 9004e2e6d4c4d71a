"""PASCAL VOC 2012 segmentation, optionally with the SBD-augmented labels (``SegmentationClassAug``).

``root`` is the ``VOC2012`` folder: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNGs
whose indices are the classes; 255 marks object borders and is ignored) and
``ImageSets/Segmentation/<split>.txt``. With ``aug=True`` labels come from ``SegmentationClassAug/``
(the 10,582-image "trainaug" labels, grayscale indices) and the split list from
``ImageSets/SegmentationAug/<split>.txt`` when that file exists, else from the usual list. Split files
may hold bare ids or ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png`` lines (the id is taken
from the first path's stem).
"""

from pathlib import Path

from ..errors import DLAError
from .base import PathLike, SegmentationDataset, Transform, pair_files, read_lines, require_dir
from .meta import DatasetMeta, default_palette

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_META = DatasetMeta(name="voc", classes=VOC_CLASSES, palette=tuple(default_palette(len(VOC_CLASSES))))


class VOCSegmentation(SegmentationDataset):
    """VOC 2012, 21 classes with background. ``split``: the name of a list file (``train``, ``val``, ``trainval``, ...)."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None, aug: bool = False) -> None:
        self.aug = aug
        super().__init__(root, split, transform)

    def load_meta(self) -> DatasetMeta:
        return VOC_META

    def find_files(self) -> list[tuple[Path, Path]]:
        images = require_dir(self.root_dir / "JPEGImages", "VOC image folder")
        labels = require_dir(self.root_dir / ("SegmentationClassAug" if self.aug else "SegmentationClass"), "VOC label folder")
        ids = [Path(line.split()[0]).stem for line in read_lines(self._split_file())]
        missing = [i for i in ids if not (images / f"{i}.jpg").is_file()]
        if missing:
            first = images / f"{missing[0]}.jpg"
            raise DLAError(f"{first}: image not found ({len(missing)} image(s) of split {self.split!r} are missing)")
        return pair_files((images / f"{i}.jpg" for i in ids), lambda p: labels / f"{p.stem}.png", str(labels))

    def _split_file(self) -> Path:
        sets = self.root_dir / "ImageSets"
        candidates = ([sets / "SegmentationAug" / f"{self.split}.txt"] if self.aug else []) + [
            sets / "Segmentation" / f"{self.split}.txt"
        ]
        for path in candidates:
            if path.is_file():
                return path
        raise DLAError(f"{candidates[-1]}: split list for {self.split!r} not found")
