"""Prediction on image files with a trained checkpoint: the ``dla predict`` command, for any task."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..data.base import load_image
from .config import task_of
from .inference import load_for_inference
from .runtime import select_device


def predict_files(
    checkpoint: str,
    images: Sequence[str],
    out_dir: str,
    probabilities: bool = False,
    device: str = "auto",
    top_k: int = 5,
    backend: str | None = None,
    **settings: Any,
) -> list[Path]:
    """Predict image files with a trained checkpoint (or its ONNX export, ``load_for_inference``) run by ``backend``;
    write what its task predicts into ``out_dir``.

    Segmentation writes ``<stem>_mask.png`` in the dataset's palette, ``<stem>_overlay.png`` and, with
    ``probabilities``, ``<stem>_probs.npy`` (float16, ``C x H x W``) for each image. Boundaries write
    ``<stem>_boundaries.png`` and ``<stem>_thin.png`` (the probability, and thinned, as grey levels) and,
    with ``probabilities``, ``<stem>_probs.npy`` (float16 ``H x W``). Classification writes
    one ``predictions.json``: for each image path, its ``top_k`` classes with their probabilities, best
    first. ``settings`` replace the run's ``eval`` keys (``scales``, ``flip``, ``window``, ``output_stride``
    for segmentation; ``ten_crop`` for classification). Every image is read (and checked) before the model runs on any.
    Returns the written paths.
    """
    pictures = [(Path(path), load_image(Path(path))) for path in images]
    target = select_device(device)
    model, meta, cfg = load_for_inference(checkpoint, backend, settings, target)
    with torch.no_grad():
        return task_of(cfg).predict(model, pictures, cfg, meta, target, Path(out_dir), probabilities, top_k)
