"""The fast path: BatchNorm folding finds exactly the foldable pairs and keeps every model's outputs, and
``optimize`` keeps the predictions (agreement, not timings: speed is measured by ``dla bench``)."""

import pytest
import torch
from PIL import Image
from torch import nn

import dla
from dla.cli import main
from dla.commands.evaluate import evaluate_checkpoint
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.inference import FastModel, conv_bn_pairs, example_input, fold_batchnorm, get_backend, native_bf16, optimize
from dla.inference.tiled import SlidingWindow
from dla.models._registry import model_entrypoint
from engine_runs import quick_config

LIBRARY_MODELS = [name for name in dla.list_models() if model_entrypoint(name).__module__.startswith("dla.models.")]


def randomize_norms(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so that a wrong fold shows."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_folding_keeps_every_registered_model_s_outputs(name):
    model = randomize_norms(dla.create_model(name))
    x = torch.randn(1, 3, 97, 131)
    folded = fold_batchnorm(model, x)
    with torch.no_grad():
        assert relative_error(folded(x), model(x)) < 1e-5
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original is untouched"
    if name.startswith(("resnet", "deeplabv3", "dfanet")):  # every BatchNorm there follows a convolution
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())


class Residual(nn.Module):
    """conv -> bn, but the convolution's output is also added back: folding would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class InPlace(nn.Module):
    """conv, an in-place change of its output, then bn: the BatchNorm does not see the convolution's output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        y += 1
        return self.bn(y)


class SharedNorm(nn.Module):
    """One BatchNorm after two convolutions: it cannot fold into both."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.bn = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(self.a(x)) + self.bn(self.b(x))


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1, bias=True), nn.BatchNorm2d(3)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


@pytest.mark.parametrize("module", [Residual, InPlace, SharedNorm])
def test_pairs_that_would_change_the_result_are_not_folded(module):
    model = randomize_norms(module())
    x = torch.randn(2, 3, 8, 8)
    assert conv_bn_pairs(model, x) == []
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(model, x)(x), model(x))


def test_a_convolution_with_a_bias_folds():
    model = randomize_norms(Plain())
    x = torch.randn(2, 3, 8, 8)
    assert conv_bn_pairs(model, x) == [("conv", "bn")]
    folded = fold_batchnorm(model, x)
    assert isinstance(folded.bn, nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_training_mode_batchnorm_is_not_folded():
    model = randomize_norms(Plain()).train()
    assert conv_bn_pairs(model, torch.randn(2, 3, 8, 8)) == []


def test_fp32_fast_path_matches_eager():
    model = randomize_norms(dla.create_model("dla34up", num_classes=5))
    x = torch.randn(1, 3, 97, 131)
    fast = optimize(model, precision="fp32", example=x)
    assert isinstance(fast, FastModel) and fast.dtype == torch.float32
    with torch.no_grad():
        out = fast(x)
        assert out.dtype == torch.float32
        assert relative_error(out, model(x)) < 1e-4


@pytest.mark.skipif(not native_bf16(), reason="the CPU has no native bfloat16")
def test_bf16_fast_path_agrees_with_eager_on_confident_predictions():
    """bf16 rounds logits to 8 bits of mantissa: the argmax may differ only where two classes nearly tie."""
    torch.manual_seed(0)
    model = randomize_norms(dla.create_model("dla46_c", num_classes=10))
    x = torch.randn(16, 3, 64, 64)
    fast = optimize(model, example=x[:1])
    assert fast.dtype == torch.bfloat16
    with torch.no_grad():
        expected, actual = model(x), fast(x)
    top2 = expected.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05 * top2.abs().max()
    assert clear.any()
    assert torch.equal(actual.argmax(1)[clear], expected.argmax(1)[clear])
    assert relative_error(actual, expected) < 0.05


def test_precision_is_checked_and_backends_are_named():
    model = Plain()
    with pytest.raises(DLAError, match="precision"):
        optimize(model, precision="fp16")
    with pytest.raises(DLAError, match="known backends: eager, fast"):
        get_backend("tensorrt")
    assert get_backend("eager")(model, torch.zeros(1, 3, 8, 8)) is model


def test_optimize_leaves_the_model_trainable():
    model = Plain().train()
    optimize(model, precision="fp32", example=torch.zeros(1, 3, 8, 8))
    assert model.training and isinstance(model.bn, nn.BatchNorm2d)


def test_tiling_a_local_model_equals_the_whole_image():
    """A 1x1 convolution sees no context, so windows (overlapping, the last moved back to the edge) change nothing."""
    model = nn.Conv2d(3, 4, 1)
    x = torch.randn(2, 3, 50, 70)
    with torch.no_grad():
        torch.testing.assert_close(SlidingWindow(model, (20, 30))(x), model(x))
        torch.testing.assert_close(SlidingWindow(model, (64, 96))(x), model(x))  # one window, padded


def test_the_fast_path_keeps_deeplabv3_s_switchable_output_stride():
    model = randomize_norms(dla.create_model("deeplabv3_resnet50", num_classes=3))
    x = torch.randn(1, 3, 65, 65)
    fast = optimize(model, precision="fp32", example=x)
    model.set_output_stride(8)
    fast.set_output_stride(8)
    assert fast.output_stride == 8
    with torch.no_grad():
        assert relative_error(fast(x), model(x)) < 1e-4
    with pytest.raises(DLAError, match="cannot change its output stride"):
        optimize(Plain(), precision="fp32", example=torch.zeros(1, 3, 8, 8)).set_output_stride(8)


def test_eval_and_predict_run_the_fast_backend(tmp_path):
    """``dla eval/predict --backend fast`` run the prepared model through the task's own pre- and post-processing."""

    options = "data.options={length: 4, height: 32, width: 32}"
    overrides = ("model.name=engine_train_tiny", "data.dataset=synthetic", options, "data.crop_size=[32, 32]")
    train(quick_config(tmp_path / "run", *overrides, "data.batch_size=2", "optim.epochs=1", "optim.lr=0.1"))
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.pt")
    eager = evaluate_checkpoint(checkpoint, workers=0)
    fast = evaluate_checkpoint(checkpoint, workers=0, backend="fast")
    assert fast["miou"] == pytest.approx(eager["miou"], abs=0.02)
    Image.new("RGB", (37, 45), (120, 30, 200)).save(tmp_path / "image.png")
    assert (
        main(
            [
                "predict",
                str(tmp_path / "image.png"),
                "--checkpoint",
                checkpoint,
                "--out",
                str(tmp_path / "out"),
                "--backend",
                "fast",
            ]
        )
        == 0
    )
    assert (tmp_path / "out" / "image_mask.png").exists()


def test_auto_precision_falls_back_to_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not native_bf16()
    assert optimize(Plain(), example=torch.zeros(1, 3, 8, 8)).dtype == torch.float32
    assert optimize(Plain(), precision="bf16", example=torch.zeros(1, 3, 8, 8)).dtype == torch.bfloat16


def test_a_grey_scale_model_is_prepared_with_its_own_input_channels():
    model = randomize_norms(dla.create_model("dla46_c", num_classes=4, in_chans=1))
    assert example_input(model).shape == (1, 1, 224, 224)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert relative_error(optimize(model, precision="fp32")(x), model(x)) < 1e-4
