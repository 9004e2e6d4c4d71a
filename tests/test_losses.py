"""The losses (``dla.losses``): hand-computed values on tiny tensors, Dice and Lovász against their papers' formulas
computed here independently, all-ignored batches, gradients by ``gradcheck`` in float64; the class weights from
label counts; ``optim.loss`` and ``optim.class_weights`` in the config; training with a loss that is not the default."""

import itertools
import json
import math
from typing import Literal, get_args, get_origin, get_type_hints

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.autograd import gradcheck

from dla.config import OptimConfig
from dla.data import BoundaryFolder, FolderDataset, SyntheticShapes, build_dataset, count_labels
from dla.data.boundaries import boundary_meta
from dla.engine import class_weights as engine_class_weights
from dla.engine.checkpoint import load_checkpoint
from dla.engine.config_loader import load_config
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.losses import (
    BINARY_LOSSES,
    CLASS_WEIGHTINGS,
    SOFTMAX_LOSSES,
    binary_cross_entropy,
    binary_dice_loss,
    binary_focal_loss,
    cross_entropy,
    dice_loss,
    focal_loss,
    inverse_log_weights,
    lovasz_extension,
    lovasz_hinge,
    lovasz_softmax,
    median_frequency_weights,
    ohem_cross_entropy,
)
from dla.tasks import TASKS
from engine_runs import Squares, quick_config, squares, write_boundary_folder

ALL_LOSSES = [*SOFTMAX_LOSSES.values(), *BINARY_LOSSES.values()]


def softmax_logits(probabilities) -> torch.Tensor:
    """``N x C x H x W`` float64 logits whose softmax is ``probabilities`` (given ``N x H x W x C``)."""
    return torch.tensor(probabilities, dtype=torch.float64).log().permute(0, 3, 1, 2).contiguous().requires_grad_()


def two_class_row(p_first, labels):
    """One image, one row: pixel ``i`` has probability ``p_first[i]`` of class 0 (``1 - p`` of class 1)."""
    return softmax_logits([[[[p, 1 - p] for p in p_first]]]), torch.tensor([[labels]])


def binary_row(logits, labels):
    return torch.tensor([[[logits]]], dtype=torch.float64, requires_grad=True), torch.tensor([[labels]])


# --- the default is today's loss, exactly ------------------------------------------------------------------------


def loss_before(logits, target, ignore_index=255, class_weights=None):
    """``segmentation_loss`` as it was before ``dla.losses`` (commit ded5cd9), copied here: the default must equal it."""
    weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=ignore_index)


def boundary_loss_before(logits, target, class_weights=None, ignore_index=255):
    """``boundary_loss`` as it was before ``dla.losses`` (commit ded5cd9), copied here."""
    valid = target != ignore_index
    positive = (target == 1) & valid
    weights = (
        torch.ones_like(logits[:, 0], dtype=torch.float32)
        if class_weights is None
        else torch.where(positive, class_weights[1], class_weights[0]).float()
    )
    losses = F.binary_cross_entropy_with_logits(logits[:, 0].float(), positive.float(), reduction="none")
    return (losses * weights * valid).sum() / valid.sum().clamp_min(1)


def value_and_gradient(loss, logits, target):
    logits = logits.clone().requires_grad_()
    value = loss(logits, target)
    value.backward()
    return value.detach(), logits.grad


@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0]])
def test_the_default_segmentation_loss_is_the_old_one_bit_for_bit(weights):
    torch.manual_seed(0)
    weights = None if weights is None else torch.tensor(weights)
    criterion = TASKS["segmentation"].criterion(load_config(None), Squares.meta, weights)
    for _ in range(5):
        logits, target = torch.randn(2, 3, 9, 7) * 3, torch.randint(0, 3, (2, 9, 7))
        target[0, :4] = 255
        new = value_and_gradient(criterion, logits, target)
        old = value_and_gradient(lambda x, t: loss_before(x, t, 255, weights), logits, target)
        assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])


def test_the_default_boundary_loss_is_the_old_one_bit_for_bit():
    torch.manual_seed(0)
    cfg, weights = load_config(None, ["task=boundaries"]), torch.tensor([1.0, 10.0])
    criterion = TASKS["boundaries"].criterion(cfg, boundary_meta("b"), weights)
    logits, target = torch.randn(2, 1, 9, 7) * 3, torch.randint(0, 2, (2, 9, 7))
    target[1, 2:5] = 255
    new = value_and_gradient(criterion, logits, target)
    old = value_and_gradient(lambda x, t: boundary_loss_before(x, t, weights), logits, target)
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])


