"""The task contract: what a task (segmentation, classification, boundaries) brings to the one engine.

The engine (``dla.engine``) trains, evaluates and predicts without naming a task: it asks the ``Task`` of
``cfg.task`` (``dla.tasks.get_task``) for everything task-specific. Each task is one module of
``dla.tasks`` that implements this contract next to its loss, evaluation, prediction and pictures; adding
a task is adding one module and one line to ``dla.tasks.TASKS`` (see CONTRIBUTING.md).
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..config import Config
from ..data.base import TaskDataset
from ..data.meta import DatasetMeta

Scores = dict[str, Any]
Criterion = Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> the scalar loss of a batch


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


class Task(ABC):
    """One task's part of training, evaluation and prediction.

    Config, declared by the class attributes:

    - ``name``: the value of ``cfg.task``.
    - ``defaults``: dotted keys whose ``null`` means this value for this task (``{"model.name": "dla34up"}``);
      ``load_config`` writes them into the config, so a run's ``config.yaml`` states what was used.
    - ``keys``: the task-specific keys this task reads. A key that some task lists and this one does not is
      refused unless left at the schema's default, rather than silently ignored.
    - ``score``: the validation score that picks ``best.pt`` (higher is better).
    - ``large_images``: what ``dla predict`` does with an image above its pixel budget (``--max-pixels``), decided
      from the file's header before any image is predicted: ``"tile"`` runs it in windows (``eval.window``),
      ``"resize"`` runs it as any other (the task resizes every image to the model's input), ``"refuse"``
      refuses it (the task runs whole images only). The default refuses: whole-image memory grows with the image.
    """

    name: ClassVar[str]
    score: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}
    keys: ClassVar[tuple[str, ...]] = ()
    large_images: ClassVar[Literal["tile", "resize", "refuse"]] = "refuse"

    def check(self, cfg: Config) -> list[str]:
        """Problems with this task's values in ``cfg`` (ranges, lengths), each a sentence naming the key."""
        return []

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
    def backbone_parameters(self, model: nn.Module) -> Iterator[nn.Parameter]:
        """The pretrained part, whose learning rate ``optim.backbone_lr_factor`` scales."""

    @abstractmethod
    def criterion(self, cfg: Config, meta: DatasetMeta, class_weights: Tensor | None) -> Criterion:
        """The training loss of ``cfg`` (``optim.loss`` where the task reads it) for ``meta``'s classes, weighted by
        ``class_weights`` (one per class, or None): a function of one batch's logits and targets, built once."""

    @abstractmethod
    def evaluate(self, model: nn.Module, dataset: TaskDataset, cfg: Config, device: torch.device) -> Scores:
        """Scores of ``model`` on every sample of ``dataset`` with the ``cfg.eval`` settings."""

    @abstractmethod
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
        """Predict RGB ``images`` of one size, run as one batch, with the ``cfg.eval`` settings; each one's ``Output``.

        ``probabilities`` (dense tasks): also return the probabilities; ``top_k`` (classification): classes listed.
        Nothing is written: ``dla predict`` and ``dla.Predictor`` share this, and ``write`` writes what it returns.
        """

    def pictures(self, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta) -> dict[str, Image.Image]:
        """Pictures of one image's prediction (``arrays`` of its ``Output``), by name; none by default."""
        return {}

    def write(
        self, out: Path, name: Path, image: Image.Image, arrays: Mapping[str, np.ndarray], meta: DatasetMeta, probabilities: bool
    ) -> list[Path]:
        """Write one image's prediction as ``dla predict``'s files, named after ``name`` (relative to ``out``, without a
        suffix: ``out/a/x_mask.png`` for ``a/x``); the written paths. ``probabilities``: also the probabilities.
        None by default."""
        return []

    def write_run(self, out: Path, summaries: Mapping[str, Mapping[str, Any]]) -> list[Path]:
        """Write the files ``dla predict`` writes once for all images into ``out``, from each image's ``summary`` keyed
        by its path as the user named it; the written paths. None by default."""
        return []

    @abstractmethod
    def summary(self, scores: Scores) -> str:
        """A one-line summary of the scores (``val mIoU 0.5123``)."""

    @abstractmethod
    def table(self, result: Scores, classes: Sequence[str]) -> str:
        """The scores as a plain-text table."""

    @abstractmethod
    def draw(self, result: Scores, classes: Sequence[str]) -> dict[str, Image.Image]:
        """Pictures of the scores, by name (``{"confusion": image}``)."""

    @abstractmethod
    def draw_samples(self, samples: Sequence[Sample], meta: DatasetMeta) -> Image.Image:
        """A grid of ``samples``, each image with its target shown on it (``dla browse``: what the training
        transform makes of the data)."""
