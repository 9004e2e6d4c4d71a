"""Boundary detection (Sec. 5.4): the weighted loss, evaluation with the BSDS benchmark, the precision-recall
plot of Fig. 7, a classical baseline scored by the same code, and ``BoundaryTask``, the task's part of the engine.

A boundary model returns one logit per pixel (``N x 1 x H x W``); its sigmoid is the boundary probability.
Training follows HED, as the paper does: binary cross-entropy on the annotators' consensus, boundary
pixels weighted more than the others (``class_weights = (1, 10)``), ignored pixels (255) left out; ``optim.loss``
may swap or add the other binary losses of ``dla.losses`` (focal, Dice, Lovász hinge).
Evaluation thins each probability map along the edge normal (``thin_edges``) and scores it against
every annotator at 99 thresholds (``BoundaryBenchmark``): ODS, OIS and AP.
"""

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy  # its submodules load on first use, not at every ``dla`` start
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from ..config import Config, required
from ..constants import IGNORE_INDEX
from ..data.base import TaskDataset
from ..data.meta import DatasetMeta
from ..data.transforms import eval_transforms
from ..distributed import is_main_process, shard_indices
from ..errors import DLAError
from ..losses import BINARY_LOSSES, LossTerm, binary_cross_entropy, combined_loss
from ..metrics.boundaries import BoundaryBenchmark, thin_edges
from .base import PREDICT_DEFAULTS, Criterion, Output, PredictOptions, Sample, Scores, Shown, Task, View
from .dense import dense_loss_problems, dense_loss_terms, dense_model, dense_train_transform, to_input
from .visualize import draw_grid, figure_image, new_figure, overlay, picture_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ISO_F = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the contours of Fig. 7
ISO_F_COLOUR = "#5fb35f"  # BSDS draws its iso-F contours in green
CURVE_COLOURS = ("C3", "C0", "C1", "C4", "C5", "C6", "C8", "C9")  # matplotlib's, without its green
SAMPLE_MARKS = (("boundary", (255, 0, 0)), ("ignored", (0, 128, 255)))  # how draw_samples paints a label
EDGE_THRESHOLD = 0.5  # a thinned pixel of at least this probability counts as an edge in a prediction's summary


def boundary_loss(
    logits: Tensor,
    target: Tensor,
    class_weights: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    terms: Sequence[LossTerm] = (LossTerm("bce", binary_cross_entropy),),
) -> Tensor:
    """The boundary loss of ``N x 1 x H x W`` logits against ``N x H x W`` labels (1 boundary, 0 not, ``ignore_index``
    left out): the weighted sum of ``terms`` (``optim.loss``, from ``dla.losses.BINARY_LOSSES``), by default HED's
    binary cross-entropy alone (``dla.losses.binary_cross_entropy``: each pixel weighted by
    ``class_weights[label]``, ``(1, 10)`` making boundaries count ten times, summed and divided by the number of
    pixels that are not ignored)."""
    return combined_loss(terms, logits, target, ignore_index, class_weights)


@torch.no_grad()
def boundary_probability(model: nn.Module, images: Tensor) -> np.ndarray:
    """The ``N x H x W`` boundary probabilities (float32) of normalised ``N x 3 x H x W`` images."""
    return torch.sigmoid(model(images)[:, 0].float()).cpu().numpy()


@torch.no_grad()
def evaluate_boundaries(
    model: nn.Module, dataset: Any, thresholds: int = 99, tolerance: float = 0.0075, device: torch.device | None = None
) -> dict[str, Any]:
    """Score ``model`` on every image of a boundary dataset (``dataset.read_annotated(i)``: the image and every
    annotator's map) with the BSDS protocol, one forward pass per whole image normalised with ``dataset.meta``.

    Returns:
        ``ods``, ``ois``, ``ap`` and the curve (``thresholds``, ``precision``, ``recall``, ``f``) of
        ``BoundaryBenchmark.compute``.
    """
    device = device if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores = benchmark_maps(
        dataset, lambda image: boundary_probability(model, to_input([image], dataset.meta, device))[0], thresholds, tolerance
    )
    model.train(was_training)
    return scores


