"""What travels with a dataset: class names, palette, normalisation and the ignore value."""

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Tuple

from ..constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class DatasetMeta:
    """Class names and their colours, the image normalisation, and the label value that is ignored.

    Stored in checkpoints (``to_dict``/``from_dict``) so that a model alone can name and draw what it
    predicts. Labels are class indices ``0 .. num_classes - 1`` or ``ignore_index``.
    """

    name: str
    classes: Tuple[str, ...]
    palette: Tuple[Tuple[int, int, int], ...]
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    ignore_index: int = IGNORE_INDEX
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "DatasetMeta":
        return cls(
            name=str(d["name"]),
            classes=tuple(d["classes"]),
            palette=tuple(tuple(int(v) for v in c) for c in d["palette"]),
            mean=tuple(d.get("mean", IMAGENET_MEAN)),
            std=tuple(d.get("std", IMAGENET_STD)),
            ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
            extra=dict(d.get("extra", {})),
        )


def default_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """The PASCAL VOC colour map (bit-interleaved), distinct colours for any number of classes."""
    palette = []
    for i in range(num_classes):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append((r, g, b))
    return palette


