"""Tiled (sliding-window) inference of dense models: an image too large for memory, or a model trained on
crops, is run on overlapping windows and the outputs are averaged where windows overlap.

Peak memory then grows with the window, not the image (plus the output of the whole image). The result is not
bit-equal to running the whole image: a pixel near a window's edge sees less context than in the whole image,
which the overlap (default a third of a window) keeps away from most pixels; ``docs/benchmarks.md`` gives the
measured argmax agreement with whole-image inference.
"""

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Offsets of windows of ``window`` pixels every ``stride`` that cover ``0 .. size`` (``size >= window``);
    the last window is moved back to end exactly at ``size``."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


def sliding_window(run: Callable[[Tensor], Tensor], image: Tensor, window: tuple[int, int], overlap: float = 1 / 3) -> Tensor:
    """``run`` on overlapping ``window``-sized crops of ``image`` (``N x C x H x W``), averaged where they overlap.

    ``run`` maps an ``N x C x h x w`` crop to ``N x K x h x w`` (a dense output at the crop's resolution). The image
    is zero-padded at the bottom/right up to at least the window (zero is the mean colour of a normalised image)
    and the padding is cropped off the result. Windows step by ``round((1 - overlap) * window)``. Returns
    ``N x K x H x W``.
    """
    height, width = image.shape[-2:]
    padded = F.pad(image, (0, max(window[1] - width, 0), 0, max(window[0] - height, 0)))
    strides = [max(1, round(w * (1 - overlap))) for w in window]
    total: Tensor | None = None
    hits = padded.new_zeros(1, 1, *padded.shape[-2:])
    for top in window_starts(padded.shape[-2], window[0], strides[0]):
        for left in window_starts(padded.shape[-1], window[1], strides[1]):
            area = (..., slice(top, top + window[0]), slice(left, left + window[1]))
            out = run(padded[area])
            if total is None:
                total = out.new_zeros(*out.shape[:2], *padded.shape[-2:])
            total[area] += out
            hits[area] += 1
    assert total is not None  # window_starts gives at least one window
    return (total / hits)[..., :height, :width]


class SlidingWindow(nn.Module):
    """A dense ``model`` run by ``sliding_window``: called like the model, with the averaged outputs as result."""

    def __init__(self, model: nn.Module, window: tuple[int, int], overlap: float = 1 / 3) -> None:
        super().__init__()
        self.model, self.window, self.overlap = model, window, overlap

    def forward(self, x: Tensor) -> Tensor:
        return sliding_window(self.model, x, self.window, self.overlap)
