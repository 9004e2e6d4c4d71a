"""ONNX export checked against onnxruntime: one model of every family, dynamic sizes, and the CLI round trip.

Tolerances (docs/export.md): relative error = max|onnx - torch| / max|torch| over the whole output, at most
1e-3; the argmax over classes agrees on at least 99.9 % of pixels (one logit per pixel, boundaries: its sign;
classification: the top-1 class is equal). The reference is the eager fp32 model *without* BatchNorm folded.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import dla  # noqa: E402
from dla.cli import main  # noqa: E402
from dla.commands.evaluate import evaluate_checkpoint  # noqa: E402
from dla.commands.export import export_model  # noqa: E402
from dla.engine.trainer import train  # noqa: E402
from dla.errors import DLAError  # noqa: E402
from dla.inference import get_backend  # noqa: E402
from dla.inference.onnx import OnnxRuntimeModel, export_onnx  # noqa: E402
from engine_runs import quick_config  # noqa: E402

FAMILIES = {  # name -> num_classes (None: the model's own)
    "dla34": 10,
    "dla34up": 5,
    "dla34edge": None,
    "deeplabv3_resnet50": 5,
    "ladder_densenet121": 5,
    "dfanet_a": 5,
}
EXPORT_SIZE = (128, 160)  # at 64 x 96 the Ladder DenseNet's coarsest maps reach size 1, which torch.export specialises
CHECK_SIZES = [(97, 131), (150, 222)]  # not multiples of 32


def randomise_batchnorm(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Running statistics and affine parameters away from (0, 1, 1, 0), so that folding changes the weights."""
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5, generator=generator)
                bn.running_var.uniform_(0.5, 2.0, generator=generator)
                bn.weight.uniform_(0.5, 1.5, generator=generator)
                bn.bias.uniform_(-0.5, 0.5, generator=generator)


SLOW = {"ladder_densenet121"}  # ~35 s of symbolic shape reasoning in torch.export on one core


@pytest.fixture(
    scope="module", params=[pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else []) for name in FAMILIES]
)
def exported(request, tmp_path_factory):
    """``(model, graph)``: a model in eval mode with random BatchNorm statistics, and its export run by onnxruntime."""
    name, num_classes = request.param, FAMILIES[request.param]
    torch.manual_seed(0)
    model = dla.create_model(name, **({} if num_classes is None else {"num_classes": num_classes})).eval()
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    path = export_onnx(model, tmp_path_factory.mktemp(name) / f"{name}.onnx", input_size=EXPORT_SIZE)
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)  # the caller's model is untouched
    return model, OnnxRuntimeModel.from_file(path, threads=1)