# --- hand-computed values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresh", "min_kept", "labels", "kept"),
    [
        (0.7, 1, [0, 0, 0, 0], [0.6, 0.2, 0.5]),  # below the threshold
        (0.3, 2, [0, 0, 0, 0], [0.2, 0.5]),  # one below it, so the two hardest
        (0.7, 10, [0, 0, 0, 0], [0.9, 0.6, 0.2, 0.5]),  # fewer labelled pixels than min_kept: all of them
        (0.7, 1, [0, 0, 255, 0], [0.6, 0.5]),  # the ignored pixel is never kept
    ],
)
def test_ohem_keeps_the_pixels_below_the_threshold_and_at_least_min_kept(thresh, min_kept, labels, kept):
    logits, target = two_class_row([0.9, 0.6, 0.2, 0.5], labels)
    loss = ohem_cross_entropy(logits, target, thresh=thresh, min_kept=min_kept)
    assert loss.item() == pytest.approx(np.mean([-math.log(p) for p in kept]))


def test_ohem_min_kept_is_per_image_and_class_weights_weigh_the_kept():
    logits, target = two_class_row([0.9, 0.6, 0.2, 0.5], [0, 0, 0, 0])
    batch, targets = torch.cat([logits, logits]), torch.cat([target, target])
    # two images: 2 x 2 pixels kept (0.2, 0.5 of each), as one image keeps its own 2
    assert ohem_cross_entropy(batch, targets, thresh=0.3, min_kept=2).item() == pytest.approx(
        -(math.log(0.2) + math.log(0.5)) / 2
    )
    logits, target = two_class_row([0.9, 0.6, 0.2, 0.5], [0, 0, 0, 1])  # pixel 3: class 1 with p = 0.5
    weighted = ohem_cross_entropy(logits, target, class_weights=[1.0, 3.0], thresh=0.7, min_kept=1)
    assert weighted.item() == pytest.approx(-(math.log(0.6) + math.log(0.2) + 3 * math.log(0.5)) / 5)


def test_focal_loss_by_hand_and_gamma_zero_is_cross_entropy():
    logits, target = two_class_row([0.9, 0.5], [0, 1])  # p_t = 0.9 and 0.5
    a, b = -(0.1**2) * math.log(0.9), -(0.5**2) * math.log(0.5)
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx((a + b) / 2)
    assert focal_loss(logits, target, class_weights=[1.0, 3.0], gamma=2.0).item() == pytest.approx((a + 3 * b) / 4)
    logits, target = torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randint(0, 4, (2, 5, 5))
    target[0, 0] = 255
    weights = torch.tensor([1.0, 2.0, 0.5, 3.0])
    assert torch.allclose(focal_loss(logits, target, 255, weights, gamma=0.0), cross_entropy(logits, target, 255, weights))


def test_binary_focal_loss_by_hand_and_gamma_zero_is_the_binary_cross_entropy():
    logits, target = binary_row([0.0, math.log(3)], [1, 0])  # p_t = 0.5 (a boundary) and 1 - 3/4 (background)
    a, b = -(0.5**2) * math.log(0.5), -(0.75**2) * math.log(0.25)
    assert binary_focal_loss(logits, target, class_weights=[1.0, 10.0]).item() == pytest.approx((10 * a + b) / 2)
    logits, target = torch.randn(2, 1, 5, 5, dtype=torch.float64), torch.randint(0, 2, (2, 5, 5))
    target[1, 1] = 255
    weights = torch.tensor([1.0, 10.0])
    assert torch.allclose(
        binary_focal_loss(logits, target, 255, weights, gamma=0.0), binary_cross_entropy(logits, target, 255, weights)
    )


def test_dice_by_hand_leaves_out_the_absent_class():
    logits, target = two_class_row([0.8, 0.6], [0, 0])  # class 1 absent
    assert dice_loss(logits, target).item() == pytest.approx(1 - 2 * (0.8 + 0.6) / ((0.64 + 0.36) + 2))
    logits, target = binary_row([0.0, 0.0, 0.0, 5.0], [1, 0, 1, 255])  # p = 1/2 on the three labelled pixels
    assert binary_dice_loss(logits, target).item() == pytest.approx(1 - 2 * 1.0 / (3 * 0.25 + 2))


