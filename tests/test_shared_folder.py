"""A trained model as a folder to share (`dla export --format hub`) and safetensors weights: written, read back by
`dla eval`, `dla predict` and `create_model(pretrained=...)`, with the same results as the checkpoint."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from dla.cli import main
from dla.commands.evaluate import evaluate_checkpoint
from dla.engine.checkpoint import load_checkpoint
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.models import create_model
from engine_runs import quick_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of a tiny run on the synthetic shapes, with its evaluation in the run folder."""
    out = tmp_path_factory.mktemp("shared") / "run"
    cfg = quick_config(
        out,
        "model.name=engine_train_tiny",
        "data.options={length: 4, height: 32, width: 32}",
        "data.crop_size=[32, 32]",
        "data.batch_size=2",
        "optim.epochs=1",
    )
    train(cfg)
    return out / "checkpoints" / "last.pt"


def test_the_folder_holds_weights_config_and_a_model_card(checkpoint, tmp_path):
    folder = tmp_path / "shared"
    assert main(["export", str(checkpoint), "--format", "hub", "--out", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = json.loads((folder / "config.json").read_text())
    state = load_checkpoint(checkpoint)
    assert card["format"] == "dla" and card["model_name"] == "engine_train_tiny" and card["task"] == "segmentation"
    assert card["dataset_meta"]["classes"] == list(state["dataset_meta"]["classes"]) and card["config"] == state["config"]
    assert card["scores"]["miou"] == json.loads((checkpoint.parent.parent / "eval" / "epoch_1.json").read_text())["miou"]
    readme = (folder / "README.md").read_text()
    assert "val mIoU" in readme and "dla predict image.png --checkpoint THIS_FOLDER" in readme


def test_eval_predict_and_create_model_read_the_folder_as_the_checkpoint(checkpoint, tmp_path, capsys):
    folder = tmp_path / "shared"
    main(["export", str(checkpoint), "--format", "hub", "--out", str(folder)])
    from_folder, from_file = (evaluate_checkpoint(str(source), workers=0) for source in (folder, checkpoint))
    assert from_folder["confusion"] == from_file["confusion"]
    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(image)
    for source, out in ((folder, "a"), (checkpoint, "b")):
        assert main(["predict", str(image), "--checkpoint", str(source), "--out", str(tmp_path / out)]) == 0
    masks = [np.asarray(Image.open(tmp_path / out / "image_mask.png")) for out in ("a", "b")]
    assert np.array_equal(masks[0], masks[1])
    model = create_model("engine_train_tiny", pretrained=str(folder), num_classes=len(from_file["classes"]))
    weights = load_checkpoint(checkpoint)["model"]
    assert all(torch.equal(model.state_dict()[key], weights[key]) for key in weights)


def test_safetensors_weights_load_and_broken_folders_are_named(checkpoint, tmp_path):
    weights = load_checkpoint(checkpoint)["model"]
    save_file(weights, tmp_path / "weights.safetensors")
    model = create_model(
        "engine_train_tiny", pretrained=str(tmp_path / "weights.safetensors"), num_classes=weights["3.bias"].numel()
    )
    assert all(torch.equal(model.state_dict()[key], weights[key]) for key in weights)
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "weights.safetensors").read_bytes()[:100])
    with pytest.raises(DLAError, match="cut.safetensors: not a readable safetensors file"):
        create_model("engine_train_tiny", pretrained=str(tmp_path / "cut.safetensors"))

    folder = tmp_path / "shared"
    main(["export", str(checkpoint), "--format", "hub", "--out", str(folder)])
    (folder / "model.safetensors").unlink()
    with pytest.raises(DLAError, match="has no model.safetensors"):
        load_checkpoint(folder)
    (folder / "config.json").write_text('{"format": "other"}')
    with pytest.raises(DLAError, match="was not written by dla export --format hub"):
        load_checkpoint(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DLAError, match="is a file; the hub format writes a folder"):
        main_raising(["export", str(checkpoint), "--format", "hub", "--out", str(tmp_path / "file")])


def main_raising(argv: list[str]) -> None:
    """``dla ARGV`` through its functions, so that a DLAError reaches the test."""
    from dla.cli import build_parser

    args = build_parser().parse_args(argv)
    args.func(args)