def benchmark_maps(
    dataset: Any, boundary_map: Callable[[Image.Image], np.ndarray], thresholds: int = 99, tolerance: float = 0.0075
) -> dict[str, Any]:
    """The BSDS scores of ``boundary_map(image)`` (``H x W`` in [0, 1]) on every image of a boundary dataset,
    each map thinned by ``thin_edges`` and matched against every annotator. Under several processes each
    scores its share of the images and the per-image counts are gathered, so every process returns the
    scores of the whole dataset."""
    benchmark = BoundaryBenchmark(thresholds, tolerance)
    indices = shard_indices(len(dataset))
    for index in tqdm(indices, desc="evaluating", leave=False, dynamic_ncols=True, disable=not is_main_process()):
        image, annotations = dataset.read_annotated(index)
        benchmark.update(thin_edges(boundary_map(image)), annotations)
    benchmark.all_gather()
    return benchmark.compute()


def gradient_magnitude(image: Image.Image, sigma: float = 1.0) -> np.ndarray:
    """A classical boundary map: the Gaussian-smoothed (``sigma``) gradient magnitude of the RGB image,
    the largest over its channels, scaled to [0, 1]. The sanity anchor the learned models must beat."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    magnitude = np.max([scipy.ndimage.gaussian_gradient_magnitude(pixels[..., c], sigma) for c in range(3)], axis=0)
    return magnitude / max(float(magnitude.max()), 1e-12)


def evaluate_gradient_baseline(
    dataset: Any, thresholds: int = 99, tolerance: float = 0.0075, sigma: float = 1.0
) -> dict[str, Any]:
    """The BSDS scores of ``gradient_magnitude`` on every image of ``dataset``, thinned like the models'."""
    return benchmark_maps(dataset, lambda image: gradient_magnitude(image, sigma), thresholds, tolerance)


def gradient_baseline(
    dataset: Any, thresholds: int = 99, tolerance: float = 0.0075, sigma: float = 1.0
) -> tuple[str, dict[str, Any]]:
    """``evaluate_gradient_baseline`` as one of the task's ``baselines``: what it is, and its scores."""
    return f"gradient magnitude (sigma {sigma:g})", evaluate_gradient_baseline(dataset, thresholds, tolerance, sigma)


def format_boundary_scores(result: dict[str, Any]) -> str:
    """ODS (with its threshold), OIS and AP as a small table."""
    rows = [
        ("ODS", result["ods"], f"threshold {result['ods_threshold']:.2f}"),
        ("OIS", result["ois"], ""),
        ("AP", result["ap"], ""),
    ]
    return "\n".join(f"{name:<4} {value:.4f}  {note}".rstrip() for name, value, note in rows)


def draw_pr_curve(curves: Sequence[tuple[str, dict[str, Any]]]) -> Image.Image:
    """Precision-recall curves as an RGB image (``pr_figure``)."""
    return figure_image(pr_figure(curves))


def pr_figure(curves: Sequence[tuple[str, dict[str, Any]]]) -> "Figure":
    """Precision against recall in the style of the paper's Fig. 7 and the BSDS benchmark's plots: iso-F contours
    (green, labelled), each curve with its ODS point circled, and a legend ``[F=0.794] name`` in the curves' order.
    ``curves``: ``(name, BoundaryBenchmark result)``; the thresholds where nothing is found (recall and precision
    both 0) are left out of a curve."""
    figure = new_figure(6.0, 5.0)
    axes = figure.add_subplot()
    r, p = np.meshgrid(np.linspace(0.01, 1.0, 100), np.linspace(0.01, 1.0, 100))
    axes.clabel(axes.contour(r, p, 2 * p * r / (p + r), levels=ISO_F, colors=ISO_F_COLOUR, linewidths=0.8), fontsize=7)
    for k, (name, result) in enumerate(curves):
        colour = CURVE_COLOURS[k % len(CURVE_COLOURS)]
        recall, precision = np.asarray(result["recall"], float), np.asarray(result["precision"], float)
        found = (recall > 0) | (precision > 0)
        axes.plot(recall[found], precision[found], color=colour, linewidth=2, label=f"[F={result['ods']:.3f}] {name}")
        axes.plot(result["ods_recall"], result["ods_precision"], "o", color=colour, markersize=8, markerfacecolor="none")
    axes.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="Recall", ylabel="Precision")
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(loc="lower left", fontsize=8)
    return figure


