"""The task contract: what a task (segmentation, classification, boundaries, ...) brings to the one engine.

The training machinery (``dla.engine``) and the commands (``dla.commands``, ``dla.app``) train, evaluate, predict
and show results without naming a task: they ask the ``Task`` of ``cfg.task`` (``dla.tasks.get_task``) for
everything task-specific. Each task is one module of ``dla.tasks`` that implements this contract next to its loss,
evaluation, prediction and pictures; adding a task is adding one module and one line to ``dla.tasks.TASKS``
(CONTRIBUTING.md).

The contract has two parts. What every task must give is abstract: its name and score, the transforms, the model,
the loss, the evaluation and the prediction. Everything else has a default that a task overrides where it has
something better: the config keys it reads and checks, the backbone for ``optim.backbone_lr_factor``, what
``dla predict`` writes and what the page of ``dla app`` shows, the tables and pictures of scores and samples,
and classical baselines.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..config import Config
from ..data.base import TaskDataset
from ..data.meta import DatasetMeta
from ..errors import DLAError
from .visualize import draw_grid

Scores = dict[str, Any]
Criterion = Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> the scalar loss of a batch
Baseline = Callable[..., tuple[str, Scores]]  # (dataset, **options) -> (what it is, its scores)


@dataclass(frozen=True)
class PredictOptions:
    """What a caller of ``Task.predict`` (``dla predict``, ``dla.Predictor``) asks beyond the run's ``eval``
    settings; each task reads the fields that concern it."""

    probabilities: bool = False  # dense tasks: also return (and write) the per-pixel probabilities
    top_k: int = 5  # classification: the classes listed in an image's summary, best first


PREDICT_DEFAULTS = PredictOptions()


class Output(NamedTuple):
    """What a task predicts of one image, in memory (``dla.Prediction`` holds it, ``Task.write`` writes it):
    ``arrays`` by name (NumPy, at the image's size) and ``summary``, a JSON-ready dict of a few numbers."""

    arrays: dict[str, np.ndarray]
    summary: dict[str, Any]


class Sample(NamedTuple):
    """One sample to draw: ``title``, what names it in the picture (``"#12"``, the dataset index); ``image``, the RGB
    image; ``target``, its label as the transforms give it (an ``H x W`` array for dense tasks, a class index for
    classification)."""

    title: str
    image: Image.Image
    target: Any


class Shown(Protocol):
    """What a page shows of one prediction (``dla.Prediction`` is one): the image's size, the task's summary and its
    pictures."""

    @property
    def size(self) -> tuple[int, int]: ...  # width, height

    @property
    def summary(self) -> dict[str, Any]: ...

    def pictures(self) -> dict[str, Image.Image]: ...


@dataclass(frozen=True)
class View:
    """A task's part of the ``dla app`` page; Gradio's module comes as ``gr``, so that no task imports it.

    ``controls(gr, settings)``: the run's ``eval`` keys the page lets a user change, each with its input component
    showing the run's value (``settings``). ``outputs(gr)``: the result components. ``show(prediction, meta)``: their
    values for one prediction, in the order of ``outputs``.
    """

    controls: Callable[[ModuleType, Mapping[str, Any]], dict[str, Any]]
    outputs: Callable[[ModuleType], list[Any]]
    show: Callable[[Shown, DatasetMeta], list[Any]]


class Task(ABC):
    """One task's part of training, evaluation and prediction.

    Class attributes:

    - ``name``: the value of ``cfg.task``; ``score``: the validation score that picks ``best.pt`` (higher is better).
    - ``defaults``: dotted keys whose ``null`` means this value for this task (``{"model.name": "dla34up"}``);
      ``load_config`` writes them into the config, so a run's ``config.yaml`` states what was used.
    - ``keys``: the task-specific keys this task reads. A key that some task lists and this one does not is
      refused unless left at the schema's default, rather than silently ignored.
    - ``large_images``: what ``dla predict`` does with an image above its pixel budget (``--max-pixels``), decided
      from the file's header before any image is predicted: ``"tile"`` runs it in windows (``eval.window``),
      ``"resize"`` runs it as any other (the task resizes every image to the model's input), ``"refuse"``
      refuses it (the task runs whole images only). The default refuses: whole-image memory grows with the image.
    - ``baselines``: classical methods scored as a model is (``dla baseline``, the demo): by name, a function of a
      dataset (and the method's own options) giving what it is and its scores.
    """

    name: ClassVar[str]
    score: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}
    keys: ClassVar[tuple[str, ...]] = ()
    large_images: ClassVar[Literal["tile", "resize", "refuse"]] = "refuse"
    baselines: ClassVar[Mapping[str, Baseline]] = {}

    # --- what every task gives ------------------------------------------------------------------------------

    @abstractmethod
    def train_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        """The augmentation of training samples: a dataset's ``transform``."""

    @abstractmethod
    def eval_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        """The fixed preparation of evaluation samples."""

    @abstractmethod
    def build_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> tuple[nn.Module, dict[str, Any]]:
        """The model of ``cfg.model`` for ``meta``'s classes, with ``weights`` (ImageNet weights for its backbone,
        or None), and the keyword arguments that rebuild it from a checkpoint (without ``weights``)."""

    @abstractmethod
    def criterion(self, cfg: Config, meta: DatasetMeta, class_weights: Tensor | None) -> Criterion:
        """The training loss of ``cfg`` (``optim.loss`` where the task reads it) for ``meta``'s classes, weighted by
        ``class_weights`` (one per class, or None): a function of one batch's logits and targets, built once."""

    @abstractmethod
    def evaluate(self, model: nn.Module, dataset: TaskDataset, cfg: Config, device: torch.device) -> Scores:
        """Scores of ``model`` on every sample of ``dataset`` with the ``cfg.eval`` settings. Under several processes
        each scores its share (``dla.distributed.shard``) and the counts are summed, so every process returns the
        scores of the whole dataset."""

    @abstractmethod
    def predict(
        self,
        model: nn.Module,
        images: Sequence[Image.Image],
        cfg: Config,
        meta: DatasetMeta,
        device: torch.device,
        options: PredictOptions = PREDICT_DEFAULTS,
    ) -> list[Output]:
        """Predict RGB ``images`` of one size, run as one batch, with the ``cfg.eval`` settings and ``options``; each
        one's ``Output``. Nothing is written: ``dla predict`` and ``dla.Predictor`` share this, and ``write`` writes
        what it returns."""

    # --- what has a default -----------------------------------------------------------------------------------

    def check(self, cfg: Config) -> list[str]:
        """Problems with this task's values in ``cfg`` (ranges, lengths), each a sentence naming the key; none."""
        return []

    def backbone_parameters(self, model: nn.Module) -> Iterator[nn.Parameter]:
        """The pretrained part, whose learning rate ``optim.backbone_lr_factor`` scales: ``model.base`` (DLA) or
        ``model.backbone`` (the peer systems)."""
        for name in ("base", "backbone"):
            if isinstance(getattr(model, name, None), nn.Module):
                return getattr(model, name).parameters()
        raise DLAError(f"{type(model).__name__} has no backbone (.base or .backbone) for optim.backbone_lr_factor")

    def pictures(self, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta) -> dict[str, Image.Image]:
        """Pictures of one image's prediction (``arrays`` of its ``Output``), by name; none by default."""
        return {}

    def write(
        self,
        out: Path,
        name: Path,
        image: Image.Image,
        arrays: Mapping[str, np.ndarray],
        meta: DatasetMeta,
        options: PredictOptions = PREDICT_DEFAULTS,
    ) -> list[Path]:
        """Write one image's prediction as ``dla predict``'s files, named after ``name`` (relative to ``out``, without a
        suffix: ``out/a/x_<picture>.png`` for ``a/x``); the written paths. By default its ``pictures`` as PNG files."""
        written = []
        for kind, picture in self.pictures(image, arrays, meta).items():
            written.append(out / name.parent / f"{name.name}_{kind}.png")
            written[-1].parent.mkdir(parents=True, exist_ok=True)
            picture.save(written[-1])
        return written

    def write_run(self, out: Path, summaries: Mapping[str, Mapping[str, Any]]) -> list[Path]:
        """Write the files ``dla predict`` writes once for all images into ``out``, from each image's ``summary`` keyed
        by its path as the user named it; the written paths. None by default."""
        return []

    def summary(self, scores: Scores) -> str:
        """A one-line summary of the scores: ``val <score> 0.5123`` by default."""
        return f"val {self.score} {scores[self.score]:.4f}"

    def table(self, result: Scores, classes: Sequence[str]) -> str:
        """The scores as a plain-text table: each number of ``result`` on a line by default."""
        numbers = {key: value for key, value in result.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
        width = max((len(key) for key in numbers), default=0)
        return "\n".join(f"{key:<{width}}  {value:.4f}" for key, value in numbers.items())

    def draw(self, result: Scores, classes: Sequence[str]) -> dict[str, Image.Image]:
        """Pictures of the scores, by name (``{"confusion": image}``); none by default."""
        return {}

    def compare(self, results: Sequence[tuple[str, Scores]]) -> Image.Image:
        """Several named results drawn in one picture (``dla pr-curve``: the precision-recall curves of Fig. 7); a
        DLAError by default."""
        raise DLAError(f"{self.name} results have no picture that compares them")

    def draw_samples(self, samples: Sequence[Sample], meta: DatasetMeta) -> Image.Image:
        """A grid of ``samples``, each image with its target shown on it (``dla browse``: what the training transform
        makes of the data); by default the images titled."""
        return draw_grid([(image, title) for title, image, _ in samples])

    def draw_predictions(self, rows: Sequence[tuple[str, Image.Image, Any, Output]], meta: DatasetMeta) -> Image.Image:
        """A panel of predictions next to the truth (``dla demo``), one row per ``(title, image, target, output)``; by
        default each image beside the pictures of its prediction."""
        tiles = []
        for title, image, _, output in rows:
            tiles += [(image, title), *((picture, kind) for kind, picture in self.pictures(image, output.arrays, meta).items())]
        return draw_grid(tiles)

    def view(self) -> View:
        """The task's part of the ``dla app`` page; by default no controls, the prediction's pictures and its summary."""
        return View(lambda gr, settings: {}, _default_outputs, _default_show)


def _default_outputs(gr: ModuleType) -> list[Any]:
    return [gr.Gallery(label="Pictures", elem_id="pictures"), gr.JSON(label="Summary", elem_id="summary")]


def _default_show(prediction: Shown, meta: DatasetMeta) -> list[Any]:
    return [[(picture, name) for name, picture in prediction.pictures().items()], prediction.summary]


__all__ = ["PREDICT_DEFAULTS", "Baseline", "Criterion", "Output", "PredictOptions", "Sample", "Scores", "Shown", "Task", "View"]
