"""``dla bench``: what it measures and reports, on tiny models and inputs. No time is asserted, only structure,
order and the memory measurement's plumbing; gradient checkpointing is checked for exact gradients."""

import copy
import json
import sys

import pytest
import torch
from torch import nn

import dla
from dla.bench import bench, peak, tables
from dla.bench.memory import MemoryConfig, measure_in_child
from dla.bench.workload import meta_model, output_kind
from dla.cli import main
from dla.errors import DLAError
from dla.inference import BACKENDS

TINY = (64, 64)


@pytest.fixture(autouse=True)
def _small_matmul_peak(monkeypatch):
    monkeypatch.setitem(peak.MATMUL_SIZE, "cpu", 64)


class Recorder(nn.Module):
    """A backend's module that logs each call under its backend's name."""

    def __init__(self, name: str, model: nn.Module, calls: list[str]) -> None:
        super().__init__()
        self.name, self.model, self.calls = name, model, calls

    def forward(self, x):
        self.calls.append(self.name)
        return self.model(x)


def test_backends_run_interleaved_eager_first(monkeypatch):
    calls: list[str] = []
    for name in ("eager", "other"):
        monkeypatch.setitem(BACKENDS, name, lambda model, x, name=name: Recorder(name, model, calls))
    result = bench(["dla46_c"], TINY, backends=["other"], threads=1, warmup=1, repeats=3, memory=False)
    assert calls == ["eager", "other"] * 4  # one warm-up round, three timed rounds, round-robin
    assert [row.backend for row in result.inference] == ["eager", "other"]
    assert result.inference[0].speedup == 1.0
    assert len(result.inference[1].latency.samples_ms) == 3


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "dla46_c", "--size", "64", "64", "--batch", "2", "--repeats", "1", "--threads", "1"]
    assert main([*argv, "--num-classes", "10", "--json", str(path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| model | backend | output | params (M) | GMACs | median (ms) | p90 (ms) | img/s (batch 2) |" in out
    assert "| dla46_c | fast | logits |" in out
    saved = json.loads(path.read_text())
    assert set(saved) == {"machine", "peaks", "settings", "inference", "sweep", "train"}
    assert {"cpu", "cores", "threads", "torch", "native_bf16"} <= set(saved["machine"])
    assert saved["peaks"]["fp32"] > 0
    row = saved["inference"][1]
    assert {"params", "macs", "latency", "throughput", "images_per_s", "gflops", "percent_of_peak", "speedup", "memory"} <= set(
        row
    )
    assert row["size"] == [64, 64] and row["batch"] == 2
    assert row["memory"]["peak_mib"] >= row["memory"]["baseline_mib"] > 0


def test_memory_is_measured_per_configuration_in_a_child():
    small = measure_in_child(MemoryConfig("dla46_c", (64, 64), 1, threads=1))
    large = measure_in_child(MemoryConfig("dla46_c", (256, 256), 4, threads=1))
    assert 0 < small.baseline_mib <= small.peak_mib
    assert large.peak_mib - large.baseline_mib > small.peak_mib - small.baseline_mib


def test_sweep_rows_and_growth_per_pixel():
    result = bench(
        ["dla46_c"],
        TINY,
        threads=1,
        warmup=0,
        repeats=1,
        memory=False,
        sweep=True,
        sweep_sizes=[(64, 48), (32, 32)],
        sweep_batches=(1, 2),
    )
    assert [(r.size, r.batch, r.backend) for r in result.sweep[:4]] == [
        ((32, 32), 1, "eager"),
        ((32, 32), 1, "fast"),
        ((32, 32), 2, "eager"),
        ((32, 32), 2, "fast"),
    ]
    assert len(result.sweep) == 8
    assert all(r.growth_per_pixel == 1.0 for r in result.sweep[:4])
    assert all(r.ms_per_megapixel > 0 for r in result.sweep)
    assert [title.split(" ")[0] for title, _, _ in tables(result)] == ["Inference", "Sweep:"]


def test_train_mode_times_eager_and_fast_steps():
    result = bench(
        ["dlaup"],
        TINY,
        2,
        threads=1,
        warmup=0,
        repeats=1,
        memory=False,
        train=True,
        model_kwargs={"backbone": "dla46_c", "num_classes": 3},
    )
    assert [(r.setting, r.batch) for r in result.train] == [("eager", 2), ("fast", 2)]
    assert all(r.images_per_s > 0 for r in result.train)
    assert tables(result)[-1][1][:3] == ["model", "setting", "bf16"]


@pytest.mark.parametrize("name, kwargs", [("dla46_c", {}), ("dlaup", {"backbone": "dla46_c"})])
def test_grad_checkpointing_gives_the_plain_gradients(name, kwargs):
    plain = dla.create_model(name, num_classes=4, **kwargs).double().train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpointing()
    level2_runs = []
    checkpointed.get_submodule("level2" if name == "dla46_c" else "base.level2").register_forward_pre_hook(
        lambda *_: level2_runs.append(1)
    )
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    for model in (plain, checkpointed):
        model(x).square().mean().backward()
    assert len(level2_runs) == 2  # forward, then the recomputation in the backward pass (entered)
    assert plain.state_dict().keys() == checkpointed.state_dict().keys()
    for (key, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), key
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-12, msg=key)
    for a, b in zip(plain.buffers(), checkpointed.buffers(), strict=True):  # BatchNorm statistics updated once
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_output_kind_follows_the_output_shape():
    shape = (1, 3, 64, 48)
    assert output_kind(meta_model("dla46_c", {}), shape) == "logits"
    assert output_kind(meta_model("dlaup", {"backbone": "dla46_c"}), shape) == "argmax"
    assert output_kind(meta_model("dla34edge", {}), shape) == "sigmoid"


def test_bad_input_is_refused(monkeypatch):
    with pytest.raises(DLAError, match="unknown backend 'nope'; known backends: eager, fast"):
        bench(["dla46_c"], TINY, backends=["fast", "nope"], memory=False)
    with pytest.raises(DLAError, match="unknown model 'dla35'; known models: dla34, "):
        bench(["dla34", "dla35"], TINY, memory=False)
    with pytest.raises(DLAError, match="H W"):
        bench(["dla46_c"], (64,), memory=False)
    with pytest.raises(DLAError, match="repeats must be at least 1"):
        bench(["dla46_c"], TINY, repeats=0, memory=False)

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with pytest.raises(DLAError, match=r"pip install 'dla\[export\]'"):
        bench(["dla46_c"], TINY, backends=["onnxruntime"], threads=1, repeats=1, memory=False)


def test_tiled_inference_memory_grows_with_the_window_not_the_image():
    whole = measure_in_child(MemoryConfig("dlaup", (256, 384), 1, threads=1, model_kwargs={"backbone": "dla46_c"}))
    tiled = measure_in_child(
        MemoryConfig("dlaup", (256, 384), 1, threads=1, model_kwargs={"backbone": "dla46_c"}, window=(64, 64))
    )
    assert tiled.peak_mib - tiled.baseline_mib < whole.peak_mib - whole.baseline_mib
    result = bench(
        ["dlaup"], (64, 96), model_kwargs={"backbone": "dla46_c"}, threads=1, warmup=0, repeats=1, memory=False, window=(32, 48)
    )
    assert result.settings["window"] == (32, 48) and [row.output for row in result.inference] == ["argmax", "argmax"]
