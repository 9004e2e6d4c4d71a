"""Image classification (Sec. 5.1, 5.2): the training loss, evaluation of a dataset, top-k prediction, the score
table, and ``ClassificationTask``, the task's part of the engine.

Evaluation follows the paper (Sec. 5.1, 5.2): each image is resized and centre-cropped by the dataset's
transform, or cut into 10 crops (``TenCrop``: corners, centre and their mirrors) whose softmax
probabilities are averaged. Scores are top-1 and top-5 accuracy over images, the accuracy of each class
(recall) and their mean, which weighs rare classes as much as common ones, and the confusion matrix.
"""

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import Config, pair, required
from ..data.base import TaskDataset
from ..data.classification_transforms import classification_eval_transforms, classification_train_transforms
from ..data.meta import DatasetMeta
from ..distributed import is_main_process, shard
from ..errors import DLAError
from ..metrics.classification import AccuracyMeter
from ..metrics.segmentation import ConfusionMatrix, format_percent, segmentation_scores
from ..models import create_model
from .base import PREDICT_DEFAULTS, Criterion, Output, PredictOptions, Sample, Scores, Shown, Task, View
from .visualize import MAX_NAME, draw_confusion_matrix, draw_grid


def classification_loss(logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """Cross-entropy of ``N x C`` logits against ``N`` class indices, optionally weighted per class."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise DLAError(f"expected logits N x C and target N, got {tuple(logits.shape)} and {tuple(target.shape)}")
    return F.cross_entropy(logits, target.long(), weight=class_weights)


def class_probabilities(model: nn.Module, images: Tensor) -> Tensor:
    """Softmax probabilities ``N x C`` of ``N x 3 x H x W`` images, or of ``N x K x 3 x H x W`` crops (averaged)."""
    if images.dim() == 4:
        return model(images).float().softmax(dim=1)
    n, k = images.shape[:2]
    return model(images.flatten(0, 1)).float().softmax(dim=1).view(n, k, -1).mean(dim=1)


def topk_keys(num_classes: int) -> tuple[int, ...]:
    """The k of the top-k accuracies reported: 1 and 5, or only 1 with fewer than 5 classes."""
    return (1, 5) if num_classes >= 5 else (1,)


@torch.no_grad()
def evaluate_classification(
    model: nn.Module,
    dataset: TaskDataset,
    device: torch.device | None = None,
    batch_size: int = 32,
    workers: int = 0,
) -> dict[str, Any]:
    """Score ``model`` on every sample of ``dataset`` (``(image tensor, class index)`` pairs).

    Images are ``3 x H x W`` (one crop) or ``K x 3 x H x W`` (several crops, probabilities averaged). The
    model's train/eval mode is restored afterwards. Under several processes each scores its share of the
    samples and the counts are summed, so every process returns the scores of the whole dataset.

    Returns:
        ``top1`` (and ``top5`` with 5 classes or more), ``accuracy`` (per class, NaN for classes without
        samples), ``mean_accuracy`` and ``confusion`` (rows: true class, columns: predicted), fractions in [0, 1].
    """
    num_classes = dataset.meta.num_classes
    device = device if device is not None else next(model.parameters()).device
    topk, matrix = AccuracyMeter(topk_keys(num_classes)), ConfusionMatrix(num_classes, ignore_index=-1)
    # its own generator: loading must not draw from the global one, which training's resume relies on
    loader = DataLoader(
        shard(dataset), batch_size=batch_size, num_workers=workers, generator=torch.Generator(), pin_memory=device.type == "cuda"
    )
    was_training = model.training
    model.eval()
    for images, targets in tqdm(loader, desc="evaluating", leave=False, dynamic_ncols=True, disable=not is_main_process()):
        probabilities, targets = class_probabilities(model, images.to(device)), targets.to(device)
        if probabilities.shape[1] != num_classes:
            raise DLAError(f"the model predicts {probabilities.shape[1]} classes, the dataset has {num_classes}")
        topk.update(probabilities, targets)
        matrix.update(probabilities.argmax(dim=1), targets)
    model.train(was_training)
    topk.all_reduce()
    matrix.all_reduce()
    scores = segmentation_scores(matrix.matrix)  # the per-class accuracies of the confusion matrix
    return {**topk.compute(), **{key: scores[key] for key in ("accuracy", "mean_accuracy", "confusion")}}


def ranking(probabilities: Tensor, classes: Sequence[str], k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one image's ``C`` probabilities, best first, as ``{"class": name, "index": i,
    "probability": p}``."""
    values, indices = probabilities.topk(min(k, len(classes)))
    return [
        {"class": classes[i], "index": i, "probability": float(v)} for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def top_classes(probabilities: Tensor, classes: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ``(class name, probability)`` of one image's ``C`` probabilities, best first."""
    return [(entry["class"], entry["probability"]) for entry in ranking(probabilities, classes, k)]


def format_scores(result: dict[str, Any], classes: Sequence[str]) -> str:
    """A plain-text table: each class's accuracy, then top-1 (top-5) and mean class accuracy, in percent."""
    width = max(len("mean class acc"), *(len(name) for name in classes))
    header = f"{'class':<{width}}  {'acc %':>7}"
    rows = [f"{name:<{width}}  {format_percent(acc):>7}" for name, acc in zip(classes, result["accuracy"], strict=True)]
    totals = [
        f"{label:<{width}}  {format_percent(result[key]):>7}"
        for label, key in (("top-1", "top1"), ("top-5", "top5"), ("mean class acc", "mean_accuracy"))
        if key in result
    ]
    rule = "-" * len(header)
    return "\n".join([header, rule, *rows, rule, *totals])


def _controls(gr: ModuleType, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ten_crop": gr.Checkbox(
            value=bool(settings["ten_crop"]), label="Ten crops", info="average the corners, centre and mirrors"
        )
    }


def _outputs(gr: ModuleType) -> list[Any]:
    return [gr.Label(num_top_classes=5, label="Most probable classes", elem_id="top-k")]


def _show(prediction: Shown, meta: DatasetMeta) -> list[Any]:
    return [{entry["class"]: entry["probability"] for entry in prediction.summary["top_k"]}]


@runtime_checkable
class Classifier(Protocol):
    """A classification network whose head can be told from the rest (timm's ``get_classifier``)."""

    def get_classifier(self) -> nn.Module: ...


class ClassificationTask(Task):
    """Image classes (Sec. 5.1, 5.2): the DLA classifiers (``dla34``, ``dla46_c``, ...), top-1 accuracy."""

    name, score = "classification", "top1"
    # Sec. 5.1: random-resized crops of 224 (area 8-100%, aspect 3/4-4/3); test on the centre 224 of 256
    defaults = {
        "model.name": "dla34",
        "model.sync_bn": False,  # ImageNet batches are large enough per device; the papers synchronise dense tasks
        "data.crop_size": [224, 224],
        "data.scale": [0.08, 1.0],
        "data.ratio": [0.75, 4 / 3],
        "data.resize": [256],
    }
    keys = ("data.ratio", "data.lighting", "data.resize", "eval.ten_crop")
    large_images = "resize"  # every image is resized and cropped to the model's input by the eval transform

    def check(self, cfg: Config) -> list[str]:
        data, problems = cfg.data, []
        scale, ratio = required(data.scale, "data.scale"), required(data.ratio, "data.ratio")
        resize = required(data.resize, "data.resize")
        if scale[1] > 1:
            problems.append(f"data.scale is the crop's fraction of the image area in classification: at most 1, got {scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            problems.append(f"data.ratio must be [low, high] with 0 < low <= high, got {ratio}")
        if len(resize) not in (1, 2) or min(resize) < 1:
            problems.append(f"data.resize must be [shorter side] or [height, width], got {resize}")
        if data.lighting < 0:
            problems.append("data.lighting must be 0 (off) or positive")
        if isinstance(cfg.optim.class_weights, str):
            problems.append(
                f"optim.class_weights: {cfg.optim.class_weights} weighs classes by their pixels in label maps (segmentation, "
                "boundaries); give classification one weight per class as a list"
            )
        return problems

    def train_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        """Random-resized crops with the paper's colour noise. An exact ``[height, width]`` resize (the
        fine-grained sets' 512x512) comes first, so that training sees objects with the aspect of the test
        images; a shorter-side resize does not, as it would only blur the random crops."""
        data, resize = cfg.data, required(cfg.data.resize, "data.resize")
        squash = pair(resize, "data.resize") if len(resize) == 2 else None
        return classification_train_transforms(
            meta,
            pair(data.crop_size, "data.crop_size"),
            pair(data.scale, "data.scale"),
            pair(data.ratio, "data.ratio"),
            data.flip,
            data.color_jitter,
            data.lighting,
            resize=squash,
        )

    def eval_transform(self, cfg: Config, meta: DatasetMeta) -> Callable:
        resize = required(cfg.data.resize, "data.resize")
        size = resize[0] if len(resize) == 1 else pair(resize, "data.resize")
        return classification_eval_transforms(meta, size, pair(cfg.data.crop_size, "data.crop_size"), cfg.eval.ten_crop)

    def build_model(self, cfg: Config, meta: DatasetMeta, weights: Any) -> tuple[nn.Module, dict[str, Any]]:
        kwargs = {"num_classes": meta.num_classes, **cfg.model.kwargs}
        # weights of another class count (ImageNet's 1000) load all but the classifier, which starts afresh
        return create_model(required(cfg.model.name, "model.name"), pretrained=weights or False, **kwargs), kwargs

    def backbone_parameters(self, model: nn.Module) -> Iterator[nn.Parameter]:
        """All but the classifier (``get_classifier()``)."""
        if not isinstance(model, Classifier):
            raise DLAError(f"{type(model).__name__} has no get_classifier() to tell its head from its backbone")
        head = {id(p) for p in model.get_classifier().parameters()}
        return (p for p in model.parameters() if id(p) not in head)

    def criterion(self, cfg: Config, meta: DatasetMeta, class_weights: Tensor | None) -> Criterion:
        return partial(classification_loss, class_weights=class_weights)

    def evaluate(self, model: nn.Module, dataset: TaskDataset, cfg: Config, device: torch.device) -> Scores:
        return evaluate_classification(model, dataset, device, cfg.data.batch_size, cfg.data.workers)

    def predict(
        self,
        model: nn.Module,
        images: Sequence[Image.Image],
        cfg: Config,
        meta: DatasetMeta,
        device: torch.device,
        options: PredictOptions = PREDICT_DEFAULTS,
    ) -> list[Output]:
        """Each image's ``C`` class ``probabilities`` through the run's eval transform (one crop, or ten averaged);
        summary: its ``options.top_k`` classes, best first (``ranking``)."""
        transform = self.eval_transform(cfg, meta)
        batch = torch.stack([transform(image) for image in images]).to(device)
        return [
            Output({"probabilities": probs.cpu().numpy()}, {"top_k": ranking(probs, meta.classes, options.top_k)})
            for probs in class_probabilities(model, batch)
        ]

    def write_run(self, out: Path, summaries: Mapping[str, Mapping[str, Any]]) -> list[Path]:
        """``predictions.json``: each image's top classes as ``[name, probability]`` pairs, best first, keyed by its
        path as the user named it (distinct for distinct files)."""
        ranked = {
            path: [[entry["class"], entry["probability"]] for entry in summary["top_k"]] for path, summary in summaries.items()
        }
        out.mkdir(parents=True, exist_ok=True)
        (out / "predictions.json").write_text(json.dumps(ranked, indent=2) + "\n")
        return [out / "predictions.json"]

    def summary(self, scores: Scores) -> str:
        return f"val top-1 {scores['top1']:.4f}"

    def table(self, result: Scores, classes: Sequence[str]) -> str:
        return format_scores(result, classes)

    def draw(self, result: Scores, classes: Sequence[str]) -> dict[str, Image.Image]:
        return {"confusion": draw_confusion_matrix(result["confusion"], classes)}

    def view(self) -> View:
        """Ten crops or one to choose; the five most probable classes."""
        return View(_controls, _outputs, _show)

    def draw_samples(self, samples: Sequence[Sample], meta: DatasetMeta) -> Image.Image:
        """Each image titled with its class name."""
        return draw_grid([(image, f"{title} {meta.classes[int(target)][:MAX_NAME]}") for title, image, target in samples])
