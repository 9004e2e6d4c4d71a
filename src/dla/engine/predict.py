"""Prediction on image files: the ``dla predict`` command."""

from pathlib import Path
from typing import List, Optional, Sequence

import torch

from ..data.base import load_image
from ..tasks.segmentation import predict, save_prediction
from .checkpoint import model_from_checkpoint
from .trainer import select_device


def predict_files(
    checkpoint: str,
    images: Sequence[str],
    out_dir: str,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    window: Optional[Sequence[int]] = None,
    probabilities: bool = False,
    device: str = "auto",
) -> List[Path]:
    """Segment image files with a trained checkpoint; write colour masks and overlays (and probabilities).

    Writes ``<stem>_mask.png`` in the dataset's palette, ``<stem>_overlay.png`` and, with ``probabilities``,
    ``<stem>_probs.npy`` (float16, ``C x H x W``) into ``out_dir`` for each image. Every image is read
    (and checked) before the model runs on any. Returns the written paths.
    """
    pictures = [(Path(path).stem, load_image(Path(path))) for path in images]
    model, meta = model_from_checkpoint(checkpoint)
    target = select_device(device)
    model.to(target)
    written: List[Path] = []
    with torch.no_grad():
        for stem, picture in pictures:
            label, probs = predict(
                model, picture, meta, target, scales=scales, flip=flip, window=tuple(window) if window else None
            )
            written += save_prediction(out_dir, stem, picture, label, probs if probabilities else None, meta=meta)
    return written
