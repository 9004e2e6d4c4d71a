"""Semantic segmentation (Sec. 4.2, 5.3): the training loss, the paper's test-time inference, saving what a model
predicts, and ``SegmentationTask``, the task's part of the engine (transforms, model, loss, mIoU, pictures).

Inference (Sec. 5.3). The image is run at each scale of ``scales`` (and, with ``flip``, mirrored as well);
each run's softmax probabilities are resized back to the input size and the runs are *summed*, as the paper
"sums the predictions". A pixel's class scores in ``infer``'s output therefore add up to the number of runs
(``len(scales) * (2 if flip else 1)``); ``predict`` divides by it so that it returns probabilities.
With ``window`` each scale is tiled by overlapping windows instead of run whole (for inputs too large for
memory, or models trained on crops); see ``infer``.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import Config, pair, required
from ..constants import IGNORE_INDEX
from ..data.base import TaskDataset
from ..data.meta import DatasetMeta
from ..data.transforms import eval_transforms, train_transforms
from ..distributed import is_main_process, shard
from ..errors import DLAError
from ..inference.stride import evaluated_at
from ..inference.tiled import sliding_window
from ..losses import SOFTMAX_LOSSES, LossFunction, LossTerm, combined_loss, cross_entropy, loss_terms
from ..metrics.segmentation import ConfusionMatrix, format_table
from ..models import create_model
from .base import Criterion, Output, Sample, Scores, Task
from .curves import plot_curves
from .visualize import as_rgb_image, class_index_image, colorize, draw_confusion_matrix, draw_grid, overlay, palette_legend

__all__ = [
    "SegmentationTask",
    "colorize",
    "dense_model",
    "draw_predictions",
    "evaluate_segmentation",
    "evaluated_at",
    "infer",
    "overlay",
    "plot_curves",
    "predict",
    "prediction_pictures",
    "save_prediction",
    "segment",
    "segmentation_loss",
]


def segmentation_loss(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Tensor | Sequence[float] | None = None,
    terms: Sequence[LossTerm] = (LossTerm("ce", cross_entropy),),
) -> Tensor:
    """The segmentation loss of ``N x C x H x W`` logits against ``N x H x W`` labels: the weighted sum of ``terms``
    (``optim.loss``, from ``dla.losses.SOFTMAX_LOSSES``), cross-entropy alone by default (``dla.losses.cross_entropy``:
    the mean over the pixels that are not ``ignore_index``, weighted by ``class_weights`` when given). A batch of
    ignored pixels only gives a zero with zero gradients."""
    return combined_loss(terms, logits, target, ignore_index, class_weights)


def _logits(model: nn.Module, image: Tensor, num_classes: int) -> Tensor:
    """``model(image)``, checked to be ``N x num_classes`` logits at the input's resolution."""
    out = model(image)
    expected = (image.shape[0], num_classes, *image.shape[2:])
    if not isinstance(out, Tensor) or tuple(out.shape) != expected:
        found = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise DLAError(
            f"the model should return logits of shape {expected} (N x num_classes x H x W, the input's resolution), got {found}"
        )
    return out


def _sliding_window(model: nn.Module, image: Tensor, num_classes: int, window: tuple[int, int], overlap: float) -> Tensor:
    """Softmax probabilities of ``image`` (``N x 3 x H x W``) from overlapping ``window``-sized crops
    (``dla.inference.tiled.sliding_window``: averaged where windows overlap). Returns ``N x num_classes x H x W``."""
    return sliding_window(lambda crop: _logits(model, crop, num_classes).softmax(dim=1), image, window, overlap)


def _probabilities(
    model: nn.Module, image: Tensor, num_classes: int, flip: bool, window: tuple[int, int] | None, overlap: float
) -> Tensor:
    """Softmax probabilities of one scale (whole image or windows), plus those of the mirrored image with ``flip``."""

    def run(x: Tensor) -> Tensor:
        if window is None:
            return _logits(model, x, num_classes).softmax(dim=1)
        return _sliding_window(model, x, num_classes, window, overlap)

    probs = run(image)
    if flip:
        probs = probs + run(image.flip(-1)).flip(-1)
    return probs


