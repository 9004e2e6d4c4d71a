"""Semantic segmentation (Sec. 4.2, 5.3): the training loss, the paper's test-time inference, saving what a model
predicts, and ``SegmentationTask``, the task's part of the engine (transforms, model, loss, mIoU, pictures).

Inference (Sec. 5.3). The image is run at each scale of ``scales`` (and, with ``flip``, mirrored as well);
each run's softmax probabilities are resized back to the input size and the runs are *summed*, as the paper
"sums the predictions". A pixel's class scores in ``infer``'s output therefore add up to the number of runs
(``len(scales) * (2 if flip else 1)``); ``predict`` divides by it so that it returns probabilities.
With ``window`` each scale is tiled by overlapping windows instead of run whole (for inputs too large for
memory, or models trained on crops); see ``infer``.
"""

import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import Config, pair
from ..constants import IGNORE_INDEX
from ..data.base import SegmentationDataset, TaskDataset
from ..data.meta import DatasetMeta
from ..data.transforms import eval_transforms
from ..distributed import is_main_process, shard
from ..errors import DLAError
from ..inference.stride import evaluated_at
from ..inference.tiled import sliding_window
from ..losses import SOFTMAX_LOSSES, LossTerm, combined_loss, cross_entropy
from ..metrics.segmentation import ConfusionMatrix, format_table
from .base import PREDICT_DEFAULTS, Criterion, Output, PredictOptions, Sample, Scores, Shown, Task, View
from .curves import plot_curves
from .dense import dense_loss_problems, dense_loss_terms, dense_model, dense_train_transform, to_input
from .visualize import class_index_image, colorize, draw_confusion_matrix, draw_grid, overlay, palette_legend, picture_output

__all__ = [
    "SegmentationTask",
    "class_areas",
    "colorize",
    "draw_predictions",
    "evaluate_segmentation",
    "evaluated_at",
    "infer",
    "majority_baseline",
    "overlay",
    "plot_curves",
    "prediction_pictures",
    "save_prediction",
    "segment",
    "segment_image",
    "segmentation_loss",
    "to_input",
]


def __getattr__(name: str) -> Any:
    """``predict``, now ``segment_image`` (``predict`` names ``Task.predict`` alone): one release with a warning."""
    if name == "predict":
        warnings.warn("dla.tasks.segmentation.predict is now segment_image", DeprecationWarning, stacklevel=2)
        return segment_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def segment_image(
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


def majority_baseline(dataset: SegmentationDataset) -> tuple[str, Scores]:
    """The scores of predicting the most frequent class of ``dataset`` everywhere: what "no learning" earns."""
    labels = [torch.from_numpy(dataset.read(i)[1]) for i in range(len(dataset))]
    valid = torch.cat([label.flatten() for label in labels])
    valid = valid[valid != dataset.meta.ignore_index]
    majority = int(torch.bincount(valid, minlength=dataset.meta.num_classes).argmax())
    matrix = ConfusionMatrix(dataset.meta.num_classes, dataset.meta.ignore_index)
    for label in labels:
        matrix.update(torch.full_like(label, majority)[None], label[None])
    return "every pixel the most frequent class", matrix.compute()


# --- the page of dla app: the scales and the flip to choose; the overlay, the mask and each class's area -----------

SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # the scales offered on the page (with the run's own): the papers' sets
SWATCH_STYLE = "display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em; vertical-align: middle"


def class_areas(prediction: Shown) -> list[list[Any]]:
    """The table of class areas: one row ``[class, pixels, percent of the image]`` per class, the largest first."""
    width, height = prediction.size
    pixels = prediction.summary["class_pixels"]
    ranked = sorted(pixels.items(), key=lambda item: -item[1])
    return [[name, count, round(100 * count / (width * height), 2)] for name, count in ranked]


def swatch(colour: Sequence[int] | None) -> str:
    """A square of ``colour`` (RGB) to put before a class name in a Markdown cell; nothing without a colour."""
    if colour is None:
        return ""
    red, green, blue = colour
    return f'<span style="{SWATCH_STYLE}; background: rgb({red}, {green}, {blue})"></span>'


def _controls(gr: ModuleType, settings: Mapping[str, Any]) -> dict[str, Any]:
    scales = [float(s) for s in settings["scales"]]
    return {
        "scales": gr.CheckboxGroup(
            sorted({*SCALES, *scales}), value=scales, label="Scales", info="the image is resized to each; predictions summed"
        ),
        "flip": gr.Checkbox(value=bool(settings["flip"]), label="Flip", info="also predict the mirrored image"),
    }


def _outputs(gr: ModuleType) -> list[Any]:
    with gr.Row():
        pictures = [
            picture_output(gr, "Overlay", "overlay"),
            picture_output(gr, "Class-index mask (pixel values are class ids)", "mask"),
        ]
    areas = gr.Dataframe(
        headers=["class", "pixels", "area (%)"],
        datatype=["markdown", "number", "number"],
        label="Area per class",
        elem_id="areas",
        interactive=False,
    )
    return [*pictures, areas]


def _show(prediction: Shown, meta: DatasetMeta) -> list[Any]:
    pictures = prediction.pictures()
    colours = dict(zip(meta.classes, [tuple(int(c) for c in colour) for colour in meta.palette], strict=False))
    areas = [[swatch(colours.get(name)) + name, *row] for name, *row in class_areas(prediction)]
    return [pictures["overlay"], pictures["mask"], areas]


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
    baselines = {"majority": majority_baseline}

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
        options: PredictOptions = PREDICT_DEFAULTS,
    ) -> list[Output]:
        """Each image's ``mask`` (``H x W`` int64 class ids) and, with ``options.probabilities``, its ``C x H x W``
        ``probabilities``, with the run's test-time settings; summary: the pixels of each class."""
        settings = cfg.eval
        window = pair(settings.window, "eval.window") if settings.window else None
        with evaluated_at(model, settings.output_stride):
            labels, probs = segment(model, images, meta, device, scales=settings.scales, flip=settings.flip, window=window)
        return [
            Output(
                {"mask": label.astype(np.int64), **({"probabilities": probability} if options.probabilities else {})},
                {"class_pixels": class_pixels(label, meta.classes)},
            )
            for label, probability in zip(labels, probs, strict=True)
        ]

    def pictures(self, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta) -> dict[str, Image.Image]:
        return prediction_pictures(image, arrays["mask"], meta)

    def write(
        self,
        out: Path,
        name: Path,
        image: Image.Image,
        arrays: Mapping[str, np.ndarray],
        meta: DatasetMeta,
        options: PredictOptions = PREDICT_DEFAULTS,
    ) -> list[Path]:
        """``out/<name>_mask.png``, ``_overlay.png`` and, with ``options.probabilities``, ``_probs.npy``
        (``save_prediction``)."""
        probs = arrays["probabilities"] if options.probabilities else None
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

    def draw_predictions(self, rows: Sequence[tuple[str, Image.Image, Any, Output]], meta: DatasetMeta) -> Image.Image:
        """Each image, its true classes and the predicted ones (``draw_predictions``)."""
        return draw_predictions([(title, image, truth, output.arrays["mask"]) for title, image, truth, output in rows], meta)

    def view(self) -> View:
        """Scales and flip to choose; the overlay, the class-index mask and each class's area (with its colour)."""
        return View(_controls, _outputs, _show)
