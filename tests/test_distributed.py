"""Training and evaluation in several processes (torchrun, Gloo on the CPU, one thread per process).

Each multi-process test starts ``tests/distributed_worker.py`` (or ``dla``) under torchrun with 2 processes and
compares with a single process run here. Tolerance: the weights after a few iterations agree to 1e-5 relative to
their scale; what differs is only the order of float32 sums (BatchNorm statistics, gradient all-reduce); in
float64 ``CpuSyncBatchNorm`` agrees with BatchNorm to 1e-12. Evaluation is exact.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distributed_worker import Tripwire
from dla.cli import main, without_option
from dla.commands.demo import DEMO_CONFIG
from dla.commands.evaluate import evaluate_checkpoint
from dla.distributed import all_gather_rows, current, shard_indices, timeout
from dla.engine.checkpoint import load_checkpoint
from dla.engine.optimizer import learning_rate
from dla.engine.sampling import SeededBatches, epoch_order
from dla.engine.setup import describe_batch
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.layers import CpuSyncBatchNorm, convert_sync_batchnorm
from dla.models import create_model
from engine_runs import quick_config, shades, squares, write_boundary_folder
from evaluation_runs import evaluations

WORKER = Path(__file__).with_name("distributed_worker.py")
TOLERANCE = 1e-5
BF16_TOLERANCE = 2e-3  # 2 training steps in bf16 autocast: the batch's split changes the rounding of its sums


def torchrun(*args: str, nproc: int = 2, seconds: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node NPROC ARGS`` with one thread per process; the finished process."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=seconds)


def worker(spec: dict, expect_success: bool = True, **kwargs) -> subprocess.CompletedProcess:
    finished = torchrun(str(WORKER), json.dumps(spec), **kwargs)
    if expect_success:
        assert finished.returncode == 0, finished.stderr[-4000:]
    return finished


# A quick segmentation run: 8 squares, global batch 4 (2 iterations per epoch), SyncBatchNorm on.
SEGMENTATION = ("model.name=engine_train_tiny", "data.batch_size=4", "optim.lr=0.1")


def segmentation(out_dir: Path, *overrides: str):
    return quick_config(out_dir, *SEGMENTATION, *overrides)


def training(out_dir: Path, *overrides: str, **options) -> dict:
    """The worker's spec of the quick segmentation run (``options``: ``resume``, ``trip``, ``audit``, ...)."""
    return {"mode": "train", "out_dir": str(out_dir), "overrides": [*SEGMENTATION, *overrides], **options}


def weights(out_dir: Path) -> dict:
    return load_checkpoint(out_dir / "checkpoints" / "last.pt")["model"]


def assert_close_weights(a: dict, b: dict, tolerance: float = TOLERANCE) -> None:
    assert a.keys() == b.keys()
    for key in a:
        scale = max(1.0, float(b[key].abs().max()))
        assert torch.allclose(a[key].double(), b[key].double(), rtol=0, atol=tolerance * scale), key


# --- the sampler, the batch and the learning rate (one process) --------------------------------------------


def test_processes_and_accumulation_steps_share_the_same_batches():
    whole = SeededBatches(10, seed=3, batch_size=4)
    whole.set_epoch(2)
    shares = []
    for rank in range(2):
        batches = SeededBatches(10, seed=3, batch_size=4, accumulate=2, rank=rank, world_size=2)
        batches.set_epoch(2)
        shares.append(list(batches))
    assert whole.iterations == 2 and len(shares[0]) == 4  # 2 iterations x 2 steps, the last 2 samples dropped
    for i, batch in enumerate(whole):
        # step 0 of rank 0, step 0 of rank 1, step 1 of rank 0, step 1 of rank 1
        assert batch == shares[0][2 * i] + shares[1][2 * i] + shares[0][2 * i + 1] + shares[1][2 * i + 1]
    assert [pair for batch in whole for pair in batch] == epoch_order(10, 3, 2)[:8]
    skipping = SeededBatches(10, seed=3, batch_size=4, accumulate=2, rank=1, world_size=2)
    skipping.set_epoch(2, skip=1)
    assert list(skipping) == shares[1][2:]


