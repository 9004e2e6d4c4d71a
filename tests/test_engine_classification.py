"""Classification through the one engine: training, exact resume, transfer from a weights file, the backbone's
learning rate, evaluation scores on hand-made logits, ``dla eval`` / ``dla predict``, and task checks."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from dla.cli import main
from dla.config import Config
from dla.data.meta import DatasetMeta, default_palette
from dla.engine.checkpoint import load_checkpoint
from dla.engine.config_loader import load_config
from dla.engine.optimizer import parameter_groups
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.models import create_model
from dla.tasks import get_task
from dla.tasks.classification import evaluate_classification, format_scores, top_classes
from engine_runs import quick_config

CLASSES = ("red", "green", "blue")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """An ImageFolder of 36x44 noisy images, 8 per class in train and 3 in val, coloured by their class."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 3)):
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 90, (36, 44, 3))
                pixels[..., c] += 160
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


def config(image_folder: Path, out_dir: Path, *overrides: str) -> Config:
    return quick_config(
        out_dir,
        "task=classification",
        "model.name=dla46_c",
        "data.dataset=imagefolder",
        f"data.root={image_folder}",
        "data.crop_size=[32, 32]",
        "data.resize=[36]",
        "data.batch_size=6",
        "optim.epochs=2",
        "optim.lr=0.05",
        *overrides,
    )


