"""Prediction on image files: the ``dla predict`` command, for segmentation and classification checkpoints."""

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.base import load_image
from ..data.meta import DatasetMeta
from ..tasks.boundaries import predict_boundaries
from ..tasks.classification import class_probabilities, top_classes
from ..tasks.segmentation import predict, save_prediction
from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import with_eval_settings
from .tasks import evaluated_at, get_task
from .trainer import select_device

Pictures = List[Tuple[Path, Image.Image]]


def predict_files(
    checkpoint: str,
    images: Sequence[str],
    out_dir: str,
    probabilities: bool = False,
    device: str = "auto",
    top_k: int = 5,
    **settings: Any,
) -> List[Path]:
    """Predict image files with a trained checkpoint; write what it predicts into ``out_dir``.

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
    state = load_checkpoint(checkpoint)
    model, meta = model_from_checkpoint(state)
    cfg = with_eval_settings(state["config"], settings)
    target = select_device(device)
    model.to(target)
    with torch.no_grad():
        if cfg["task"] == "classification":
            return [_classify(model, pictures, cfg, meta, target, Path(out_dir), top_k)]
        if cfg["task"] == "boundaries":
            return _trace(model, pictures, meta, target, Path(out_dir), probabilities)
        return _segment(model, pictures, cfg, meta, target, Path(out_dir), probabilities)


def _classify(model: nn.Module, pictures: Pictures, cfg: Dict[str, Any], meta: DatasetMeta, device: torch.device,
              out: Path, top_k: int) -> Path:
    """Write ``predictions.json``: each image's ``top_k`` classes and probabilities, through the run's eval transform."""
    transform = get_task("classification").eval_transform(cfg, meta)
    ranked = {
        str(path): top_classes(class_probabilities(model, transform(picture)[None].to(device))[0], meta.classes, top_k)
        for path, picture in pictures
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "predictions.json").write_text(json.dumps(ranked, indent=2) + "\n")
    return out / "predictions.json"


def _trace(model: nn.Module, pictures: Pictures, meta: DatasetMeta, device: torch.device, out: Path,
           probabilities: bool) -> List[Path]:
    """Write each image's boundary map (``<stem>_boundaries.png``, white on black), its thinned map
    (``<stem>_thin.png``) and, with ``probabilities``, the float16 probabilities (``<stem>_probs.npy``)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, picture in pictures:
        probability, thinned = predict_boundaries(model, picture, meta, device)
        for suffix, values in (("boundaries", probability), ("thin", thinned)):
            written.append(out / f"{path.stem}_{suffix}.png")
            Image.fromarray(np.round(255 * values).astype(np.uint8)).save(written[-1])
        if probabilities:
            written.append(out / f"{path.stem}_probs.npy")
            np.save(written[-1], probability.astype(np.float16))
    return written


def _segment(model: nn.Module, pictures: Pictures, cfg: Dict[str, Any], meta: DatasetMeta, device: torch.device,
             out: Path, probabilities: bool) -> List[Path]:
    """Write each image's colour mask and overlay (and probabilities), with the run's test-time settings."""
    settings, written = cfg["eval"], []
    with evaluated_at(model, settings.get("output_stride")):
        for path, picture in pictures:
            label, probs = predict(
                model, picture, meta, device, scales=settings["scales"], flip=settings["flip"],
                window=tuple(settings["window"]) if settings["window"] else None,
            )
            written += save_prediction(out, path.stem, picture, label, probs if probabilities else None, meta=meta)
    return written