PR_KEYS = {"recall", "precision", "ods", "ods_recall", "ods_precision"}  # what a result needs to be drawn as a curve


def compare_pr_curves(results: Sequence[tuple[str, dict[str, Any]]]) -> Image.Image:
    """``draw_pr_curve`` of named results, each checked to hold a precision-recall curve (a DLAError naming it)."""
    for name, result in results:
        if not PR_KEYS <= result.keys():
            raise DLAError(f"{name}: not a boundary result with a precision-recall curve (write one with dla eval --output)")
    return draw_pr_curve(results)


def _outputs(gr: ModuleType) -> list[Any]:
    with gr.Row():
        return [picture_output(gr, "Boundary probability", "boundaries"), picture_output(gr, "Thinned boundaries", "thin")]


def _show(prediction: Shown, meta: DatasetMeta) -> list[Any]:
    pictures = prediction.pictures()
    return [pictures["boundaries"], pictures["thin"]]


def write_boundaries(
    out: Path, stem: str, probability: np.ndarray, thinned: np.ndarray, probabilities: bool = False
) -> list[Path]:
    """Write ``<stem>_boundaries.png`` (the probability, white on black, 8-bit), ``<stem>_boundaries16.png`` (the
    same in 16 bits, ``value / 65535`` is the probability, for programs that threshold it finely, as the BSDS
    benchmark does), ``<stem>_thin.png`` (thinned, 8-bit) and, with ``probabilities``, the float16 probabilities
    (``<stem>_probs.npy``); the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, values, depth in (("boundaries", probability, 8), ("boundaries16", probability, 16), ("thin", thinned, 8)):
        written.append(out / f"{stem}_{suffix}.png")
        grey_image(values, depth).save(written[-1])
    if probabilities:
        written.append(out / f"{stem}_probs.npy")
        np.save(written[-1], probability.astype(np.float16))
    return written


def grey_image(values: np.ndarray, depth: int) -> Image.Image:
    """``H x W`` values in [0, 1] as a grey image of ``depth`` bits (8: ``L``; 16: ``I;16``), rounded to its levels."""
    levels = np.round((2**depth - 1) * np.clip(values, 0.0, 1.0))
    return Image.fromarray(levels.astype(np.uint16 if depth == 16 else np.uint8))  # I;16 or L


class BoundaryTask(Task):
    """Boundaries (Sec. 5.4): DLA with IDA-up to one logit per pixel (``dla34edge``, ...), trained on the
    annotators' consensus with the segmentation augmentation, scored by the BSDS benchmark's ODS."""

    name, score = "boundaries", "ods"
    # Sec. 5.4 after HED: boundary pixels weigh 10 times the others; rotations up to 180 degrees for BSDS;
    # the BSDS benchmark's 99 thresholds and matching distance of 0.0075 of the image diagonal
    defaults = {
        "model.name": "dla34edge",
        "model.sync_bn": True,
        "data.crop_size": [320, 320],
        "data.scale": [0.5, 1.5],
        "data.rotation": 180.0,
        "optim.class_weights": [1.0, 10.0],
        "optim.loss": [{"name": "bce", "weight": 1.0}],
        "eval.thresholds": 99,
        "eval.tolerance": 0.0075,
    }
    keys = ("model.down_ratio", "data.rotation", "optim.loss", "eval.thresholds", "eval.tolerance")
    large_images = "refuse"  # whole images, as the BSDS benchmark scores them: no sliding window
    baselines = {"gradient": gradient_baseline}

    def check(self, cfg: Config) -> list[str]:
        thresholds, tolerance = required(cfg.eval.thresholds, "eval.thresholds"), required(cfg.eval.tolerance, "eval.tolerance")
        if thresholds < 1 or not 0 < tolerance < 1:
            return ["eval.thresholds must be at least 1 and eval.tolerance a fraction of the diagonal in (0, 1)"]
        return dense_loss_problems(cfg, BINARY_LOSSES)

    def train_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        return dense_train_transform(cfg, meta)

    def eval_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        return eval_transforms(meta)

    def build_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> tuple[nn.Module, dict[str, Any]]:
        return dense_model(cfg, 1, weights)  # one logit

    def criterion(self, cfg: Config, meta: DatasetMeta, class_weights: Tensor | None) -> Criterion:
        terms = dense_loss_terms(cfg, BINARY_LOSSES)
        return partial(boundary_loss, class_weights=class_weights, ignore_index=meta.ignore_index, terms=terms)

    def evaluate(self, model: nn.Module, dataset: TaskDataset, cfg: Config, device: torch.device) -> Scores:
        return evaluate_boundaries(
            model,
            dataset,
            required(cfg.eval.thresholds, "eval.thresholds"),
            required(cfg.eval.tolerance, "eval.tolerance"),
            device,
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
        """Each image's ``boundaries`` (the ``H x W`` probability) and ``thin`` (thinned by ``thin_edges``: the
        surviving probabilities, 0 elsewhere), float32; summary: the thinned pixels of probability at least
        ``EDGE_THRESHOLD``."""
        outputs = []
        for probability in boundary_probability(model, to_input(images, meta, device)):
            thin = thin_edges(probability)
            outputs.append(
                Output({"boundaries": probability, "thin": thin}, {"edge_pixels": int((thin >= EDGE_THRESHOLD).sum())})
            )
        return outputs

    def pictures(self, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta) -> dict[str, Image.Image]:
        """The probability and the thinned map as 8-bit grey images (white: 1)."""
        return {name: grey_image(arrays[name], 8) for name in ("boundaries", "thin")}

    def write(
        self,
        out: Path,
        name: Path,
        image: Image.Image,
        arrays: Mapping[str, np.ndarray],
        meta: DatasetMeta,
        options: PredictOptions = PREDICT_DEFAULTS,
    ) -> list[Path]:
        """``out/<name>_boundaries.png`` ... (``write_boundaries``)."""
        return write_boundaries(out / name.parent, name.name, arrays["boundaries"], arrays["thin"], options.probabilities)

    def summary(self, scores: Scores) -> str:
        return f"val ODS {scores['ods']:.4f}, OIS {scores['ois']:.4f}, AP {scores['ap']:.4f}"

    def table(self, result: Scores, classes: Sequence[str]) -> str:
        return format_boundary_scores(result)

    def draw(self, result: Scores, classes: Sequence[str]) -> dict[str, Image.Image]:
        return {"pr_curve": draw_pr_curve([(result.get("model", "model"), result)])}

    def compare(self, results: Sequence[tuple[str, Scores]]) -> Image.Image:
        return compare_pr_curves(results)

    def view(self) -> View:
        """No settings to choose; the boundary probability and the thinned boundaries."""
        return View(lambda gr, settings: {}, _outputs, _show)

    def draw_samples(self, samples: Sequence[Sample], meta: DatasetMeta) -> Image.Image:
        """Each image with its boundary pixels painted red and its ignored ones (padding, uncertain) blue."""
        colours = [colour for _, colour in SAMPLE_MARKS]
        tiles = [(overlay(image, _marks(target, meta.ignore_index), colours, 0.8), title) for title, image, target in samples]
        return draw_grid(tiles, legend=SAMPLE_MARKS)


def _marks(target: np.ndarray, ignore_index: int) -> np.ndarray:
    """A boundary label (1, 0, ``ignore_index``) as indices into ``SAMPLE_MARKS`` (0 boundary, 1 ignored; 255 none)."""
    marks = np.full(np.shape(target), IGNORE_INDEX, dtype=np.int64)
    marks[np.asarray(target) == 1] = 0
    marks[np.asarray(target) == ignore_index] = 1
    return marks


__all__ = [
    "BoundaryTask",
    "benchmark_maps",
    "boundary_loss",
    "boundary_probability",
    "compare_pr_curves",
    "draw_pr_curve",
    "pr_figure",
    "evaluate_boundaries",
    "evaluate_gradient_baseline",
    "format_boundary_scores",
    "gradient_baseline",
    "gradient_magnitude",
    "write_boundaries",
]
