"""Image classification: the training loss, evaluation of a dataset, top-k prediction and the score table.

Evaluation follows the paper (Sec. 5.1, 5.2): each image is resized and centre-cropped by the dataset's
transform, or cut into 10 crops (``TenCrop``: corners, centre and their mirrors) whose softmax
probabilities are averaged. Scores are top-1 and top-5 accuracy over images, the accuracy of each class
(recall) and their mean, which weighs rare classes as much as common ones, and the confusion matrix.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import DLAError
from ..metrics.classification import AccuracyMeter
from ..metrics.segmentation import ConfusionMatrix, format_percent, segmentation_scores


def classification_loss(logits: Tensor, target: Tensor, class_weights: Optional[Tensor] = None) -> Tensor:
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


def topk_keys(num_classes: int) -> Tuple[int, ...]:
    """The k of the top-k accuracies reported: 1 and 5, or only 1 with fewer than 5 classes."""
    return (1, 5) if num_classes >= 5 else (1,)


@torch.no_grad()
def evaluate_classification(
    model: nn.Module,
    dataset: Dataset,
    device: Optional[torch.device] = None,
    batch_size: int = 32,
    workers: int = 0,
) -> Dict[str, Any]:
    """Score ``model`` on every sample of ``dataset`` (``(image tensor, class index)`` pairs).

    Images are ``3 x H x W`` (one crop) or ``K x 3 x H x W`` (several crops, probabilities averaged). The
    model's train/eval mode is restored afterwards.

    Returns:
        ``top1`` (and ``top5`` with 5 classes or more), ``accuracy`` (per class, NaN for classes without
        samples), ``mean_accuracy`` and ``confusion`` (rows: true class, columns: predicted), fractions in [0, 1].
    """
    num_classes = dataset.meta.num_classes
    device = device if device is not None else next(model.parameters()).device
    topk, matrix = AccuracyMeter(topk_keys(num_classes)), ConfusionMatrix(num_classes, ignore_index=-1)
    # its own generator: loading must not draw from the global one, which training's resume relies on
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, generator=torch.Generator(),
                        pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    for images, targets in tqdm(loader, desc="evaluating", leave=False, dynamic_ncols=True):
        probabilities, targets = class_probabilities(model, images.to(device)), targets.to(device)
        if probabilities.shape[1] != num_classes:
            raise DLAError(f"the model predicts {probabilities.shape[1]} classes, the dataset has {num_classes}")
        topk.update(probabilities, targets)
        matrix.update(probabilities.argmax(dim=1), targets)
    model.train(was_training)
    scores = segmentation_scores(matrix.matrix)  # the per-class accuracies of the confusion matrix
    return {**topk.compute(), **{key: scores[key] for key in ("accuracy", "mean_accuracy", "confusion")}}


def top_classes(probabilities: Tensor, classes: Sequence[str], k: int = 5) -> List[Tuple[str, float]]:
    """The ``k`` most probable ``(class name, probability)`` of one image's ``C`` probabilities, best first."""
    values, indices = probabilities.topk(min(k, len(classes)))
    return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def format_scores(result: Dict[str, Any], classes: Sequence[str]) -> str:
    """A plain-text table: each class's accuracy, then top-1 (top-5) and mean class accuracy, in percent."""
    width = max(len("mean class acc"), *(len(name) for name in classes))
    header = f"{'class':<{width}}  {'acc %':>7}"
    rows = [f"{name:<{width}}  {format_percent(acc):>7}" for name, acc in zip(classes, result["accuracy"])]
    totals = [f"{label:<{width}}  {format_percent(result[key]):>7}"
              for label, key in (("top-1", "top1"), ("top-5", "top5"), ("mean class acc", "mean_accuracy"))
              if key in result]
    rule = "-" * len(header)
    return "\n".join([header, rule, *rows, rule, *totals])
