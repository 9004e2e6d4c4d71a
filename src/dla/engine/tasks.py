"""What each task brings to the one training loop: its transforms, model, loss, evaluation and score.

``trainer.py`` never names a task; it asks ``TASKS[cfg["task"]]``. A task here only reads the config
and calls the task's own code in ``dla.tasks`` (losses, evaluation loops, tables), so that adding a task
(boundaries, ...) means one more class below, not another training loop.

- ``train_transform(cfg, meta)`` / ``eval_transform(cfg, meta)``: the augmentation of training samples
  and the fixed preparation of evaluation samples.
- ``create_model(cfg, meta, weights)``: the model and the keyword arguments that rebuild it from a
  checkpoint (``weights``, ImageNet weights for the backbone, are not among them: they are in the state).
- ``backbone(model)``: the pretrained part, whose learning rate ``optim.backbone_lr_factor`` scales
  (``model.base`` of DLA's dense models, ``model.backbone`` of the peer systems).
- ``loss(outputs, targets, meta, class_weights)``, ``evaluate(model, dataset, cfg, device)``.
- ``score``: the validation metric that chooses ``best.pt`` (higher is better); ``summary`` and ``table``
  print results, ``draw`` makes their pictures (``{"confusion": image}``, ``{"pr_curve": image}``).
"""

import contextlib
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from PIL import Image

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..data.classification_transforms import classification_eval_transforms, classification_train_transforms
from ..data.meta import DatasetMeta
from ..data.transforms import eval_transforms, train_transforms
from ..errors import DLAError
from ..metrics.segmentation import format_table
from ..models import create_model
from ..tasks.boundaries import boundary_loss, draw_pr_curve, evaluate_boundaries, format_boundary_scores
from ..tasks.classification import classification_loss, evaluate_classification, format_scores
from ..tasks.segmentation import evaluate_segmentation, segmentation_loss
from ..tasks.visualize import draw_confusion_matrix

Config = Dict[str, Any]


class SegmentationTask:
    """Per-pixel classes (Sec. 4.2, 5.3): DLA with IDA-up (``dla34up``, ...), mIoU."""

    name, score = "segmentation", "miou"

    def train_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        data = cfg["data"]
        return train_transforms(
            meta, tuple(data["crop_size"]), tuple(data["scale"]), data["rotation"], data["flip"], data["color_jitter"]
        )

    def eval_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        return eval_transforms(meta)  # whole images; scales, flips and windows are the evaluator's

    def create_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> Tuple[nn.Module, Config]:
        return dense_model(cfg, meta.num_classes, weights)

    def backbone(self, model: nn.Module) -> Iterator[nn.Parameter]:
        for name in ("base", "backbone"):
            if isinstance(getattr(model, name, None), nn.Module):
                return getattr(model, name).parameters()
        raise DLAError(f"{type(model).__name__} has no backbone (.base or .backbone) for optim.backbone_lr_factor")

    def loss(self, outputs: Tensor, targets: Tensor, meta: DatasetMeta, class_weights: Optional[Tensor]) -> Tensor:
        return segmentation_loss(outputs, targets, meta.ignore_index, class_weights)

    def evaluate(self, model: nn.Module, dataset: Dataset, cfg: Config, device: torch.device) -> Dict[str, Any]:
        settings = cfg["eval"]
        with evaluated_at(model, settings.get("output_stride")):  # runs from before the key have none
            return evaluate_segmentation(
                model, dataset, settings["scales"], settings["flip"], settings["window"], device, cfg["data"]["workers"]
            )

    def summary(self, metrics: Dict[str, Any]) -> str:
        return f"val mIoU {metrics['miou']:.4f}"

    def table(self, result: Dict[str, Any], classes: Sequence[str]) -> str:
        return format_table(result, classes)

    def draw(self, result: Dict[str, Any], classes: Sequence[str]) -> Dict[str, Image.Image]:
        return {"confusion": draw_confusion_matrix(result["confusion"], classes)}


