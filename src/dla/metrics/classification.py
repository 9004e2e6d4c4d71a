"""Classification scores: top-k accuracy of a batch and an accumulator of it over batches and processes.

Accuracies are fractions in [0, 1], keyed ``top1``, ``top5``, ...; with no samples counted they are NaN.
"""

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..distributed import all_reduce_sum
from ..errors import DLAError


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise DLAError(f"ks must be positive integers, got {ks}")
    return ks


def _correct_counts(logits: Tensor, target: Tensor, ks: Sequence[int]) -> Tensor:
    """How many samples have their target among the ``k`` highest logits, for each ``k``: int64 ``len(ks)``.

    ``logits``: ``N x C``; ``target``: ``N`` class indices.
    """
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise DLAError(f"expected logits N x C and target N, got {tuple(logits.shape)} and {tuple(target.shape)}")
    if max(ks) > logits.shape[1]:
        raise DLAError(f"top-{max(ks)} accuracy needs at least {max(ks)} classes, the logits have {logits.shape[1]}")
    ranked = logits.topk(max(ks), dim=1).indices
    hits = ranked == target.long().unsqueeze(1)
    return torch.stack([hits[:, :k].any(dim=1).sum() for k in ks])


def _as_dict(ks: Sequence[int], correct: Tensor, total: int) -> dict[str, float]:
    return {f"top{k}": (c / total if total else math.nan) for k, c in zip(ks, correct.tolist(), strict=True)}


def topk_accuracy(logits: Tensor, target: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Fraction of samples whose target is among the top ``k`` logits, for each ``k`` in ``ks``.

    Args:
        logits: ``N x C`` scores; target: ``N`` class indices.
    Returns:
        ``{"top1": ..., "top5": ...}``.
    """
    ks = _check_ks(ks)
    return _as_dict(ks, _correct_counts(logits, target, ks), target.numel())


class AccuracyMeter:
    """Accumulates top-k hit counts; ``compute`` gives the accuracies over everything seen.

    State is one int64 tensor (hits per ``k``, then the sample count) so ``all_reduce`` is a single call;
    it lives on the device of the last ``update``.
    """

    def __init__(self, ks: Sequence[int] = (1, 5)) -> None:
        self.ks = _check_ks(ks)
        self.reset()

    def reset(self) -> None:
        self._counts = torch.zeros(len(self.ks) + 1, dtype=torch.int64)

    def update(self, logits: Tensor, target: Tensor) -> None:
        """Count a batch: ``logits`` ``N x C``, ``target`` ``N``."""
        correct = _correct_counts(logits, target, self.ks)
        seen = torch.tensor([target.numel()], device=correct.device)
        self._counts = self._counts.to(correct.device) + torch.cat([correct, seen])

    def all_reduce(self) -> None:
        """Sum the counts over all ``torch.distributed`` processes (a no-op without a process group)."""
        all_reduce_sum(self._counts)

    def compute(self) -> dict[str, float]:
        return _as_dict(self.ks, self._counts[:-1], int(self._counts[-1]))