def test_batches_that_do_not_split_are_refused():
    with pytest.raises(DLAError, match=r"data.batch_size 6 .* 4 processes x 1 accumulation steps .* multiple of 4"):
        SeededBatches(10, seed=0, batch_size=6, world_size=4)
    with pytest.raises(
        DLAError, match=r"the training set has 3 samples, fewer than one global batch .* lower data.batch_size to 3"
    ):
        SeededBatches(3, seed=0, batch_size=4, world_size=2)
    assert SeededBatches(3, seed=0, batch_size=4).iterations == 1  # one process: the whole set is one batch
    with pytest.raises(DLAError, match="must be a multiple of optim.accumulate 3"):
        quick_config(Path("run"), "data.batch_size=4", "optim.accumulate=3")


def test_the_batch_is_described_and_the_lr_scaled_only_when_asked():
    assert describe_batch(16, 2, 2) == "global batch 16 = 2 processes x 2 accumulation steps x 4 samples (per process 8)"
    assert describe_batch(8, 1, 1) == "global batch 8 = 1 process x 8 samples (per process 8)"
    cfg = quick_config(Path("run"), "data.batch_size=32", "optim.lr=0.01")
    assert learning_rate(cfg.optim, 32) == 0.01
    cfg = quick_config(Path("run"), "data.batch_size=32", "optim.lr=0.01", "optim.lr_base_batch=8")
    assert learning_rate(cfg.optim, 32) == pytest.approx(0.04)


def test_gradient_accumulation_equals_the_whole_batch(tmp_path):
    """2 steps of 4 images give the gradients of one batch of 8 (GroupNorm: no batch statistics)."""
    runs = {}
    for name, accumulate in (("whole", 1), ("steps", 2)):
        cfg = segmentation(tmp_path / name, "model.name=engine_train_tiny_gn", "data.batch_size=8", "optim.epochs=2")
        cfg.optim.accumulate = accumulate
        train(cfg, datasets=squares(16))
        runs[name] = weights(tmp_path / name)
    assert_close_weights(runs["steps"], runs["whole"])
    assert not torch.equal(runs["steps"]["0.weight"], create_model("engine_train_tiny_gn").state_dict()["0.weight"])


def test_resume_may_change_the_accumulation_but_not_the_global_batch(tmp_path):
    train(segmentation(tmp_path / "run", "optim.epochs=1"), datasets=squares())
    with pytest.raises(DLAError, match=r"global batch of 4 \(data.batch_size\) and would continue with 8"):
        train(segmentation(tmp_path / "run", "optim.epochs=2", "data.batch_size=8"), resume=True, datasets=squares())
    train(segmentation(tmp_path / "run", "optim.epochs=2", "optim.accumulate=2"), resume=True, datasets=squares())
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["iteration"] == 4


def test_helpers_are_no_ops_in_one_process():
    assert current().world_size == 1 and current().main
    assert list(shard_indices(5)) == [0, 1, 2, 3, 4]
    rows = torch.arange(6).reshape(3, 2)
    assert all_gather_rows(rows) is rows


def test_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DLA_DIST_TIMEOUT", "90")
    assert timeout().total_seconds() == 90
    monkeypatch.setenv("DLA_DIST_TIMEOUT", "soon")
    with pytest.raises(DLAError, match="DLA_DIST_TIMEOUT must be a number of seconds"):
        timeout()


def test_sync_batchnorm_keeps_keys_tensors_and_single_process_behaviour():
    model = create_model("dla34up", num_classes=3)
    before = model.state_dict()
    converted = convert_sync_batchnorm(model)
    norms = [m for m in converted.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, CpuSyncBatchNorm) for m in norms)
    after = converted.state_dict()
    assert list(after) == list(before) and all(after[k] is before[k] or torch.equal(after[k], before[k]) for k in before)
    x = torch.randn(2, 3, 32, 32)
    reference = torch.nn.BatchNorm2d(3)
    synced = convert_sync_batchnorm(torch.nn.BatchNorm2d(3))
    assert torch.equal(synced(x), reference(x)) and torch.equal(synced.running_var, reference.running_var)


def test_nproc_is_not_accepted_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "config.yaml", "--nproc", "2"]) == 2
    assert "under torchrun, leave --nproc out" in capsys.readouterr().err
    assert without_option(["train", "c.yaml", "--nproc", "2", "--set", "a=1", "--nproc=3"], "--nproc") == [
        "train",
        "c.yaml",
        "--set",
        "a=1",
    ]


