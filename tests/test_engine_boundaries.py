"""Boundary detection through the one engine: the weighted loss, the models, a short training run on a generic
boundary layout, ``dla eval`` (ODS/OIS/AP, JSON, precision-recall plot), ``dla baseline`` and the config."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dla.cli import main
from dla.config import Config
from dla.engine.checkpoint import load_checkpoint
from dla.engine.config_loader import load_config
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.models import create_model
from dla.tasks.boundaries import ISO_F, boundary_loss, draw_pr_curve, gradient_magnitude, pr_figure
from dla.tasks.visualize import figure_image
from engine_runs import quick_config, write_boundary_folder


@pytest.fixture(scope="module")
def boundary_folder(tmp_path_factory) -> Path:
    """A generic boundary layout: 64x72 images of a bright rectangle, whose outline is the boundary map."""
    return write_boundary_folder(tmp_path_factory.mktemp("rectangles"), {"train": 4, "val": 2}, (64, 72))


def config(root: Path, out_dir: Path, *overrides: str) -> Config:
    return quick_config(
        out_dir,
        "task=boundaries",
        "model.kwargs={backbone: dla46_c}",
        "model.name=dlaup",
        "data.dataset=boundary_folder",
        f"data.root={root}",
        "data.crop_size=[64, 64]",
        "data.batch_size=2",
        "optim.epochs=2",
        "eval.every_epochs=2",
        "eval.thresholds=9",
        *overrides,
    )


def test_loss_weights_boundaries_and_leaves_out_the_ignored():
    logits = torch.zeros(1, 1, 1, 3)  # probability 0.5 everywhere: each pixel's cross-entropy is log 2
    target = torch.tensor([[[1, 0, 255]]])
    assert boundary_loss(logits, target).item() == pytest.approx(np.log(2))
    weighted = boundary_loss(logits, target, torch.tensor([1.0, 10.0]))
    assert weighted.item() == pytest.approx((10 + 1) * np.log(2) / 2)  # two pixels count, the third is ignored
    with pytest.raises(DLAError, match="N x 1 x H x W"):
        boundary_loss(torch.zeros(1, 2, 1, 3), target)


def test_boundary_models_give_one_logit_per_pixel():
    model = create_model("dla34edge", down_ratio=4).eval()
    assert model(torch.zeros(1, 3, 70, 90)).shape == (1, 1, 70, 90)
    assert model.pretrained_cfg.paper_name == "DLA-34 4s"


def test_gradient_magnitude_peaks_on_the_edge():
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:, 15:] = 255
    magnitude = gradient_magnitude(Image.fromarray(pixels))
    assert magnitude.max() == 1.0 and set(np.argmax(magnitude, axis=1)) <= {14, 15}


def test_pr_curve_draws_contours_curves_and_the_ods_point():
    result = {
        "recall": [0.9, 0.6, 0.3, 0.0],
        "precision": [0.4, 0.7, 0.9, 0.0],
        "ods": 0.646,
        "ods_recall": 0.6,
        "ods_precision": 0.7,
    }
    other = {"recall": [0.8, 0.5, 0.2], "precision": [0.2, 0.5, 0.6], "ods": 0.5, "ods_recall": 0.5, "ods_precision": 0.5}
    figure = pr_figure([("ours", result), ("baseline", other)])
    pixels = np.asarray(figure_image(figure))
    for colour in ((214, 39, 40), (31, 119, 180)):  # each curve in its colour (matplotlib's C3, C0)
        assert (pixels == colour).all(axis=2).sum() > 50
    axes = figure.axes[0]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["[F=0.646] ours", "[F=0.500] baseline"]
    assert axes.get_xlim() == axes.get_ylim() == (0.0, 1.0) and axes.get_xlabel() == "Recall"
    curve, ods = axes.lines[:2]
    assert list(curve.get_xdata()) == [0.9, 0.6, 0.3] and list(curve.get_ydata()) == [0.4, 0.7, 0.9]  # nothing found: left out
    assert list(ods.get_xdata()) == [0.6] and list(ods.get_ydata()) == [0.7]
    labels = sorted(float(text.get_text()) for text in axes.texts)  # the iso-F contours, labelled
    assert labels == list(ISO_F)
    assert draw_pr_curve([("ours", result)]).mode == "RGB"


def test_task_defaults_and_keys():
    cfg = load_config(None, ["task=boundaries", "data.dataset=bsds500", "data.root=/nowhere"])
    assert cfg.model.name == "dla34edge" and cfg.optim.class_weights == [1.0, 10.0]
    assert cfg.data.rotation == 180.0 and cfg.eval.thresholds == 99 and cfg.eval.tolerance == 0.0075
    with pytest.raises(DLAError, match="eval.thresholds does not apply to task: segmentation"):
        load_config(None, ["eval.thresholds=9"])
    with pytest.raises(DLAError, match="eval.flip does not apply to task: boundaries"):
        load_config(None, ["task=boundaries", "eval.flip=true"])


def test_train_eval_and_baseline(boundary_folder, tmp_path, capsys):
    out = tmp_path / "run"
    metrics = train(config(boundary_folder, out))
    assert 0.0 <= metrics["ods"] <= 1.0 and 0.0 <= metrics["ap"] <= 1.0 and len(metrics["precision"]) == 9
    state = load_checkpoint(out / "checkpoints" / "best.pt")
    assert state["task"] == "boundaries" and state["model_kwargs"] == {"num_classes": 1, "backbone": "dla46_c"}
    assert (out / "plots" / "pr_curve.png").is_file() and (out / "plots" / "curves.png").is_file()

    output = tmp_path / "scores.json"
    assert main(["eval", str(out / "checkpoints" / "last.pt"), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "ODS" in printed and "OIS" in printed and "AP" in printed
    scores = json.loads(output.read_text())
    assert scores["task"] == "boundaries" and scores["ods"] == pytest.approx(metrics["ods"])
    assert Image.open(tmp_path / "scores_pr_curve.png").mode == "RGB"

    image = str(boundary_folder / "images" / "val" / "0.png")
    assert (
        main(["predict", image, "--checkpoint", str(out / "checkpoints" / "last.pt"), "--out", str(tmp_path / "p"), "--probs"])
        == 0
    )
    assert Image.open(tmp_path / "p" / "0_boundaries.png").size == (72, 64)
    with Image.open(tmp_path / "p" / "0_boundaries16.png") as fine:  # the probability in 16 bits
        probability = np.load(tmp_path / "p" / "0_probs.npy").astype(np.float64)
        assert np.abs(np.asarray(fine) / 65535 - probability).max() < 1e-3  # float16's precision
    assert Image.open(tmp_path / "p" / "0_thin.png").mode == "L" and np.load(tmp_path / "p" / "0_probs.npy").shape == (64, 72)

    baseline = tmp_path / "baseline.json"
    assert (
        main(
            [
                "baseline",
                "--dataset",
                "boundary_folder",
                "--root",
                str(boundary_folder),
                "--thresholds",
                "9",
                "--output",
                str(baseline),
            ]
        )
        == 0
    )
    assert json.loads(baseline.read_text())["ods"] >= 0.5  # half the outline: the edge between two pixels peaks on both
    assert (tmp_path / "baseline_pr_curve.png").is_file()
    assert main(["pr-curve", str(output), str(baseline), "--out", str(tmp_path / "both.png")]) == 0
    assert Image.open(tmp_path / "both.png").mode == "RGB"
    assert main(["pr-curve", str(tmp_path / "p" / "0_probs.npy"), "--out", str(tmp_path / "x.png")]) == 2
    assert "0_probs.npy: cannot read the result" in capsys.readouterr().err
    assert main(["baseline", "--dataset", "synthetic"]) == 2
    assert "needs a boundaries dataset" in capsys.readouterr().err
