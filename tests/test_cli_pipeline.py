"""The segmentation commands end to end on tiny synthetic data: train, eval, predict, demo, prepare."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dla.cli import main

TINY = [
    "model.name=dlaup",
    "model.kwargs={backbone: dla46_c}",
    "data.options={length: 4, height: 64, width: 64}",
    "data.val_options={length: 4}",
    "data.crop_size=[64, 64]",
    "data.batch_size=2",
    "data.workers=0",
    "optim.epochs=1",
    "log.every_iterations=1",
    "log.tensorboard=false",
]


def overrides(*pairs):
    return [arg for pair in pairs for arg in ("--set", pair)]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One epoch (two iterations) of ``dla train`` with the packaged demo config's dataset."""
    run = tmp_path_factory.mktemp("run")
    config = tmp_path_factory.mktemp("config") / "tiny.yaml"
    config.write_text("data: {dataset: synthetic}\n")
    assert main(["train", str(config), *overrides(*TINY, f"out_dir={run}")]) == 0
    return run


def test_train_writes_a_complete_run_directory(trained_run):
    for name in ["config.yaml", "code_version", "metrics.jsonl", "metrics.csv", "checkpoints/last.pt", "checkpoints/best.pt"]:
        assert (trained_run / name).is_file(), name
    records = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "loss" in r] == [1, 2]
    assert any("val_miou" in r for r in records)


def test_eval_prints_the_table_and_writes_json(trained_run, tmp_path, capsys):
    output = tmp_path / "scores.json"
    assert (
        main(["eval", str(trained_run / "checkpoints/last.pt"), "--flip", "--scales", "0.75", "1", "--output", str(output)]) == 0
    )
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "circle" in printed
    scores = json.loads(output.read_text())
    assert scores["split"] == "val" and scores["eval"]["flip"] is True and scores["eval"]["scales"] == [0.75, 1.0]
    assert 0.0 <= scores["miou"] <= 1.0 and len(scores["iou"]) == 6


def test_predict_writes_masks_overlays_and_probabilities(trained_run, tmp_path):
    images = []
    for i, mode in enumerate(["RGB", "L", "RGBA"]):
        path = tmp_path / f"image{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8)).convert(mode).save(path)
        images.append(str(path))
    out = tmp_path / "out"
    assert main(["predict", *images, "--checkpoint", str(trained_run / "checkpoints/last.pt"), "--out", str(out), "--probs"]) == 0
    for i in range(3):
        assert Image.open(out / f"image{i}_mask.png").size == (50, 40)
        assert Image.open(out / f"image{i}_overlay.png").size == (50, 40)
        probs = np.load(out / f"image{i}_probs.npy")
        assert probs.shape == (6, 40, 50)
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=1e-2)


def test_predict_names_a_broken_image_before_running(trained_run, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert main(["predict", str(broken), "--checkpoint", str(trained_run / "checkpoints/last.pt"), "--out", str(tmp_path)]) == 2
    assert "broken.png" in capsys.readouterr().err


def test_unknown_config_key_suggests_the_nearest(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("optim: {lrr: 0.1}\n")
    assert main(["train", str(config)]) == 2
    assert "optim.lr" in capsys.readouterr().err


def test_demo_trains_evaluates_and_draws(tmp_path, capsys):
    run = tmp_path / "demo"
    args = ["demo", "--out", str(run), *overrides(*TINY)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "baseline" in printed
    assert (run / "plots" / "curves.png").is_file()
    assert len(list((run / "predictions").glob("*_overlay.png"))) == 4
    with Image.open(run / "plots" / "predictions.png") as panel:  # 4 rows of image, ground truth, prediction
        assert panel.mode == "RGB" and panel.height > panel.width
    weights = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert main(args) == 0  # a finished demo is scored again, not retrained
    again = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(weights[k], again[k]) for k in weights)


def test_prepare_cityscapes(tmp_path, capsys):
    labels = tmp_path / "gtFine" / "train" / "aachen"
    labels.mkdir(parents=True)
    Image.fromarray(np.array([[7, 8], [26, 0]], dtype=np.uint8)).save(labels / "aachen_000000_000019_gtFine_labelIds.png")
    assert main(["prepare", "cityscapes", str(tmp_path)]) == 0
    train_ids = np.array(Image.open(labels / "aachen_000000_000019_gtFine_labelTrainIds.png"))
    assert train_ids.tolist() == [[0, 1], [13, 255]]
    assert "wrote 1" in capsys.readouterr().out