# --- several processes ---------------------------------------------------------------------------------------


def test_two_processes_train_as_one_and_only_rank_0_writes(tmp_path):
    """Segmentation with SyncBatchNorm: 2 processes x 2 images = 1 process x 4 images; then the 2-process run is
    resumed by 1 process and ends where a 1-process run of 2 epochs does."""
    audit = tmp_path / "audit"
    finished = worker(training(tmp_path / "two", "optim.epochs=1", audit=str(audit)))
    assert "global batch 4 = 2 processes x 2 samples (per process 2)" in finished.stdout
    train(segmentation(tmp_path / "one", "optim.epochs=1"), datasets=squares())
    assert_close_weights(weights(tmp_path / "two"), weights(tmp_path / "one"))
    assert json.loads(Path(f"{audit}.rank1.json").read_text()) == []  # rank 1 created and wrote nothing
    state = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")
    assert (state["iteration"], state["global_batch"], state["processes"]) == (2, 4, 2)

    train(segmentation(tmp_path / "two", "optim.epochs=2"), resume=True, datasets=squares())  # 2 processes, resumed by 1
    train(segmentation(tmp_path / "straight", "optim.epochs=2"), datasets=squares())
    assert_close_weights(weights(tmp_path / "two"), weights(tmp_path / "straight"))


def test_two_processes_train_as_one_in_bf16(tmp_path):
    """``optim.amp: bf16`` (the demo's and the CPU recipes' where the CPU has bf16), SyncBatchNorm on: 2 processes x 2
    images end where 1 process x 4 images does, within what bf16's rounding of a batch of 2 rather than 4 moves."""
    worker(training(tmp_path / "two", "optim.epochs=1", "optim.amp=bf16"))
    train(segmentation(tmp_path / "one", "optim.epochs=1", "optim.amp=bf16"), datasets=squares())
    assert_close_weights(weights(tmp_path / "two"), weights(tmp_path / "one"), tolerance=BF16_TOLERANCE)


def test_one_process_interrupted_by_sigterm_then_resumed_by_two(tmp_path):
    """SIGTERM while one process loads iteration 3's images (its 10th sample read, after the channel check's and
    2 x 4 for the first epoch; mid-epoch 2): it saves iteration 3;
    two processes finish the epoch and end where an uninterrupted run does."""
    train_set, val_set = squares()
    with pytest.raises(KeyboardInterrupt):
        train(segmentation(tmp_path / "run", "optim.epochs=2"), datasets=(Tripwire(train_set, 0, 9, False), val_set))
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["iteration"] == 3
    worker(training(tmp_path / "run", "optim.epochs=2", resume=True))
    train(segmentation(tmp_path / "straight", "optim.epochs=2"), datasets=squares())
    assert_close_weights(weights(tmp_path / "run"), weights(tmp_path / "straight"))
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in logged if "loss" in r] == [1, 2, 3, 4]


def test_two_processes_train_a_classifier_as_one(tmp_path):
    overrides = ["task=classification", "model.name=engine_classify_tiny", "data.batch_size=4", "optim.lr=0.1", "optim.epochs=1"]
    cfg = quick_config(tmp_path / "one", *overrides)
    assert cfg.model.sync_bn is False  # classification's default: each process's own statistics
    worker({"mode": "train", "out_dir": str(tmp_path / "two"), "overrides": [*overrides, "model.sync_bn=true"], "data": "shades"})
    train(cfg, datasets=shades())
    assert_close_weights(weights(tmp_path / "two"), weights(tmp_path / "one"))


def test_deeplabv3_trains_with_one_image_per_process(tmp_path):
    """The image-pooling BatchNorm sees one value per channel in each process; synchronised, two in all, so it
    takes batch statistics (and counts the batch) where one process at batch 1 keeps its running ones."""
    overrides = ("model.name=deeplabv3_resnet50", "data.batch_size=2", "optim.max_iterations=1", "optim.lr=0.01")
    worker(training(tmp_path / "run", *overrides))
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["iteration"] == 1 and state["model"]["classifier.0.convs.4.2.num_batches_tracked"] == 1


