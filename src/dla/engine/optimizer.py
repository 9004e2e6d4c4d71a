"""The optimizer of a run: SGD or Adam over the model's parameters, the backbone's at its own learning rate."""

from typing import Any

import torch
from torch import nn

from ..config import OptimConfig
from ..tasks import Task


def parameter_groups(model: nn.Module, task: Task, lr: float, backbone_lr_factor: float) -> list[dict[str, Any]]:
    """The model's parameters for the optimizer: one group, or, when ``backbone_lr_factor`` is not 1, the new
    layers at ``lr`` (first, so that the logged lr is theirs) and the task's backbone at ``lr * backbone_lr_factor``.
    """
    if backbone_lr_factor == 1.0:
        return [{"params": list(model.parameters()), "lr": lr}]
    backbone = {id(p): p for p in task.backbone_parameters(model)}
    rest = [p for p in model.parameters() if id(p) not in backbone]
    return [{"params": rest, "lr": lr}, {"params": list(backbone.values()), "lr": lr * backbone_lr_factor}]


def learning_rate(optim: OptimConfig, batch_size: int) -> float:
    """The learning rate of a run: ``optim.lr`` as given, whatever the number of processes; with
    ``optim.lr_base_batch`` set, the linear scaling rule (Goyal et al. 2017), ``lr x batch_size / lr_base_batch``."""
    if optim.lr_base_batch is None:
        return optim.lr
    return optim.lr * batch_size / optim.lr_base_batch


def build_optimizer(groups: list[dict[str, Any]], optim: OptimConfig) -> torch.optim.Optimizer:
    """SGD with momentum, or Adam (the Ladder DenseNet recipe), with ``optim.weight_decay``."""
    if optim.optimizer == "adam":
        return torch.optim.Adam(groups, lr=optim.lr, weight_decay=optim.weight_decay)
    return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