@pytest.fixture(scope="module")
def trained_run(image_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train(config(image_folder, out, "data.color_jitter=0.4", "data.lighting=0.1"))
    return out


def test_training_writes_a_classification_run(trained_run):
    state = load_checkpoint(trained_run / "checkpoints" / "last.pt")
    assert state["task"] == "classification" and state["model_kwargs"] == {"num_classes": 3}
    assert list(state["dataset_meta"]["classes"]) == sorted(CLASSES) and state["iteration"] == 8  # 24 images / 6, 2 epochs
    scores = json.loads((trained_run / "eval" / "epoch_2.json").read_text())
    assert set(scores) >= {"top1", "accuracy", "mean_accuracy", "confusion"} and "top5" not in scores  # 3 classes
    assert state["best_score"] == max(json.loads((trained_run / "eval" / f"epoch_{e}.json").read_text())["top1"] for e in (1, 2))
    assert np.asarray(scores["confusion"]).sum() == 9
    assert Image.open(trained_run / "plots" / "confusion.png").mode == "RGB"
    assert (trained_run / "plots" / "curves.png").is_file()
    records = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_top1" in r for r in records)


def test_resume_after_an_epoch_continues_exactly(image_folder, tmp_path):
    train(config(image_folder, tmp_path / "whole"))
    train(config(image_folder, tmp_path / "split", "optim.epochs=1"))
    train(config(image_folder, tmp_path / "split"), resume=True)
    whole, split = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")["model"] for run in ("whole", "split"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_transfer_loads_the_backbone_of_a_weights_file_with_a_new_head(image_folder, tmp_path):
    """An ImageNet-style file (the authors' format: a bare state dict of a 1000-class model) gives the backbone."""
    source = create_model("dla46_c", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "dla46_c-imagenet.pth")
    cfg = config(image_folder, tmp_path / "run", f"model.pretrained_backbone={tmp_path / 'dla46_c-imagenet.pth'}")
    meta = DatasetMeta("colours", CLASSES, tuple(default_palette(3)))
    model, kwargs = get_task("classification").build_model(cfg, meta, cfg.model.pretrained_backbone)
    assert kwargs == {"num_classes": 3} and model.fc.out_channels == 3
    loaded, original = model.state_dict(), source.state_dict()
    assert all(torch.equal(loaded[k], original[k]) for k in loaded if not k.startswith("fc."))


def test_backbone_lr_factor_scales_all_but_the_head(image_folder, tmp_path):
    cfg = config(image_folder, tmp_path, "optim.backbone_lr_factor=0.1")
    model = create_model("dla46_c", num_classes=3)
    head, backbone = parameter_groups(model, get_task("classification"), 0.05, 0.1)
    assert head["lr"] == 0.05 and backbone["lr"] == pytest.approx(0.005)
    assert {id(p) for p in head["params"]} == {id(p) for p in model.fc.parameters()}
    assert len(head["params"]) + len(backbone["params"]) == len(list(model.parameters()))
    train(config(image_folder, tmp_path / "run", "optim.backbone_lr_factor=0.1", "optim.max_iterations=1"))
    assert cfg.optim.backbone_lr_factor == 0.1


class Lookup(nn.Module):
    """Returns row ``i`` of ``table`` for an image whose pixels all equal ``i`` (one crop or several)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0].long()]


class Indexed(Dataset):
    meta = DatasetMeta("six", tuple("abcdef"), tuple(default_palette(6)))

    def __init__(self, targets, crops: int = 0) -> None:
        self.targets, self.crops = targets, crops

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        shape = (self.crops, 3, 2, 2) if self.crops else (3, 2, 2)
        return torch.full(shape, float(i)), self.targets[i]


def test_scores_of_hand_made_logits():
    table = torch.tensor(
        [
            [9.0, 1, 0, 0, 0, 0],  # target 0: top-1 hit
            [0.0, 1, 9, 0, 0, 0],  # target 1: second, top-5 hit
            [0.0, 1, 2, 3, 4, 9],  # target 0: sixth, a miss for top-5
            [0.0, 0, 0, 9, 0, 0],  # target 3: top-1 hit
        ]
    )
    result = evaluate_classification(Lookup(table), Indexed([0, 1, 0, 3]), torch.device("cpu"), batch_size=3)
    assert result["top1"] == pytest.approx(2 / 4) and result["top5"] == pytest.approx(3 / 4)
    assert result["accuracy"][:2] == [0.5, 0.0] and result["accuracy"][3] == 1.0 and np.isnan(result["accuracy"][2])
    assert result["mean_accuracy"] == pytest.approx(0.5)  # (0.5 + 0 + 1) / 3 classes present
    assert result["confusion"][0] == [1, 0, 0, 0, 0, 1] and result["confusion"][1][2] == 1
    table_text = format_scores(result, Indexed.meta.classes)
    assert "top-1" in table_text and "50.00" in table_text and "75.00" in table_text
    assert top_classes(table[1].softmax(0), Indexed.meta.classes, k=2)[0][0] == "c"


def test_crops_are_averaged():
    result = evaluate_classification(Lookup(torch.eye(6)), Indexed([0, 1], crops=10), torch.device("cpu"))
    assert result["top1"] == 1.0


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (("task=classification", "data.rotation=10.0"), "data.rotation does not apply to task: classification"),
        (("task=classification", "model.down_ratio=8"), "model.down_ratio does not apply"),
        (("eval.ten_crop=true",), "eval.ten_crop does not apply to task: segmentation"),
        (("task=classification", "data.scale=[0.5, 2.0]"), "fraction of the image area"),
    ],
)
def test_keys_of_the_other_task_are_refused(overrides, expected):
    with pytest.raises(DLAError, match=expected):
        load_config(None, list(overrides))


def test_task_defaults_fill_the_config():
    cfg = load_config(None, ["task=classification", "data.dataset=synthetic"])
    assert cfg.model.name == "dla34" and cfg.data.crop_size == [224, 224] and cfg.data.resize == [256]
    assert cfg.model.down_ratio is None and cfg.data.rotation is None
    assert load_config(None, ["model.down_ratio=8"]).model.down_ratio == 8  # null: the model's own (DLA's 2s)


def test_a_segmentation_dataset_is_refused_for_classification(tmp_path):
    cfg = load_config(None, ["task=classification", "data.dataset=synthetic", f"out_dir={tmp_path / 'run'}"])
    with pytest.raises(DLAError, match="'synthetic' is a segmentation dataset but the task is classification"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_eval_and_predict_commands(trained_run, image_folder, tmp_path, capsys):
    checkpoint = str(trained_run / "checkpoints" / "best.pt")
    output = tmp_path / "scores.json"
    assert main(["eval", checkpoint, "--ten-crop", "--output", str(output), "--device", "cpu"]) == 0
    assert "top-1" in capsys.readouterr().out
    scores = json.loads(output.read_text())
    assert scores["task"] == "classification" and scores["eval"]["ten_crop"] is True and 0 <= scores["top1"] <= 1
    assert (tmp_path / "scores_confusion.png").is_file()
    assert main(["eval", checkpoint, "--flip"]) == 2
    assert "eval.flip does not apply to task: classification" in capsys.readouterr().err

    images = [str(image_folder / "val" / name / "0.png") for name in CLASSES]
    assert main(["predict", *images, "--checkpoint", checkpoint, "--out", str(tmp_path / "out"), "--top-k", "2"]) == 0
    ranked = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert list(ranked) == images and all(len(classes) == 2 for classes in ranked.values())
    assert all(name in CLASSES and 0 <= p <= 1 for classes in ranked.values() for name, p in classes)