def _check_infer_options(image: Tensor, scales: Sequence[float], window: tuple[int, int] | None, overlap: float) -> None:
    if image.dim() != 4:
        raise DLAError(f"infer takes a batch N x 3 x H x W, got shape {tuple(image.shape)}")
    if not scales or min(scales) <= 0:
        raise DLAError(f"scales must be positive numbers, got {tuple(scales)}")
    if window is not None and (len(window) != 2 or min(window) < 1):
        raise DLAError(f"window is (height, width) in pixels, got {window}")
    if not 0.0 <= overlap < 1.0:
        raise DLAError(f"overlap is a fraction of the window in [0, 1), got {overlap}")


@torch.no_grad()
def infer(
    model: nn.Module,
    image: Tensor,
    num_classes: int,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    window: tuple[int, int] | None = None,
    overlap: float = 1 / 3,
) -> Tensor:
    """The paper's test-time procedure: class probabilities summed over scales and (optionally) mirroring.

    Args:
        model: returns ``N x num_classes x h x w`` logits at the resolution of its input. Its mode is left as
            the caller set it: call ``model.eval()`` first (BatchNorm statistics, dropout).
        image: ``N x 3 x H x W``, normalised, on the model's device.
        scales: each resizes the image (bilinear, ``align_corners=False``) to ``round(scale * H) x round(scale * W)``.
        flip: also run the horizontally mirrored image and mirror its probabilities back.
        window: ``(height, width)`` of sliding-window inference at each scale; ``None`` runs the whole image.
        overlap: fraction of a window shared with the next one (stride ``round((1 - overlap) * window)``).
    Returns:
        ``N x num_classes x H x W``: the sum over scales and flips of softmax probabilities, each resized back
        bilinearly to ``H x W`` (so per pixel the classes add up to the number of runs).
    """
    _check_infer_options(image, scales, window, overlap)
    size = tuple(image.shape[-2:])
    total = image.new_zeros(image.shape[0], num_classes, *size)
    for scale in scales:
        scaled_size = tuple(max(1, round(scale * s)) for s in size)
        scaled = image if scaled_size == size else F.interpolate(image, size=scaled_size, mode="bilinear", align_corners=False)
        probs = _probabilities(model, scaled, num_classes, flip, window, overlap)
        if scaled_size != size:
            probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        total += probs
    return total


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module,
    dataset: TaskDataset,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    window: Sequence[int] | None = None,
    device: torch.device | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Score ``model`` on every image of ``dataset``, whole and one at a time, with the paper's test procedure.

    Each image's class probabilities are summed over ``scales`` (and mirroring with ``flip``) by ``infer``,
    optionally in sliding windows of ``window`` = ``[height, width]``. Images are not batched: validation
    images may differ in size, and whole-image evaluation is the paper's protocol. The model's train/eval
    mode is restored afterwards. Under several processes (``dla.distributed``) each scores its share of the
    images and the confusion matrices are summed, so every process returns the scores of the whole dataset.

    Returns:
        ``ConfusionMatrix.compute()``: ``miou``, ``iou`` (per class), ``pixel_accuracy``, ``mean_accuracy``, ...
    """
    meta = dataset.meta
    device = device if device is not None else next(model.parameters()).device
    matrix = ConfusionMatrix(meta.num_classes, meta.ignore_index)
    # its own generator: loading must not draw from the global one, which training's resume relies on
    loader = DataLoader(
        shard(dataset), batch_size=1, num_workers=workers, generator=torch.Generator(), pin_memory=device.type == "cuda"
    )
    tiles = pair(window, "window") if window else None
    was_training = model.training
    model.eval()
    for image, label in tqdm(loader, desc="evaluating", leave=False, dynamic_ncols=True, disable=not is_main_process()):
        probabilities = infer(model, image.to(device), meta.num_classes, scales, flip, tiles)
        matrix.update(probabilities.argmax(1), label.to(device))
    model.train(was_training)
    matrix.all_reduce()
    return matrix.compute()


def to_input(images: Sequence[Image.Image | np.ndarray], meta: DatasetMeta, device: str | torch.device) -> Tensor:
    """RGB images of one size (PIL, or ``H x W x 3`` uint8) as a normalised ``N x 3 x H x W`` float tensor on ``device``."""
    pixels = [np.asarray(as_rgb_image(image), dtype=np.float32) for image in images]
    if len({array.shape for array in pixels}) > 1:
        raise DLAError(f"a batch holds images of one size, got {sorted({a.shape[1::-1] for a in pixels})} (width, height)")
    mean, std = (np.asarray(v, dtype=np.float32) for v in (meta.mean, meta.std))
    tensor = torch.from_numpy((np.stack(pixels) / 255.0 - mean) / std).permute(0, 3, 1, 2)
    return tensor.contiguous().to(device)


def segment(
    model: nn.Module, images: Sequence[Image.Image | np.ndarray], meta: DatasetMeta, device: str | torch.device, **infer_options
) -> tuple[np.ndarray, np.ndarray]:
    """Segment RGB images of one size (PIL, or ``H x W x 3`` uint8) run as one batch, normalised with
    ``meta.mean``/``meta.std``.

    ``infer_options`` (``scales``, ``flip``, ``window``, ``overlap``) go to ``infer``; the model must already be
    on ``device`` and in eval mode.
    Returns:
        ``(labels, probabilities)``: the ``N x H x W`` argmax (uint8 for up to 256 classes, else int64) and the
        ``N x C x H x W`` float32 probabilities, averaged (not summed) over the runs so that they add up to 1.
    """
    summed = infer(model, to_input(images, meta, device), meta.num_classes, **infer_options)
    probabilities = (summed / summed.sum(dim=1, keepdim=True)).float().cpu().numpy()
    labels = probabilities.argmax(axis=1)
    return labels.astype(np.uint8 if meta.num_classes <= 256 else np.int64), probabilities


def predict(
    model: nn.Module, image: Image.Image | np.ndarray, meta: DatasetMeta, device: str | torch.device = "cpu", **infer_options
) -> tuple[np.ndarray, np.ndarray]:
    """``segment`` of one image: its ``H x W`` label and ``C x H x W`` probabilities."""
    labels, probabilities = segment(model, [image], meta, device, **infer_options)
    return labels[0], probabilities[0]


def class_pixels(label: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """How many pixels of ``label`` (``H x W`` class indices) each class has, every class named (0 included)."""
    counts = np.bincount(label.ravel(), minlength=len(classes))
    return {name: int(count) for name, count in zip(classes, counts, strict=True)}


def prediction_pictures(image: Image.Image | np.ndarray, label: np.ndarray, meta: DatasetMeta) -> dict[str, Image.Image]:
    """``mask``: the class indices as pixel values, with ``meta``'s colours embedded as its palette
    (``class_index_image``); ``overlay``: the mask's colours blended over the image."""
    return {
        "mask": class_index_image(label, meta.palette, meta.ignore_index),
        "overlay": overlay(image, label, meta.palette, ignore_index=meta.ignore_index),
    }


