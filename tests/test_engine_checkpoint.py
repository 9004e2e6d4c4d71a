"""Checkpoints: atomic saves, safe and checked loading, rebuilding a model, generator states."""

import errno
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from dla.data.meta import DatasetMeta, default_palette
from dla.engine import checkpoint as ckpt
from dla.engine.checkpoint import load_checkpoint, model_from_checkpoint, rng_state, save_checkpoint, set_rng_state
from dla.errors import DLAError
from dla.models import register_model

META = DatasetMeta("tiny", ("a", "b"), tuple(default_palette(2)))


@register_model
def engine_checkpoint_tiny(num_classes: int = 2, in_chans: int = 3, width: int = 4, **kwargs) -> nn.Module:
    """A stand-in segmentation model: two convolutions, logits at the input resolution."""
    return nn.Sequential(nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, num_classes, 1))


def make_state(model: nn.Module) -> dict:
    return {
        "model": model.state_dict(),
        "model_name": "engine_checkpoint_tiny",
        "model_kwargs": {"num_classes": 2, "width": 4},
        "task": "segmentation",
        "dataset_meta": META.to_dict(),
        "epoch": 1,
        "iteration": 10,
        "rng": rng_state(),
    }


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name != "last.pt"]


def test_round_trip_and_rebuild(tmp_path):
    model = engine_checkpoint_tiny(width=4)
    save_checkpoint(tmp_path / "last.pt", make_state(model))
    assert leftovers(tmp_path) == []  # no temporary file left behind
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["iteration"] == 10
    rebuilt, meta = model_from_checkpoint(tmp_path / "last.pt")
    assert meta == META
    assert not rebuilt.training
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(rebuilt(x), model(x))
    rebuilt_from_dict, _ = model_from_checkpoint(state)
    assert torch.equal(rebuilt_from_dict(x), model(x))


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, make_state(engine_checkpoint_tiny()))
    before = path.read_bytes()

    with pytest.raises(Exception):  # noqa: B017 (whatever torch.save raises for what it cannot pickle)
        save_checkpoint(path, {**make_state(engine_checkpoint_tiny()), "bad": lambda: None})
    assert path.read_bytes() == before and leftovers(tmp_path) == []

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk_in_torch(obj, f, *args, **kwargs):  # what torch's C++ writer raises on a full disk
        f.write(b"partial")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file data/3: file write failed"
        )

    for failure in (full_disk, full_disk_in_torch):
        monkeypatch.setattr(ckpt.torch, "save", failure)
        with pytest.raises(
            DLAError, match=rf"^cannot write {path}: no space left on the device; the previous checkpoint is unchanged$"
        ):
            save_checkpoint(path, make_state(engine_checkpoint_tiny()))
        assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DLAError, match="missing.pt not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DLAError, match="garbage.pt is a text file, not a dla checkpoint"):
        load_checkpoint(garbage)
    partial = tmp_path / "partial.pt"
    torch.save({"model": {}, "epoch": 3}, partial)
    with pytest.raises(
        DLAError, match="partial.pt is not a dla checkpoint: it lacks model_name, model_kwargs, task, dataset_meta"
    ):
        load_checkpoint(partial)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_load_runs_no_code_from_the_file(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({**make_state(engine_checkpoint_tiny()), "x": Payload()}, f, protocol=2)
    with pytest.raises(DLAError, match="cannot read checkpoint"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_rng_state_survives_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint(tmp_path / "last.pt", make_state(engine_checkpoint_tiny()))
    expected = (random.random(), np.random.rand(), torch.rand(()).item())
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(()).item()) == expected
