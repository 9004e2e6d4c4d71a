"""Evaluating a trained checkpoint on a dataset split: the ``dla eval`` command."""

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import distributed
from ..data import build_dataset
from ..engine.config_loader import resolve_data_root
from ..engine.datasets import check_dataset_task
from ..engine.results import write_result
from ..engine.runtime import select_device
from ..errors import DLAError
from ..tasks import get_task
from .loading import load_for_inference


def evaluate_checkpoint(
    checkpoint: str,
    dataset: str | None = None,
    split: str = "val",
    *,
    root: str | None = None,
    options: dict[str, Any] | None = None,
    device: str = "auto",
    workers: int = 2,
    output: str | None = None,
    backend: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset split (the ``dla eval`` command); return and optionally save the scores.

    The model, its normalisation and its evaluation transform come from the checkpoint alone, or from its ONNX
    export; ``backend`` runs it (``load_for_inference``). ``dataset`` defaults to the one the checkpoint was trained
    on, with that run's ``data.root`` and ``data.options`` (with ``data.val_options`` over them for its validation
    split) unless ``root`` / ``options`` are given; another dataset takes ``root`` or ``$DLA_DATA_ROOT/<dataset>``.
    ``settings`` replace the run's ``eval`` keys: ``scales``, ``flip``, ``window``, ``output_stride`` (segmentation) or
    ``ten_crop`` (classification); a key of another task is an error.

    Under torchrun (``torchrun --nproc-per-node N -m dla eval ...``) each process scores its share of the images
    and the counts are summed, so every process returns the single-process scores; only rank 0 writes ``output``.

    Returns:
        the task's scores plus ``checkpoint``, ``dataset``, ``split``, ``classes`` and the ``eval`` settings
        used; written as JSON to ``output`` when given, with the task's pictures next to it
        (``<output stem>_confusion.png``, or ``_pr_curve.png`` for boundaries).
    """
    with distributed.process_group(select_device(device)) as (processes, target):
        result, pictures = _evaluate(checkpoint, dataset, split, root, options, target, workers, backend, settings)
        if output is not None and processes.main:
            write_result(Path(output), result, pictures)
    return result


def _evaluate(
    checkpoint: str,
    dataset: str | None,
    split: str,
    root: str | None,
    options: dict[str, Any] | None,
    target: torch.device,
    workers: int,
    backend: str | None,
    settings: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Image.Image]]:
    model, meta, cfg = load_for_inference(checkpoint, backend, settings, target)
    task = get_task(cfg.task)
    trained_on = cfg.data
    dataset = dataset or trained_on.dataset
    if dataset == trained_on.dataset:  # the run's own data, unless told otherwise
        root = root if root is not None else trained_on.root
        options = options if options is not None else trained_on.split_options(split)
    data = build_dataset(
        dataset, resolve_data_root(dataset, root), split, transform=task.eval_transform(cfg, meta), **(options or {})
    )
    check_dataset_task(data, task.name, dataset)
    if data.meta.num_classes != meta.num_classes:
        raise DLAError(
            f"{checkpoint} predicts {meta.num_classes} classes ({meta.name}) but {dataset} has {data.meta.num_classes}; "
            "evaluate it on a dataset with the same classes"
        )
    cfg.data.workers = workers  # cfg is with_eval_settings' own copy
    scores = task.evaluate(model, data, cfg, target)
    evaluated = {key: value for key, value in asdict(cfg.eval).items() if key != "every_epochs"}
    result = {
        "checkpoint": str(checkpoint),
        "model": cfg.model.name,
        "task": task.name,
        "dataset": dataset,
        "split": split,
        "classes": list(meta.classes),
        "eval": evaluated,
        **scores,
    }
    return result, task.draw(result, meta.classes)