class ClassificationTask:
    """Image classes (Sec. 5.1, 5.2): the DLA classifiers (``dla34``, ``dla46_c``, ...), top-1 accuracy."""

    name, score = "classification", "top1"

    def train_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        """Random-resized crops with the paper's colour noise. An exact ``[height, width]`` resize (the
        fine-grained sets' 512x512) comes first, so that training sees objects with the aspect of the test
        images; a shorter-side resize does not, as it would only blur the random crops."""
        data = cfg["data"]
        squash = tuple(data["resize"]) if len(data["resize"]) == 2 else None
        return classification_train_transforms(
            meta, tuple(data["crop_size"]), tuple(data["scale"]), tuple(data["ratio"]), data["flip"],
            data["color_jitter"], data["lighting"], resize=squash,
        )

    def eval_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        data = cfg["data"]
        resize = data["resize"][0] if len(data["resize"]) == 1 else tuple(data["resize"])
        return classification_eval_transforms(meta, resize, tuple(data["crop_size"]), cfg["eval"]["ten_crop"])

    def create_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> Tuple[nn.Module, Config]:
        kwargs = {"num_classes": meta.num_classes, **cfg["model"]["kwargs"]}
        # weights of another class count (ImageNet's 1000) load all but the classifier, which starts afresh
        return create_model(cfg["model"]["name"], pretrained=weights or False, **kwargs), kwargs

    def backbone(self, model: nn.Module) -> Iterator[nn.Parameter]:
        if not hasattr(model, "get_classifier"):
            raise DLAError(f"{type(model).__name__} has no get_classifier() to tell its head from its backbone")
        head = {id(p) for p in model.get_classifier().parameters()}
        return (p for p in model.parameters() if id(p) not in head)

    def loss(self, outputs: Tensor, targets: Tensor, meta: DatasetMeta, class_weights: Optional[Tensor]) -> Tensor:
        return classification_loss(outputs, targets, class_weights)

    def evaluate(self, model: nn.Module, dataset: Dataset, cfg: Config, device: torch.device) -> Dict[str, Any]:
        return evaluate_classification(model, dataset, device, cfg["data"]["batch_size"], cfg["data"]["workers"])

    def summary(self, metrics: Dict[str, Any]) -> str:
        return f"val top-1 {metrics['top1']:.4f}"

    def table(self, result: Dict[str, Any], classes: Sequence[str]) -> str:
        return format_scores(result, classes)

    def draw(self, result: Dict[str, Any], classes: Sequence[str]) -> Dict[str, Image.Image]:
        return {"confusion": draw_confusion_matrix(result["confusion"], classes)}


class BoundaryTask(SegmentationTask):
    """Boundaries (Sec. 5.4): DLA with IDA-up to one logit per pixel (``dla34edge``, ...), trained on the
    annotators' consensus with the segmentation augmentation, scored by the BSDS benchmark's ODS."""

    name, score = "boundaries", "ods"

    def create_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> Tuple[nn.Module, Config]:
        return dense_model(cfg, 1, weights)  # one logit

    def loss(self, outputs: Tensor, targets: Tensor, meta: DatasetMeta, class_weights: Optional[Tensor]) -> Tensor:
        return boundary_loss(outputs, targets, class_weights, meta.ignore_index)

    def evaluate(self, model: nn.Module, dataset: Dataset, cfg: Config, device: torch.device) -> Dict[str, Any]:
        return evaluate_boundaries(model, dataset, cfg["eval"]["thresholds"], cfg["eval"]["tolerance"], device)

    def summary(self, metrics: Dict[str, Any]) -> str:
        return f"val ODS {metrics['ods']:.4f}, OIS {metrics['ois']:.4f}, AP {metrics['ap']:.4f}"

    def table(self, result: Dict[str, Any], classes: Sequence[str]) -> str:
        return format_boundary_scores(result)

    def draw(self, result: Dict[str, Any], classes: Sequence[str]) -> Dict[str, Image.Image]:
        return {"pr_curve": draw_pr_curve([(result.get("model", "model"), result)])}


def dense_model(cfg: Config, num_classes: int, weights: Any) -> Tuple[nn.Module, Config]:
    """A dense-prediction model with ``num_classes`` outputs, ``model.down_ratio`` when set (DLA's), and the
    keyword arguments that rebuild it; a model that does not take them is named with what it refused."""
    model = cfg["model"]
    kwargs = {"num_classes": num_classes, **({"down_ratio": model["down_ratio"]} if model["down_ratio"] else {}), **model["kwargs"]}
    try:
        return create_model(model["name"], pretrained_backbone=weights, **kwargs), kwargs
    except TypeError as e:  # an argument the model does not have
        raise DLAError(f"model {model['name']} cannot be built with {kwargs} (model.down_ratio, model.kwargs): {e}") from e


@contextlib.contextmanager
def evaluated_at(model: nn.Module, output_stride: Optional[int]) -> Iterator[None]:
    """Run the block with the model at ``output_stride`` (DeepLabv3: trained at 16, evaluated at 8, Sec. 4.2),
    then restore its own; ``None`` leaves it as it is."""
    if output_stride is None:
        yield
        return
    if not hasattr(model, "set_output_stride"):
        raise DLAError(f"eval.output_stride: {type(model).__name__} cannot change its output stride (DeepLabv3 can)")
    trained = model.output_stride
    model.set_output_stride(output_stride)
    try:
        yield
    finally:
        model.set_output_stride(trained)


TASKS = {task.name: task for task in (SegmentationTask(), ClassificationTask(), BoundaryTask())}


def get_task(name: str) -> Any:
    """The task called ``name`` (a config's ``task``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise DLAError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