def save_prediction(
    out_dir: str | Path,
    stem: str,
    image: Image.Image | np.ndarray,
    label: np.ndarray,
    probabilities: np.ndarray | Tensor | None = None,
    *,
    meta: DatasetMeta,
) -> list[Path]:
    """Write ``<stem>_mask.png`` and ``<stem>_overlay.png`` (``prediction_pictures``) and, given ``probabilities``
    (``C x H x W``), ``<stem>_probs.npy`` in float16 (half the disk, ample precision for probabilities). Creates
    ``out_dir``; returns the written paths in that order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, picture in prediction_pictures(image, label, meta).items():
        written.append(out / f"{stem}_{kind}.png")
        picture.save(written[-1])
    if probabilities is not None:
        if isinstance(probabilities, Tensor):
            probabilities = probabilities.detach().cpu().numpy()
        if probabilities.ndim != 3 or probabilities.shape[1:] != np.asarray(label).shape:
            raise DLAError(
                f"probabilities should be C x H x W for a {np.asarray(label).shape} label map, got shape {probabilities.shape}"
            )
        written.append(out / f"{stem}_probs.npy")
        np.save(written[2], probabilities.astype(np.float16))
    return written


def draw_predictions(rows: Sequence[tuple[str, Image.Image, np.ndarray, np.ndarray]], meta: DatasetMeta) -> Image.Image:
    """A panel of predictions next to the ground truth: per ``(title, image, truth, prediction)`` row (``H x W``
    class-index maps), the image, the true classes and the predicted ones in ``meta``'s colours (ignored pixels
    black), with a legend of the classes shown."""
    tiles = []
    for title, image, truth, prediction in rows:
        tiles += [(image, title), (colorize(truth, meta.palette, meta.ignore_index), "ground truth")]
        tiles.append((colorize(prediction, meta.palette, meta.ignore_index), "prediction"))
    legend = palette_legend(meta.classes, meta.palette, [label for row in rows for label in row[2:]])
    return draw_grid(tiles, columns=3, legend=legend)


def dense_model(cfg: Config, num_classes: int, weights: Any) -> tuple[nn.Module, dict[str, Any]]:
    """A dense-prediction model with ``num_classes`` outputs, ``model.down_ratio`` when set (DLA's), and the
    keyword arguments that rebuild it; a model that does not take them is named with what it refused."""
    model, name = cfg.model, required(cfg.model.name, "model.name")
    kwargs = {"num_classes": num_classes, **({"down_ratio": model.down_ratio} if model.down_ratio else {}), **model.kwargs}
    try:
        return create_model(name, pretrained_backbone=weights, **kwargs), kwargs
    except TypeError as e:  # an argument the model does not have
        raise DLAError(f"model {name} cannot be built with {kwargs} (model.down_ratio, model.kwargs): {e}") from e


def dense_backbone(model: nn.Module) -> Iterator[nn.Parameter]:
    """The backbone of a dense model: ``model.base`` (DLA) or ``model.backbone`` (the peer systems)."""
    for name in ("base", "backbone"):
        if isinstance(getattr(model, name, None), nn.Module):
            return getattr(model, name).parameters()
    raise DLAError(f"{type(model).__name__} has no backbone (.base or .backbone) for optim.backbone_lr_factor")


def dense_loss_terms(cfg: Config, losses: Mapping[str, LossFunction]) -> list[LossTerm]:
    """The terms of ``optim.loss``, checked against the ``losses`` the task offers (a DLAError naming the entry)."""
    return loss_terms(required(cfg.optim.loss, "optim.loss"), losses)


def dense_loss_problems(cfg: Config, losses: Mapping[str, LossFunction]) -> list[str]:
    """What is wrong with ``optim.loss`` for a task offering ``losses``, for ``Task.check``."""
    try:
        dense_loss_terms(cfg, losses)
    except DLAError as e:
        return [str(e)]
    return []


def dense_train_transform(cfg: Config, meta: DatasetMeta) -> Callable:
    """The dense tasks' joint augmentation of ``cfg.data``: scale, rotate, crop, flip, colour jitter."""
    data = cfg.data
    return train_transforms(
        meta,
        pair(data.crop_size, "data.crop_size"),
        pair(data.scale, "data.scale"),
        required(data.rotation, "data.rotation"),
        data.flip,
        data.color_jitter,
    )


class SegmentationTask(Task):
    """Per-pixel classes (Sec. 4.2, 5.3): DLA with IDA-up (``dla34up``, ...) and the peer systems, scored by mIoU."""

    name, score = "segmentation", "miou"
    defaults = {
        "model.name": "dla34up",
        "model.sync_bn": True,
        "data.crop_size": [360, 480],
        "data.scale": [0.5, 2.0],
        "data.rotation": 10.0,
        "optim.loss": [{"name": "ce", "weight": 1.0}],
    }
    keys = ("model.down_ratio", "data.rotation", "optim.loss", "eval.scales", "eval.flip", "eval.window", "eval.output_stride")
    large_images = "tile"  # images above the budget of dla predict run in windows (eval.window)

    def check(self, cfg: Config) -> list[str]:
        problems = []
        if not cfg.eval.scales or min(cfg.eval.scales) <= 0:
            problems.append(f"eval.scales must be a non-empty list of positive scales, got {cfg.eval.scales}")
        window = cfg.eval.window
        if window is not None and (len(window) != 2 or min(window) < 1):
            problems.append(f"eval.window must be null or [height, width], got {window}")
        return problems + dense_loss_problems(cfg, SOFTMAX_LOSSES)

    def train_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        return dense_train_transform(cfg, meta)

    def eval_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        return eval_transforms(meta)  # whole images; scales, flips and windows are the evaluator's

    def build_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> tuple[nn.Module, dict[str, Any]]:
        return dense_model(cfg, meta.num_classes, weights)

    def backbone_parameters(self, model: nn.Module) -> Iterator[nn.Parameter]:
        return dense_backbone(model)

    def criterion(self, cfg: Config, meta: DatasetMeta, class_weights: Tensor | None) -> Criterion:
        terms = dense_loss_terms(cfg, SOFTMAX_LOSSES)
        return partial(segmentation_loss, ignore_index=meta.ignore_index, class_weights=class_weights, terms=terms)

    def evaluate(self, model: nn.Module, dataset: TaskDataset, cfg: Config, device: torch.device) -> Scores:
        settings = cfg.eval
        with evaluated_at(model, settings.output_stride):
            return evaluate_segmentation(
                model, dataset, settings.scales, settings.flip, settings.window, device, cfg.data.workers
            )

    def predict(
        self,
        model: nn.Module,
        images: Sequence[Image.Image],
        cfg: Config,
        meta: DatasetMeta,
        device: torch.device,
        probabilities: bool = False,
        top_k: int = 5,
    ) -> list[Output]:
        """Each image's ``mask`` (``H x W`` int64 class ids) and, with ``probabilities``, its ``C x H x W``
        ``probabilities``, with the run's test-time settings; summary: the pixels of each class."""
        settings = cfg.eval
        window = pair(settings.window, "eval.window") if settings.window else None
        with evaluated_at(model, settings.output_stride):
            labels, probs = segment(model, images, meta, device, scales=settings.scales, flip=settings.flip, window=window)
        return [
            Output(
                {"mask": label.astype(np.int64), **({"probabilities": probability} if probabilities else {})},
                {"class_pixels": class_pixels(label, meta.classes)},
            )
            for label, probability in zip(labels, probs, strict=True)
        ]

    def pictures(self, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta) -> dict[str, Image.Image]:
        return prediction_pictures(image, arrays["mask"], meta)

    def write(
        self, out: Path, name: Path, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta, probabilities: bool
    ) -> list[Path]:
        """``out/<name>_mask.png``, ``_overlay.png`` and, with ``probabilities``, ``_probs.npy`` (``save_prediction``)."""
        probs = arrays["probabilities"] if probabilities else None
        return save_prediction(out / name.parent, name.name, image, arrays["mask"], probs, meta=meta)

    def summary(self, scores: Scores) -> str:
        return f"val mIoU {scores['miou']:.4f}"

    def table(self, result: Scores, classes: Sequence[str]) -> str:
        return format_table(result, classes)

    def draw(self, result: Scores, classes: Sequence[str]) -> dict[str, Image.Image]:
        return {"confusion": draw_confusion_matrix(result["confusion"], classes)}

    def draw_samples(self, samples: Sequence[Sample], meta: DatasetMeta) -> Image.Image:
        """Each image with its classes blended in (``overlay``; ignored pixels left as they are) and a legend of the
        classes shown."""
        palette, ignore = meta.palette, meta.ignore_index
        tiles = [(overlay(image, target, palette, ignore_index=ignore), title) for title, image, target in samples]
        return draw_grid(tiles, legend=palette_legend(meta.classes, meta.palette, [target for _, _, target in samples]))
