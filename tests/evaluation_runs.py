"""Evaluations that must give the same result in one process and in several (``tests/test_distributed.py``)."""

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dla.data import build_dataset
from dla.layers import convert_sync_batchnorm
from dla.models import create_model
from dla.tasks.boundaries import evaluate_gradient_baseline
from dla.tasks.classification import evaluate_classification
from dla.tasks.segmentation import evaluate_segmentation
from engine_runs import Shades, Squares


def evaluations(boundary_root: Path) -> dict[str, Any]:
    """Scores of seeded stand-in models on odd-sized sets (so that the processes' shares differ), the BSDS
    benchmark of the gradient baseline, and (under a process group) the float64 error of ``CpuSyncBatchNorm``."""
    torch.manual_seed(0)
    segmenter = create_model("engine_train_tiny").eval()
    classifier = create_model("engine_classify_tiny").eval()
    segmentation = evaluate_segmentation(segmenter, Squares(5, augment=False))
    classification = evaluate_classification(classifier, Shades(7, augment=False), batch_size=2)
    boundaries = evaluate_gradient_baseline(build_dataset("boundary_folder", str(boundary_root), "val"), thresholds=9)
    results = {
        "confusion": segmentation["confusion"],
        "classification": {key: classification[key] for key in ("top1", "confusion")},
        "boundaries": {key: boundaries[key] for key in ("ods", "ois", "ap", "precision", "recall", "images")},
    }
    if dist.is_initialized():
        results["sync_bn_error"] = sync_batchnorm_error()
        results["sync_bn_bf16"] = sync_batchnorm_bf16()
    return results


def sync_batchnorm_error() -> float:
    """The largest difference, in float64, between ``CpuSyncBatchNorm`` on this process's share of a batch and
    ``BatchNorm2d`` on the whole batch: outputs, input gradients (summed over processes) and running statistics."""
    rank, world = dist.get_rank(), dist.get_world_size()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2 * world, 4, 5, 6, generator=generator, dtype=torch.float64)
    weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    reference = nn.BatchNorm2d(4).double()
    whole = x.clone().requires_grad_()
    expected = reference(whole)
    (expected * weights).sum().backward()

    synced = convert_sync_batchnorm(nn.BatchNorm2d(4).double())
    share = slice(2 * rank, 2 * rank + 2)
    mine = x[share].clone().requires_grad_()
    output = synced(mine)
    (output * weights[share]).sum().backward()
    errors = [
        (output - expected[share]).abs().max(),
        (mine.grad - whole.grad[share]).abs().max(),
        (synced.running_mean - reference.running_mean).abs().max(),
        (synced.running_var - reference.running_var).abs().max(),
    ]
    return max(float(e) for e in errors)


def sync_batchnorm_bf16() -> dict:
    """``CpuSyncBatchNorm`` under bf16 autocast on this process's share of a bf16 batch (mean 3, far from zero), against
    ``BatchNorm2d`` in float32 on the whole batch: the largest output difference, that of the running statistics,
    and the dtypes of the output and the running statistics (which must stay float32)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    x = (3 + torch.randn(2 * world, 4, 5, 6, generator=torch.Generator().manual_seed(1))).bfloat16()
    reference = nn.BatchNorm2d(4)
    expected = reference(x.float())
    synced = convert_sync_batchnorm(nn.BatchNorm2d(4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = synced(x[2 * rank : 2 * rank + 2])
    output.float().sum().backward()  # the backward pass runs under bf16 too
    statistics = max(
        float((synced.running_mean - reference.running_mean).abs().max()),
        float((synced.running_var - reference.running_var).abs().max()),
    )
    return {
        "output_error": float((output.float() - expected[2 * rank : 2 * rank + 2]).abs().max()),
        "statistics_error": statistics,
        "dtypes": [str(output.dtype), str(synced.running_mean.dtype), str(synced.running_var.dtype)],
    }
