"""Learning-rate schedules, stepped once per iteration, as ``torch.optim.lr_scheduler.LambdaLR``.

Both schedules of the paper (Sec. 5.3) are written per iteration rather than per epoch:

- ``poly`` (Cityscapes): ``lr * (1 - iteration / total) ** power``. The paper writes it per epoch,
  ``(1 - (epoch - 1) / total_epochs) ** 0.9``; the per-iteration form is the same curve without the
  staircase, and it reaches 0 exactly at the last iteration.
- ``step`` (CamVid): ``lr * gamma ** (number of milestones passed)``, the milestones being
  ``optim.step_epochs`` converted to iterations, so "divide by 10 after 800 epochs" is
  ``step_epochs: [800], gamma: 0.1``.

A ``LambdaLR`` built from a closure keeps only its step count in ``state_dict()``; the closure is rebuilt
from the config on resume, so checkpoints hold no code.
"""

from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ..config import Config


def poly_schedule(optimizer: Optimizer, total_iterations: int, power: float = 0.9) -> LambdaLR:
    """``lr * (1 - iteration / total_iterations) ** power``, 0 from ``total_iterations`` on."""

    def factor(iteration: int) -> float:
        return max(0.0, 1.0 - iteration / total_iterations) ** power

    return LambdaLR(optimizer, factor)


def step_schedule(optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1) -> LambdaLR:
    """``lr * gamma ** k`` where ``k`` is how many of the ``milestones`` (iterations) have been reached."""
    milestones = sorted(milestones)

    def factor(iteration: int) -> float:
        return gamma ** sum(iteration >= m for m in milestones)

    return LambdaLR(optimizer, factor)


def total_iterations(cfg: Config, iterations_per_epoch: int) -> int:
    """Iterations of the whole run: ``optim.epochs`` epochs, or fewer when ``optim.max_iterations`` is set."""
    total = cfg.optim.epochs * iterations_per_epoch
    max_iterations = cfg.optim.max_iterations
    return total if max_iterations is None else min(total, max_iterations)


def build_scheduler(optimizer: Optimizer, cfg: Config, iterations_per_epoch: int) -> LambdaLR:
    """The schedule named by ``optim.schedule``, in iterations of ``iterations_per_epoch`` per epoch."""
    optim = cfg.optim
    if optim.schedule == "poly":
        return poly_schedule(optimizer, total_iterations(cfg, iterations_per_epoch), optim.power)
    milestones = [epoch * iterations_per_epoch for epoch in optim.step_epochs]
    return step_schedule(optimizer, milestones, optim.gamma)
