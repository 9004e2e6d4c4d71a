"""What travels with a dataset: class names, palette, normalisation and the ignore value."""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from ..errors import DLAError


@dataclass(frozen=True)
class DatasetMeta:
    """Class names and their colours, the image normalisation, and the label value that is ignored.

    Stored in checkpoints (``to_dict``/``from_dict``) so that a model alone can name and draw what it
    predicts. Labels are class indices ``0 .. num_classes - 1`` or ``ignore_index``.
    """

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    ignore_index: int = IGNORE_INDEX
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetMeta":
        return cls(
            name=str(d["name"]),
            classes=tuple(d["classes"]),
            palette=tuple(colour(c, "a palette colour") for c in d["palette"]),
            mean=channel_triple(d.get("mean", IMAGENET_MEAN), "mean"),
            std=channel_triple(d.get("std", IMAGENET_STD), "std"),
            ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
            extra=dict(d.get("extra", {})),
        )


def channel_triple(values: Iterable[float], what: str) -> tuple[float, float, float]:
    """``values`` as three floats, one per RGB channel (a normalisation ``mean`` or ``std``).

    :class:`DLAError` naming ``what`` when there are not exactly three.
    """
    items = tuple(float(v) for v in values)
    if len(items) != 3:
        raise DLAError(f"{what} must hold three numbers (one per RGB channel), got {len(items)}: {items}")
    return items[0], items[1], items[2]


def colour(values: Iterable[int], what: str) -> tuple[int, int, int]:
    """``values`` as an ``(r, g, b)`` colour of ints; :class:`DLAError` naming ``what`` when it is not three values."""
    items = tuple(int(v) for v in values)
    if len(items) != 3:
        raise DLAError(f"{what} must be an [r, g, b] colour, got {len(items)} values: {items}")
    return items[0], items[1], items[2]


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
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
