"""Failure cases of training runs and checkpoints: each gives a correct result or a DLAError naming the file or
key, before work is spent and without losing what was done (docs/reliability.md)."""

import os
import pickle
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from dla.cli import main
from dla.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from dla.engine.rundir import RunDir
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.tasks import segmentation
from engine_runs import Squares, quick_config, squares


def config(out_dir: Path, *overrides: str):
    return quick_config(out_dir, "model.name=engine_train_tiny", "data.batch_size=4", "optim.epochs=1", *overrides)


def last(out_dir: Path) -> dict:
    return load_checkpoint(out_dir / "checkpoints" / "last.pt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    train(config(out), datasets=squares())
    return out / "checkpoints" / "last.pt"


def test_a_second_training_into_the_same_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    with RunDir(out).locked():
        with pytest.raises(DLAError, match=rf"out_dir {out} is in use by process {os.getpid()} on .*then --resume"):
            train(config(out), datasets=squares())
    train(config(out), datasets=squares())  # the lock ends with its holder
    with RunDir(out).locked():
        with pytest.raises(DLAError, match="is in use by process"):
            train(config(out, "optim.epochs=2"), resume=True, datasets=squares())
    assert last(out)["iteration"] == 2


def test_a_run_that_failed_before_its_first_checkpoint_starts_again(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = segmentation.segmentation_loss

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the first iteration")

    monkeypatch.setattr(segmentation, "segmentation_loss", broken)
    with pytest.raises(RuntimeError):
        train(config(out), datasets=squares())
    assert (out / "config.yaml").exists() and not (out / "checkpoints" / "last.pt").exists()
    monkeypatch.setattr(segmentation, "segmentation_loss", real)
    train(config(out), datasets=squares())  # no --resume needed: nothing was kept
    assert last(out)["iteration"] == 2


def test_channels_are_checked_before_the_run_folder_is_made(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(DLAError, match=r"takes 1-channel images but squares gives 3-channel images; set model.kwargs.in_chans=3"):
        train(config(out, "model.kwargs={in_chans: 1}"), datasets=squares())
    assert not out.exists()


def test_last_checkpoint_is_written_before_validating(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("a bad validation label")

    monkeypatch.setattr(segmentation, "evaluate_segmentation", failing)
    with pytest.raises(RuntimeError, match="bad validation label"):
        train(config(tmp_path / "run"), datasets=squares())
    assert last(tmp_path / "run")["iteration"] == 2  # the epoch's training is kept


def test_sigterm_saves_the_iteration_reached(tmp_path, monkeypatch):
    calls = [0]
    real = segmentation.segmentation_loss

    def terminated_at_iteration_3(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends
        return real(*args, **kwargs)

    monkeypatch.setattr(segmentation, "segmentation_loss", terminated_at_iteration_3)
    with pytest.raises(KeyboardInterrupt):
        train(config(tmp_path / "run", "optim.epochs=2", "data.batch_size=2"), datasets=squares())
    assert last(tmp_path / "run")["iteration"] == 3
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


class Failing(Dataset):
    """Squares whose item 5 is unreadable, as a bad file is."""

    meta = Squares.meta

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int):
        if index == 5:
            raise DLAError("labels/5.png: label has mode RGB; save labels as single-channel images of class indices")
        return Squares(8)[index]


def test_an_error_in_a_loader_process_shows_its_own_message(tmp_path):
    with pytest.raises(DLAError) as raised:
        train(config(tmp_path / "run", "data.workers=1"), datasets=(Failing(), Squares(4, augment=False)))
    message = str(raised.value)
    assert message.startswith("labels/5.png: label has mode RGB; save labels as single-channel")
    assert message.endswith("(in DataLoader worker process 0)") and "Traceback" not in message


def test_stale_temporary_checkpoints_are_removed_and_checkpoints_are_not_private(tmp_path, trained):
    out = tmp_path / "run"
    train(config(out), datasets=squares())
    stale = out / "checkpoints" / ".last.pt.k2j3_.tmp"
    stale.write_bytes(b"cut short by kill -9")
    train(config(out, "optim.epochs=2"), resume=True, datasets=squares())
    assert not stale.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "checkpoints" / "last.pt").stat().st_mode) == 0o666 & ~umask


def test_eval_names_what_a_file_is_and_never_advises_unsafe_loading(tmp_path, capsys):
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("lr 0.01, 60 epochs\n")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "picture.pt", format="PNG")
    with open(tmp_path / "objects.pt", "wb") as f:
        pickle.dump({"model": Path("x")}, f, protocol=2)  # torch.save's protocol
    cases = {
        "empty.pt": "is empty (0 bytes), not a dla checkpoint",
        "notes.pt": "is a text file, not a dla checkpoint",
        "picture.pt": "is a PNG image, not a dla checkpoint",
        "objects.pt": "holds a Python object of type pathlib",
        "": "is a folder, not a checkpoint file",
    }
    for name, expected in cases.items():
        assert main(["eval", str(tmp_path / name)]) == 2
        error = capsys.readouterr().err
        assert expected in error and "weights_only=False" not in error, error


def test_a_checkpoint_that_does_not_fit_its_model_is_a_clear_error(tmp_path, trained):
    state = load_checkpoint(trained)
    state["model"]["0.weight"] = torch.zeros(8, 3, 5, 5)
    state["model"]["extra.bias"] = torch.zeros(2)
    del state["model"]["3.bias"]
    broken = tmp_path / "broken.pt"
    save_checkpoint(broken, state)
    fit = rf"{broken} does not fit Sequential \(a stand-in\): 1 missing keys \(3.bias\); 1 unexpected keys \(extra.bias\); "
    fit += "1 shape mismatches"
    with pytest.raises(DLAError, match=fit):
        model_from_checkpoint(broken)
    out = tmp_path / "run"
    train(config(out), datasets=squares())
    save_checkpoint(
        out / "checkpoints" / "last.pt", {**load_checkpoint(out / "checkpoints" / "last.pt"), "model": state["model"]}
    )
    with pytest.raises(DLAError, match="last.pt does not fit Sequential"):
        train(config(out, "optim.epochs=2"), resume=True, datasets=squares())

    for key, value, expected in (
        ("model_kwargs", {"num_classes": "three"}, "its model_kwargs .* do not build engine_train_tiny"),
        ("model_kwargs", [3], "model_kwargs must be a mapping"),
        ("dataset_meta", {"name": "squares"}, "its dataset_meta is malformed"),
    ):
        bad = tmp_path / f"bad_{key}.pt"
        save_checkpoint(bad, {**load_checkpoint(trained), key: value})
        with pytest.raises(DLAError, match=f"{bad}: {expected}"):
            model_from_checkpoint(bad)


def test_a_bad_validation_label_is_found_before_training(tmp_path):
    """The val split's mask has the wrong size: found from the headers at the start, before an epoch is spent."""
    root = tmp_path / "data"
    for split, count in (("train", 4), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(root / "images" / split / f"{i}.png")
            size = (32, 32) if (split, i) != ("val", 1) else (16, 32)
            Image.fromarray(np.zeros(size, np.uint8)).save(root / "masks" / split / f"{i}.png")
    (root / "classes.txt").write_text("background\nthing\n")
    cfg = config(tmp_path / "run", "data.dataset=folder", f"data.root={root}", "data.crop_size=[32, 32]")
    with pytest.raises(DLAError, match=r"(?s)1 of the 2 samples of the 'val' split .*masks/val/1.png: label is 32x16"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_crop_too_small_for_batchnorm_at_batch_1_is_named(tmp_path):
    """DFANet B's third backbone works at stride 64: the 32x32 squares leave it one value per channel."""
    cfg = config(tmp_path / "run", "model.name=dfanet_b", "data.batch_size=1")
    with pytest.raises(DLAError, match="at 1 image\\(s\\) of 32x32 per step, .* raise data.crop_size"):
        train(cfg, datasets=squares(2))
