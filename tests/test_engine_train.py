"""The training loop end to end, with a tiny model and tiny datasets: run directory, exact resume, Ctrl-C,
NaN, batch size 1, early errors, and `evaluate_checkpoint`."""

import csv
import json
import os
import signal
from pathlib import Path

import pytest
import torch
import yaml

from dla.commands.evaluate import evaluate_checkpoint
from dla.config import Config
from dla.engine import runtime
from dla.engine.checkpoint import load_checkpoint, model_from_checkpoint
from dla.engine.config_loader import load_config
from dla.engine.datasets import build_datasets
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.tasks import get_task, segmentation
from engine_runs import Squares, quick_config, squares


def config(out_dir: Path, *overrides: str) -> Config:
    return quick_config(
        out_dir, "model.name=engine_train_tiny", "data.batch_size=4", "optim.epochs=2", "optim.lr=0.1", *overrides
    )


def weights(out_dir: Path, name: str = "last.pt") -> dict:
    return load_checkpoint(out_dir / "checkpoints" / name)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def records(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_loss_since_the_last_record_is_logged_before_each_evaluation(tmp_path):
    """Records every 5 iterations and before each evaluation, so that the curves drawn after one reach it (an
    epoch shorter than the log interval once drew no loss at all)."""
    out = tmp_path / "run"
    train(config(out, "data.batch_size=2", "log.every_iterations=5"), datasets=squares())  # 4 iterations an epoch
    logged = [(r["iteration"], "loss" in r) for r in records(out)]
    assert logged == [(4, True), (4, False), (5, True), (8, True), (8, False)]


def calls_then(monkeypatch, after: int, effect):
    """Make the trainer's loss call ``effect(loss, logits)`` from its ``after + 1``-th call on."""
    real, count = segmentation.segmentation_loss, [0]

    def loss(logits, *args, **kwargs):
        count[0] += 1
        value = real(logits, *args, **kwargs)
        return effect(value, logits) if count[0] > after else value

    monkeypatch.setattr(segmentation, "segmentation_loss", loss)


def test_two_iterations_write_a_complete_run_directory(tmp_path):
    out = tmp_path / "run"
    cfg = config(out, "optim.max_iterations=2", "log.tensorboard=true", "data.batch_size=2")
    metrics = train(cfg, datasets=squares())
    assert 0.0 <= metrics["miou"] <= 1.0 and len(metrics["iou"]) == 3

    assert load_config(str(out / "config.yaml")) == cfg
    assert (out / "code_version").read_text().strip()
    assert list(out.glob("events.out.tfevents.*"))
    assert (out / "plots").is_dir()
    logged = records(out)
    assert [r["iteration"] for r in logged] == [1, 2, 2]
    assert logged[0].keys() == {"epoch", "iteration", "loss", "lr"} and logged[2]["val_miou"] == metrics["miou"]
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"epoch", "iteration", "loss", "lr", "val_miou"} <= set(rows[0])
    evaluation = json.loads((out / "eval" / "epoch_1.json").read_text())
    assert evaluation["classes"] == list(Squares.meta.classes) and evaluation["miou"] == metrics["miou"]

    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (state["iteration"], state["epoch"], state["best_score"]) == (2, 0, metrics["miou"])
    assert state["model_kwargs"] == {"num_classes": 3}  # down_ratio null: the model's own
    assert {"optimizer", "scheduler", "rng", "config", "code_version", "task"} <= state.keys()
    assert (out / "checkpoints" / "best.pt").is_file()
    model, meta = model_from_checkpoint(out / "checkpoints" / "last.pt")
    assert meta == Squares.meta and model(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_resume_after_an_epoch_continues_exactly(tmp_path):
    schedule = ("optim.step_epochs=[1]", "optim.gamma=0.5")  # the lr changes at the epoch boundary
    train(config(tmp_path / "whole", *schedule), datasets=squares())
    train(config(tmp_path / "split", *schedule, "optim.epochs=1"), datasets=squares())
    train(config(tmp_path / "split", *schedule), resume=True, datasets=squares())
    assert_same_weights(weights(tmp_path / "split"), weights(tmp_path / "whole"))
    assert records(tmp_path / "split") == records(tmp_path / "whole")


@pytest.fixture
def python_sigint_handler():
    """Python's own Ctrl-C handler, also where SIGINT is inherited as ignored (a shell's background jobs)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_saves_and_resume_finishes_the_epoch_exactly(tmp_path, monkeypatch, python_sigint_handler):
    cfg = ("data.batch_size=2",)  # 4 iterations per epoch
    train(config(tmp_path / "whole", *cfg), datasets=squares())

    def ctrl_c(loss, logits):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of iteration 6 (epoch 2)
        return loss

    calls_then(monkeypatch, 5, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(config(tmp_path / "split", *cfg), datasets=squares())
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["iteration"] == 6  # iteration 6 was finished
    monkeypatch.undo()
    train(config(tmp_path / "split", *cfg), resume=True, datasets=squares())
    assert_same_weights(weights(tmp_path / "split"), weights(tmp_path / "whole"))
    assert records(tmp_path / "split") == records(tmp_path / "whole")


def test_loader_processes_do_not_change_results(tmp_path):
    train(config(tmp_path / "inline", "optim.epochs=1"), datasets=squares())
    train(config(tmp_path / "workers", "optim.epochs=1", "data.workers=2"), datasets=squares())
    assert_same_weights(weights(tmp_path / "workers"), weights(tmp_path / "inline"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls_then(monkeypatch, 2, lambda loss, logits: loss * float("nan"))  # from the first iteration of epoch 2
    with pytest.raises(
        DLAError, match=r"the loss is nan at iteration 3 \(epoch 2\); training stopped and .*last.pt keeps the last good weights"
    ):
        train(config(tmp_path), datasets=squares())
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_weights_are_never_saved(tmp_path, monkeypatch):
    def poison(loss, logits):
        logits.register_hook(lambda grad: grad * float("nan"))  # a finite loss, NaN gradients
        return loss

    calls_then(monkeypatch, 3, poison)  # the last iteration of epoch 2
    with pytest.raises(DLAError, match="weights became NaN"):
        train(config(tmp_path), datasets=squares())
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["iteration"] == 2


@pytest.mark.parametrize("length, batch_size, iterations", [(3, 1, 3), (3, 4, 1)])
def test_small_batches(tmp_path, length, batch_size, iterations):
    """Batch size 1 works; a set smaller than a batch still gives one (partial) batch per epoch."""
    train(config(tmp_path, f"data.batch_size={batch_size}", "optim.epochs=1"), datasets=squares(length))
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["iteration"] == iterations


def test_bf16_autocast_on_cpu(tmp_path):
    metrics = train(config(tmp_path, "optim.amp=bf16", "optim.max_iterations=1"), datasets=squares())
    assert "miou" in metrics


def test_auto_amp_is_bf16_exactly_where_the_device_computes_it_natively(tmp_path, monkeypatch):
    cpu = torch.device("cpu")
    for native, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(runtime, "native_bf16", lambda device, native=native: native)
        assert runtime.autocast_dtype("auto", cpu) is expected
    assert "miou" in train(config(tmp_path, "optim.amp=auto", "optim.max_iterations=1"), datasets=squares())


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (("model.name=no_such_model",), "unknown model 'no_such_model'"),
        (("optim.class_weights=[1.0, 2.0]",), "class_weights has 2 values but squares has 3 classes"),
        (("optim.amp=fp16", "device=cpu"), "fp16 needs a CUDA device"),
    ],
)
def test_bad_settings_fail_before_anything_is_written(tmp_path, overrides, expected):
    with pytest.raises(DLAError, match=expected):
        train(config(tmp_path / "run", *overrides), datasets=squares())
    assert not (tmp_path / "run").exists()


def test_dataset_errors_fail_before_anything_is_written(tmp_path):
    cfg = config(tmp_path / "run", "data.dataset=camvid", f"data.root={tmp_path / 'no_data'}")
    with pytest.raises(DLAError, match="no_data"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_out_dir_of_another_run_needs_resume(tmp_path):
    cfg = config(tmp_path, "optim.max_iterations=1")
    with pytest.raises(DLAError, match="nothing to resume"):
        train(cfg, resume=True, datasets=squares())
    train(cfg, datasets=squares())
    with pytest.raises(DLAError, match="already holds a run; pass --resume"):
        train(cfg, datasets=squares())
    with pytest.raises(DLAError, match=r"different config \(optim.lr: 0.1 in the run, 0.5 now\)"):
        train(config(tmp_path, "optim.max_iterations=1", "optim.lr=0.5"), resume=True, datasets=squares())
    assert train(cfg, resume=True, datasets=squares())["miou"] >= 0  # finished already: only evaluates


def test_synthetic_data_from_the_config_and_evaluate_checkpoint(tmp_path):
    """The path without injected datasets: `build_dataset` and the transforms of the data package."""
    options = ["data.options={length: 4, height: 32, width: 32}", "data.val_options={length: 3}"]
    cfg = config(
        tmp_path / "run", "data.dataset=synthetic", *options, "data.crop_size=[32, 32]", "data.batch_size=2", "optim.epochs=1"
    )
    train_set, val_set = build_datasets(cfg, get_task("segmentation"))
    assert (len(train_set), len(val_set), val_set.height) == (4, 3, 32)  # val_options over options, for val alone
    train(cfg)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    result = evaluate_checkpoint(str(checkpoint), workers=0, flip=True, output=str(tmp_path / "scores.json"))
    assert result["dataset"] == "synthetic" and result["split"] == "val" and result["eval"]["flip"] is True
    assert 0.0 <= result["miou"] <= 1.0 and len(result["iou"]) == len(result["classes"])
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert saved["miou"] == result["miou"]


def test_config_yaml_is_rewritten_on_resume(tmp_path):
    train(config(tmp_path, "optim.epochs=1"), datasets=squares())
    train(config(tmp_path, "optim.epochs=2"), resume=True, datasets=squares())
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["optim"]["epochs"] == 2