@pytest.mark.parametrize("size", CHECK_SIZES)
def test_onnxruntime_matches_the_model_at_sizes_it_was_not_exported_at(exported, size):
    model, graph = exported
    image = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(size[0]))
    with torch.no_grad():
        expected = model(image)
    out = graph.eval()(image)
    assert out.shape == expected.shape and out.dtype == torch.float32
    assert float((out - expected).abs().max() / expected.abs().max()) <= 1e-3
    if expected.dim() == 2:  # classification
        assert torch.equal(out.argmax(1), expected.argmax(1))
    else:
        agree = (out > 0) == (expected > 0) if expected.shape[1] == 1 else out.argmax(1) == expected.argmax(1)
        assert agree.float().mean() >= 0.999


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny segmentation run on synthetic shapes: ``(checkpoint, its ONNX export by the CLI, an image)``."""
    root = tmp_path_factory.mktemp("run")
    options = "data.options={length: 4, height: 32, width: 32}"
    overrides = ("model.name=engine_train_tiny", "data.dataset=synthetic", options, "data.crop_size=[32, 32]")
    train(quick_config(root / "run", *overrides, "data.batch_size=2", "optim.epochs=1", "optim.lr=0.1"))
    checkpoint = root / "run" / "checkpoints" / "last.pt"
    onnx = root / "model.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(onnx), "--size", "40", "48"]) == 0
    image = root / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 45, 3), dtype=np.uint8)).save(image)
    return checkpoint, onnx, image


def test_eval_of_the_export_gives_the_checkpoints_scores(run):
    checkpoint, onnx, _ = run
    of_checkpoint = evaluate_checkpoint(str(checkpoint), workers=0, flip=True)
    of_onnx = evaluate_checkpoint(str(onnx), workers=0, flip=True)
    by_backend = evaluate_checkpoint(str(checkpoint), workers=0, flip=True, backend="onnxruntime")
    assert of_onnx["miou"] == pytest.approx(of_checkpoint["miou"], abs=1e-6)
    assert by_backend["miou"] == pytest.approx(of_checkpoint["miou"], abs=1e-6)
    assert {key: of_onnx[key] for key in ("model", "task", "dataset", "classes", "eval")} == {
        key: of_checkpoint[key] for key in ("model", "task", "dataset", "classes", "eval")
    }


def test_predict_writes_the_same_masks_with_onnxruntime(run, tmp_path):
    checkpoint, onnx, image = run
    for name, source, backend in [("eager", checkpoint, []), ("backend", checkpoint, ["--backend", "onnxruntime"])]:
        assert main(["predict", str(image), "--checkpoint", str(source), "--out", str(tmp_path / name), *backend]) == 0
    assert main(["predict", str(image), "--checkpoint", str(onnx), "--out", str(tmp_path / "onnx")]) == 0
    masks = [np.asarray(Image.open(tmp_path / name / "image_mask.png")) for name in ("eager", "backend", "onnx")]
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[0], masks[2])


def test_an_export_describes_itself(run):
    checkpoint, onnx, _ = run
    metadata = OnnxRuntimeModel.from_file(onnx).metadata
    assert metadata["dla.model_name"] == "engine_train_tiny" and metadata["dla.task"] == "segmentation"
    assert metadata["dla.source"] == checkpoint.name and metadata["dla.code_version"]
    assert json.loads(metadata["dla.config"])["data"]["dataset"] == "synthetic"
    assert len(json.loads(metadata["dla.dataset_meta"])["classes"]) == json.loads(metadata["dla.model_kwargs"])["num_classes"]
    assert "normalised" in metadata["dla.input"]


def test_what_an_export_cannot_do_is_a_dla_error(run, tmp_path):
    checkpoint, onnx, _ = run
    with pytest.raises(DLAError, match="exported without an output stride"):
        evaluate_checkpoint(str(onnx), workers=0, output_stride=8)
    with pytest.raises(DLAError, match="runs on onnxruntime"):
        evaluate_checkpoint(str(onnx), workers=0, backend="eager")
    with pytest.raises(DLAError, match="--num-classes applies to a model name"):
        export_model(checkpoint, tmp_path / "x.onnx", num_classes=3)
    with pytest.raises(DLAError, match="unknown model"):
        export_model("no_such_model", tmp_path / "x.onnx")
    with pytest.raises(DLAError, match="not found"):
        OnnxRuntimeModel.from_file(tmp_path / "missing.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(DLAError, match="broken.onnx"):
        OnnxRuntimeModel.from_file(tmp_path / "broken.onnx")


def test_an_export_of_a_model_name_has_no_run_to_evaluate(tmp_path):
    assert main(["export", "engine_train_tiny", "--out", str(tmp_path / "tiny.onnx"), "--num-classes", "4"]) == 0
    graph = OnnxRuntimeModel.from_file(tmp_path / "tiny.onnx")
    assert graph(torch.zeros(1, 3, 33, 35)).shape == (1, 4, 33, 35)
    with pytest.raises(DLAError, match="has no run in its metadata"):
        evaluate_checkpoint(str(tmp_path / "tiny.onnx"), workers=0)


def test_a_grey_scale_model_is_exported_with_one_input_channel(tmp_path):
    model = dla.create_model("engine_train_tiny", num_classes=2, in_chans=1).eval()
    graph = OnnxRuntimeModel.from_file(export_onnx(model, tmp_path / "grey.onnx", input_size=(40, 48)))
    x = torch.randn(1, 1, 33, 35)
    with torch.no_grad():
        torch.testing.assert_close(graph(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "package, backend, advice",
    [("onnxruntime", "onnxruntime", "dla\\[export\\]"), ("openvino", "openvino", "pip install openvino")],
)
def test_missing_packages_say_how_to_install_them(monkeypatch, package, backend, advice):
    monkeypatch.setitem(sys.modules, package, None)  # import package raises ImportError
    model = dla.create_model("engine_train_tiny").eval()
    with pytest.raises(DLAError, match=advice):
        get_backend(backend)(model, torch.zeros(1, 3, 32, 32))


def fail(*args, **kwargs):
    raise RuntimeError("interrupted")


def test_the_exported_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    model = dla.create_model("engine_train_tiny").eval()
    monkeypatch.setattr(os, "replace", fail)  # the file is written, then the rename fails
    with pytest.raises(RuntimeError, match="interrupted"):
        export_onnx(model, target)
    monkeypatch.setattr(torch.onnx, "export", fail)  # the exporter fails
    with pytest.raises(DLAError, match="cannot export Sequential to ONNX: interrupted"):
        export_onnx(model, target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_graph_on_onnxruntime_has_no_parameters(run):
    graph = OnnxRuntimeModel.from_file(run[1])
    assert list(graph.parameters()) == [] and graph.eval() is graph and graph.output_stride is None
    assert Path(graph.name) == run[1]