def test_distributed_evaluation_gives_exactly_the_single_process_scores(tmp_path):
    root = write_boundary_folder(tmp_path / "boundaries", {"val": 3}, (40, 48))
    worker({"mode": "eval", "out": str(tmp_path / "two.json"), "boundary_root": str(root)})
    distributed = json.loads((tmp_path / "two.json").read_text())
    assert distributed.pop("sync_bn_error") < 1e-12
    bf16 = distributed.pop("sync_bn_bf16")  # statistics in float32 under autocast, running statistics kept float32
    assert bf16["dtypes"] == ["torch.bfloat16", "torch.float32", "torch.float32"]
    assert bf16["output_error"] < 0.05 and bf16["statistics_error"] < 1e-5  # bf16 rounds to 3 significant digits
    single = json.loads(json.dumps(evaluations(root)))
    assert distributed == single
    assert single["boundaries"]["images"] == 3 and sum(map(sum, single["confusion"])) == 5 * 31 * 32


def test_sigterm_on_one_process_stops_both_after_the_same_iteration(tmp_path):
    """Rank 1 alone receives SIGTERM while loading iteration 4's images (its 8th sample read, after the channel
    check's and 3 x 2 for iterations 1-3): both finish iteration 4,
    rank 0 saves it, and the run resumed by one process ends where an uninterrupted one does."""
    trip = {"rank": 1, "after": 7, "crash": False}
    finished = worker(training(tmp_path / "run", "optim.epochs=3", trip=trip), expect_success=False)
    assert finished.returncode != 0 and "interrupted at iteration 4" in finished.stderr + finished.stdout
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["iteration"] == 4
    train(segmentation(tmp_path / "run", "optim.epochs=3"), resume=True, datasets=squares())
    train(segmentation(tmp_path / "straight", "optim.epochs=3"), datasets=squares())
    assert_close_weights(weights(tmp_path / "run"), weights(tmp_path / "straight"))


def test_a_crashed_process_does_not_leave_the_others_waiting(tmp_path):
    trip = {"rank": 1, "after": 5, "crash": True}
    start = time.monotonic()
    finished = worker(training(tmp_path / "run", "optim.epochs=3", trip=trip), expect_success=False, seconds=180)
    assert finished.returncode != 0 and "crashes on purpose" in finished.stderr
    assert time.monotonic() - start < 120
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["iteration"] == 2  # the first epoch's, intact


def test_dla_train_with_nproc_on_the_demo_config_in_bf16(tmp_path):
    """``dla train --nproc 2`` on the packaged demo config (bf16 autocast, SyncBatchNorm), made tiny."""
    out, env = tmp_path / "run", {**os.environ, "OMP_NUM_THREADS": "1"}
    overrides = [
        f"out_dir={out}",
        "optim.amp=bf16",
        "data.options={length: 8, height: 64, width: 64}",
        "data.val_options={length: 2}",
        "data.batch_size=4",
        "optim.max_iterations=2",
        "log.tensorboard=false",
    ]
    command = [sys.executable, "-m", "dla", "train", "--nproc", "2", str(DEMO_CONFIG)]
    finished = subprocess.run(
        command + [f"--set={item}" for item in overrides], env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (state["iteration"], state["processes"], state["config"]["optim"]["amp"]) == (2, 2, "bf16")
    assert all(value.dtype != torch.bfloat16 for value in state["model"].values())  # the running statistics stay fp32


def test_dla_train_and_eval_with_nproc(tmp_path):
    """The command line: ``dla train --nproc 2`` (the synthetic set and DLA-34 2s), then ``dla eval --nproc 2``."""
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "task: segmentation\n"
        "data:\n"
        "  {dataset: synthetic, options: {length: 8, height: 32, width: 32}, crop_size: [32, 32], batch_size: 4, workers: 0}\n"
        "optim: {max_iterations: 2}\n"
        "log: {tensorboard: false}\n"
    )
    out, env = tmp_path / "run", {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dla", "train", "--nproc", "2", str(config), "--set", f"out_dir={out}"]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-4000:]
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (state["iteration"], state["processes"]) == (2, 2)

    checkpoint = str(out / "checkpoints" / "last.pt")
    command = [sys.executable, "-m", "dla", "eval", checkpoint, "--nproc", "2", "--output", str(tmp_path / "two.json")]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert finished.stdout.count("pixel acc") == 1  # only rank 0 prints the table
    single = evaluate_checkpoint(checkpoint, workers=0)
    assert json.loads((tmp_path / "two.json").read_text())["confusion"] == single["confusion"]