def test_lovasz_by_hand():
    # class 0: errors (0.3, 0.4), 0.4 first: 0.4 x 1/2 + 0.3 x (1 - 1/2); class 1: errors (0.3, 0.4): 0.4 x 1 + 0
    logits, target = two_class_row([0.7, 0.4], [0, 1])
    assert lovasz_softmax(logits, target).item() == pytest.approx((0.35 + 0.4) / 2)
    logits, target = binary_row([0.0, 0.0], [1, 0])  # hinge errors (1, 1): Delta of both = 2 / 2
    assert lovasz_hinge(logits, target).item() == pytest.approx(1.0)


# --- Dice and Lovász against their papers -----------------------------------------------------------------------


def dice_by_definition(probabilities: np.ndarray, labels: np.ndarray, weights=None) -> float:
    """V-Net's Eq. 1 per class over the labelled pixels (``probabilities`` M x C), ``1 -`` their mean over the classes
    present, weighted by ``weights``."""
    present = [c for c in range(probabilities.shape[1]) if (labels == c).any()]
    dice = []
    for c in present:
        p, g = probabilities[:, c], (labels == c).astype(float)
        dice.append(2 * (p * g).sum() / ((p**2).sum() + (g**2).sum()))
    w = np.ones(len(present)) if weights is None else np.asarray(weights)[present]
    return 1 - float((w * np.array(dice)).sum() / w.sum())


