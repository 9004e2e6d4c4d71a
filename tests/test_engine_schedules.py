"""Per-iteration learning-rate schedules: values at chosen iterations."""

import pytest
import torch

from dla.engine.config_loader import load_config
from dla.engine.schedules import build_scheduler, poly_schedule, step_schedule, total_iterations


def optimizer(lr: float = 0.01) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def lrs(scheduler, steps: int):
    """The learning rate used at iterations 0 .. steps - 1."""
    values = []
    for _ in range(steps):
        values.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def test_poly():
    values = lrs(poly_schedule(optimizer(0.01), total_iterations=100, power=0.9), 101)
    assert values[0] == pytest.approx(0.01)
    assert values[50] == pytest.approx(0.01 * 0.5**0.9)
    assert values[99] == pytest.approx(0.01 * 0.01**0.9)
    assert values[100] == 0.0


def test_step():
    values = lrs(step_schedule(optimizer(0.01), milestones=[30, 10], gamma=0.1), 31)
    assert values[9] == pytest.approx(0.01) and values[10] == pytest.approx(0.001)
    assert values[29] == pytest.approx(0.001) and values[30] == pytest.approx(0.0001)


def test_build_from_config_converts_epochs_to_iterations():
    cfg = load_config(None, ["optim.step_epochs=[800]", "optim.epochs=1000"])
    values = lrs(build_scheduler(optimizer(0.01), cfg, iterations_per_epoch=1), 801)
    assert values[799] == pytest.approx(0.01) and values[800] == pytest.approx(0.001)  # "divide by 10 after 800 epochs"
    cfg = load_config(None, ["optim.schedule=poly", "optim.epochs=4", "optim.max_iterations=10"])
    assert total_iterations(cfg, iterations_per_epoch=5) == 10  # max_iterations ends the schedule early
    values = lrs(build_scheduler(optimizer(0.01), cfg, iterations_per_epoch=5), 11)
    assert values[5] == pytest.approx(0.01 * 0.5**0.9) and values[10] == 0.0


def test_resume_restores_the_position():
    """As the trainer resumes: the optimizer's state holds the current lr, the scheduler's the step count."""
    first = step_schedule(optimizer(), milestones=[3, 5])
    lrs(first, 4)
    second = step_schedule(optimizer(), milestones=[3, 5])
    second.optimizer.load_state_dict(first.optimizer.state_dict())
    second.load_state_dict(first.state_dict())
    resumed, continued = lrs(second, 3), lrs(first, 3)
    assert resumed == continued
    assert resumed == pytest.approx([0.001, 0.0001, 0.0001])