def labelled(logits: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The softmax probabilities (M x C) and labels of the pixels that are not ignored, as NumPy arrays."""
    keep = (target != 255).numpy()
    return logits.detach().softmax(1).permute(0, 2, 3, 1).numpy()[keep], target.numpy()[keep]


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5, 4.0]])
def test_dice_is_the_papers_formula(weights):
    torch.manual_seed(1)
    logits, target = torch.randn(2, 4, 5, 6, dtype=torch.float64), torch.randint(0, 3, (2, 5, 6))  # class 3 absent
    target[1, :2] = 255
    expected = dice_by_definition(*labelled(logits, target), weights)
    assert dice_loss(logits, target, 255, weights).item() == pytest.approx(expected)


def jaccard_loss(mispredicted: set, truth: set) -> float:
    """The Jaccard loss of a class as a set function of its mispredicted pixels (Berman et al. Eq. 2)."""
    return len(mispredicted) / len(truth | mispredicted) if mispredicted else 0.0


def lovasz_by_thresholds(errors, truth: set) -> float:
    """The Lovász extension at non-negative ``errors`` as the integral over ``t > 0`` of the Jaccard loss of the
    thresholded set ``{i: m_i >= t}``, exact on the intervals between consecutive error values."""
    levels = sorted({float(m) for m in errors} | {0.0}, reverse=True)
    return sum(
        (high - low) * jaccard_loss({i for i, m in enumerate(errors) if m >= high}, truth)
        for high, low in itertools.pairwise(levels)
    )


def test_the_lovasz_extension_is_the_jaccard_loss_on_sets_and_its_threshold_integral():
    truth = {0, 3}  # a 2 x 2 image, flattened
    indicator = torch.tensor([1.0 if i in truth else 0.0 for i in range(4)])
    for size in range(5):
        for subset in itertools.combinations(range(4), size):  # at the corners of the cube: Delta itself
            errors = torch.tensor([1.0 if i in subset else 0.0 for i in range(4)])
            assert lovasz_extension(errors, indicator).item() == pytest.approx(jaccard_loss(set(subset), truth))
    for errors in torch.rand(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)):
        assert lovasz_extension(errors, indicator).item() == pytest.approx(lovasz_by_thresholds(errors.tolist(), truth))


def lovasz_softmax_by_thresholds(logits: torch.Tensor, target: torch.Tensor, weights=None) -> float:
    """Berman et al. Eq. 12 from the threshold integral: per class present, errors ``|[y = c] - p_c|``."""
    probabilities, labels = labelled(logits, target)
    present = [c for c in range(probabilities.shape[1]) if (labels == c).any()]
    values = [
        lovasz_by_thresholds(np.abs((labels == c) - probabilities[:, c]), set(np.flatnonzero(labels == c).tolist()))
        for c in present
    ]
    w = np.ones(len(present)) if weights is None else np.asarray(weights)[present]
    return float((w * np.array(values)).sum() / w.sum())


@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.5]])
def test_lovasz_softmax_is_the_papers_loss_for_the_batch_and_per_image(weights):
    torch.manual_seed(3)
    logits, target = torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.tensor([[[0, 1], [1, 1]], [[2, 255], [0, 0]]])
    assert lovasz_softmax(logits, target, 255, weights).item() == pytest.approx(
        lovasz_softmax_by_thresholds(logits, target, weights)
    )
    images = [lovasz_softmax_by_thresholds(logits[i : i + 1], target[i : i + 1], weights) for i in range(2)]
    assert lovasz_softmax(logits, target, 255, weights, per_image=True).item() == pytest.approx(np.mean(images))


def test_lovasz_hinge_is_the_extension_at_the_rectified_hinge_errors():
    torch.manual_seed(4)
    logits, target = torch.randn(1, 1, 3, 3, dtype=torch.float64) * 2, torch.tensor([[[1, 0, 0], [1, 1, 255], [0, 0, 1]]])
    keep = (target != 255).flatten()
    scores, labels = logits.flatten()[keep], target.flatten()[keep]
    errors = torch.relu(1 - scores * (2 * labels - 1)).tolist()
    truth = set(torch.nonzero(labels == 1).flatten().tolist())
    assert lovasz_hinge(logits, target).item() == pytest.approx(lovasz_by_thresholds(errors, truth))


# --- ignored pixels, gradients, precision ----------------------------------------------------------------------


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_an_all_ignored_batch_gives_zero_and_zero_gradients(loss):
    channels = 1 if loss in BINARY_LOSSES.values() else 3
    logits = torch.randn(2, channels, 4, 4, requires_grad=True)
    value = loss(logits, torch.full((2, 4, 4), 255))
    value.backward()
    assert value.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_a_binary_batch_without_foreground_gives_a_zero_dice_loss_and_the_lovasz_hinge_still_penalises():
    logits = torch.randn(1, 1, 4, 4, requires_grad=True)
    assert binary_dice_loss(logits, torch.zeros(1, 4, 4, dtype=torch.long)).item() == 0.0  # Dice: no class present
    assert lovasz_hinge(logits, torch.zeros(1, 4, 4, dtype=torch.long)).item() > 0  # false positives still cost


GRADCHECKED = [
    (cross_entropy, {}),
    (ohem_cross_entropy, {"thresh": 0.7, "min_kept": 4}),
    (focal_loss, {"gamma": 2.0}),
    (focal_loss, {"gamma": 0.5}),
    (dice_loss, {}),
    (lovasz_softmax, {}),
    (lovasz_softmax, {"per_image": True}),
    (binary_cross_entropy, {}),
    (binary_focal_loss, {"gamma": 2.0}),
    (binary_dice_loss, {}),
    (lovasz_hinge, {}),
    (lovasz_hinge, {"per_image": True}),
]


@pytest.mark.parametrize(("loss", "options"), GRADCHECKED, ids=lambda x: getattr(x, "__name__", str(x)))
def test_gradients_by_gradcheck_in_float64(loss, options):
    binary = loss in BINARY_LOSSES.values()
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 1 if binary else 3, 3, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.randint(0, 2 if binary else 3, (2, 3, 3), generator=generator)
    target[0, 0, 0] = 255
    weights = torch.tensor([1.0, 10.0] if binary else [0.5, 2.0, 1.0], dtype=torch.float64)
    assert gradcheck(lambda x: loss(x, target, 255, weights, **options), (logits,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_half_precision_logits_give_a_float32_loss_near_the_float32_one(loss):
    channels = 1 if loss in BINARY_LOSSES.values() else 3
    logits, target = torch.randn(2, channels, 8, 8), torch.randint(0, 2, (2, 8, 8))
    half = loss(logits.bfloat16(), target)
    assert torch.isfinite(half) and half.item() == pytest.approx(loss(logits.bfloat16().float(), target).item(), rel=1e-2)


# --- class weights ----------------------------------------------------------------------------------------------


def test_class_weight_formulas_on_hand_made_counts():
    pixels, image_pixels = np.array([60.0, 30.0, 10.0, 0.0]), np.array([100.0, 60.0, 20.0, 0.0])
    # frequencies 0.6, 0.5, 0.5 (of the images holding the class): median 0.5; the absent class weighs 0
    assert np.allclose(median_frequency_weights(pixels, image_pixels), [0.5 / 0.6, 1.0, 1.0, 0.0])
    expected = [1 / math.log(1.02 + 0.6), 1 / math.log(1.02 + 0.3), 1 / math.log(1.02 + 0.1), 0.0]
    assert np.allclose(inverse_log_weights(pixels, image_pixels), expected)
    with pytest.raises(DLAError, match="no labelled pixel"):
        median_frequency_weights(np.zeros(3), np.zeros(3))


def test_the_schema_names_the_weightings_there_are():
    options = get_args(get_type_hints(OptimConfig)["class_weights"])
    names = next(get_args(option) for option in options if get_origin(option) is Literal)
    assert set(names) == set(CLASS_WEIGHTINGS)


def write_folder(root, labels: dict[str, np.ndarray]) -> None:
    for folder in ("images/train", "masks/train"):
        (root / folder).mkdir(parents=True)
    for stem, label in labels.items():
        Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(root / "images" / "train" / f"{stem}.png")
        Image.fromarray(label.astype(np.uint8)).save(root / "masks" / "train" / f"{stem}.png")


def test_count_labels_reads_the_label_files(tmp_path):
    a = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [255, 255, 0, 0], [0, 0, 0, 0]])  # 10 x class 0, 4 x class 1, 2 ignored
    b = np.array([[2, 2, 2, 2], [2, 2, 2, 2], [0, 0, 0, 0], [0, 0, 0, 0]])  # 8 x class 0, 8 x class 2
    write_folder(tmp_path, {"a": a, "b": b})
    counts = count_labels(FolderDataset(tmp_path, "train", classes=["w", "x", "y", "z"]))
    assert counts.pixels.tolist() == [18, 4, 8, 0] and counts.image_pixels.tolist() == [30, 14, 16, 0] and counts.images == 2
    with pytest.raises(DLAError, match="give optim.class_weights as a list"):
        count_labels(Squares())


def test_boundary_and_synthetic_labels_read_alone_are_those_read_with_their_images(tmp_path):
    boundaries = BoundaryFolder(write_boundary_folder(tmp_path, {"train": 2}, (24, 32)), "train")
    shapes = SyntheticShapes(split="train", length=2, height=32, width=32)
    for dataset in (boundaries, shapes):
        assert all(np.array_equal(dataset.read_label(i), dataset.read(i)[1]) for i in range(2))
    outlines = sum(int((np.asarray(Image.open(path)) > 0).sum()) for _, path in boundaries.files)
    assert count_labels(boundaries).pixels.tolist() == [2 * 24 * 32 - outlines, outlines]


# --- the config ---------------------------------------------------------------------------------------------------


def test_each_task_has_its_default_loss_and_a_combination_is_their_weighted_sum():
    assert load_config(None).optim.loss == [{"name": "ce", "weight": 1.0}]
    assert load_config(None, ["task=boundaries"]).optim.loss == [{"name": "bce", "weight": 1.0}]
    assert load_config(None, ["task=classification"]).optim.loss is None
    cfg = load_config(None, ["optim.loss=[{name: ce}, {name: lovasz, weight: 0.5, per_image: true}, {name: focal, gamma: 1}]"])
    logits, target = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    expected = (
        cross_entropy(logits, target)
        + 0.5 * lovasz_softmax(logits, target, per_image=True)
        + focal_loss(logits, target, gamma=1.0)
    )
    assert torch.allclose(TASKS["segmentation"].criterion(cfg, Squares.meta, None)(logits, target), expected)


def test_a_term_can_leave_the_class_weights_out():
    cfg = load_config(None, ["optim.loss=[{name: ce}, {name: lovasz, class_weights: false}]"])
    logits, target, weights = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5)), torch.tensor([1.0, 4.0, 0.5])
    expected = cross_entropy(logits, target, class_weights=weights) + lovasz_softmax(logits, target)
    criterion = TASKS["segmentation"].criterion(cfg, Squares.meta, weights)
    assert torch.allclose(criterion(logits, target), expected)
    all_weighted = cross_entropy(logits, target, class_weights=weights) + lovasz_softmax(logits, target, class_weights=weights)
    assert not torch.allclose(expected, all_weighted)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.loss=[{name: lovasz, class_weights: 0}]"], r"optim.loss\[0\].class_weights must be true .* or false"),
        (
            ["optim.loss=[{name: dcie}]"],
            r"optim.loss\[0\].name: unknown loss 'dcie' for this task; its losses are ce, ohem, focal, dice, lovasz; .*'dice'",
        ),
        (["optim.loss=[{name: ce}, {name: dice, weight: -1}]"], r"optim.loss\[1\].weight must be a positive number, got -1"),
        (["optim.loss=[{name: dice, weight: 0}]"], r"optim.loss\[0\].weight must be a positive number"),
        (["optim.loss=[{name: dice, weight: true}]"], r"optim.loss\[0\].weight must be a positive number"),
        (
            ["optim.loss=[{name: lovasz, gamma: 2}]"],
            r"optim.loss\[0\].gamma: lovasz has no option 'gamma' \(gamma is an option of focal\); its options are per_image",
        ),
        (
            ["optim.loss=[{name: ce, thresh: 0.7}]"],
            r"ce has no option 'thresh' \(thresh is an option of ohem\); it takes no options",
        ),
        (["optim.loss=[{name: ohem, thresh: 1.5}]"], r"optim.loss\[0\].thresh must be a number in \(0, 1\], got 1.5"),
        (["optim.loss=[{name: ohem, min_kept: 1.5}]"], r"optim.loss\[0\].min_kept must be an integer at least 0, got 1.5"),
        (["optim.loss=[{name: focal, gamma: -1}]"], r"gamma must be a number at least 0, got -1"),
        (["optim.loss=[{name: lovasz, per_image: 1}]"], r"per_image must be true or false, got 1"),
        (["optim.loss=[]"], r"optim.loss must list one loss at least"),
        (["optim.loss=[ce]"], r"optim.loss must be a list of mappings or null, got \['ce'\]"),
        (
            ["optim.loss=[{weight: 1}]"],
            r"optim.loss\[0\] must be a mapping \{name: <loss>, weight: <number>, options\} \(losses: ce, ohem",
        ),
        (
            ["task=boundaries", "optim.loss=[{name: ce}]"],
            r"unknown loss 'ce' for this task; its losses are bce, focal, dice, lovasz",
        ),
        (["task=boundaries", "optim.loss=[{name: ohem}]"], r"unknown loss 'ohem'"),
        (["task=classification", "optim.loss=[{name: ce}]"], r"optim.loss does not apply to task: classification"),
        (["task=classification", "optim.class_weights=median_freq"], r"optim.class_weights: median_freq weighs classes"),
        (["optim.class_weights=median"], r"optim.class_weights must be a list of numbers or one of 'median_freq', 'inverse_log'"),
    ],
)
def test_bad_loss_settings_are_refused_when_the_config_loads(overrides, message):
    with pytest.raises(DLAError, match=message):
        load_config(None, overrides)


# --- training ---------------------------------------------------------------------------------------------------


def logged_losses(out_dir) -> list[float]:
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_a_combination_of_other_losses_trains(tmp_path):
    loss = "optim.loss=[{name: focal}, {name: dice, weight: 0.5}, {name: lovasz, weight: 0.5}]"
    cfg = quick_config(tmp_path, "model.name=engine_train_tiny", "data.batch_size=2", "optim.epochs=3", "optim.lr=0.1", loss)
    train(cfg, datasets=squares())
    losses = logged_losses(tmp_path)
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_median_frequency_weights_are_computed_once_written_and_read_back_on_resume(tmp_path, capsys, monkeypatch):
    settings = [
        "model.name=engine_train_tiny",
        "data.dataset=synthetic",
        "data.options={length: 4, height: 32, width: 32}",
        "data.crop_size=[32, 32]",
        "data.batch_size=2",
        "optim.class_weights=median_freq",
    ]
    cfg = quick_config(tmp_path, *settings, "optim.epochs=1")
    train(cfg)
    written = json.loads((tmp_path / "class_weights.json").read_text())
    expected = engine_class_weights.compute_weighting("median_freq", load_dataset(cfg))
    assert written == expected and written["method"] == "median_freq" and len(written["weights"]) == 6
    assert "dla: class weights (median_freq, from 4 training labels): background" in capsys.readouterr().out

    def no_counting(dataset):
        raise AssertionError("the labels were counted again on resume")

    monkeypatch.setattr(engine_class_weights, "count_labels", no_counting)
    train(quick_config(tmp_path, *settings, "optim.epochs=2"), resume=True)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["class_weights"] == written
    assert json.loads((tmp_path / "class_weights.json").read_text()) == written


def load_dataset(cfg):
    return build_dataset(cfg.data.dataset, cfg.data.root, cfg.data.train_split, **cfg.data.options)


def test_computed_class_weights_need_a_dataset_whose_labels_can_be_read(tmp_path):
    cfg = quick_config(tmp_path, "model.name=engine_train_tiny", "data.batch_size=2", "optim.class_weights=inverse_log")
    with pytest.raises(DLAError, match="a SegmentationDataset with read_label"):
        train(cfg, datasets=squares())
