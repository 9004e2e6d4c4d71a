"""DLA segmentation networks (Sec. 4.2, Fig. 4) against the authors' DLASeg layouts and counts."""

import re

import pytest
import torch
import torch.nn.functional as F

import dla
from conftest import read_keys, state_dict_from_layout, state_dict_layout
from dla.complexity import count_macs, count_params
from dla.layers.upsample import BilinearUpsample

REFERENCE_MODELS = [
    "dla34up_c19_down2",
    "dla60up_c19_down2",
    "dla102up_c19_down2",
    "dla169up_c19_down2",
    "dla34up_c19_down4",
    "dla34up_c19_down8",
    "dla34up_c11_down2",
]


def reference_args(reference):
    name, classes, down = re.fullmatch(r"(dla\d+up)_c(\d+)_down(\d+)", reference).groups()
    return name, dict(num_classes=int(classes), down_ratio=int(down))


def meta_model(name, **kwargs):
    with torch.device("meta"):
        return dla.create_model(name, **kwargs)


@pytest.mark.parametrize("reference", REFERENCE_MODELS)
def test_layout_params_and_macs_equal_the_authors(reference, counts):
    name, kwargs = reference_args(reference)
    model = meta_model(name, **kwargs)
    assert state_dict_layout(model) == read_keys(reference)
    assert count_params(model) == counts[reference]["params"]
    assert count_macs(model.eval(), counts[reference]["input"]) == counts[reference]["macs"]


def test_authors_checkpoint_loads_strictly():
    name, kwargs = reference_args("dla34up_c19_down4")
    state_dict = state_dict_from_layout(read_keys("dla34up_c19_down4"))
    model = dla.create_model(name, **kwargs)
    model.load_state_dict(state_dict, strict=True)
    assert torch.equal(model.state_dict()["dla_up.ida_2.up_3.weight"], state_dict["dla_up.ida_2.up_3.weight"])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("dla34up", dict(num_classes=11)),
        ("dla34up", dict(num_classes=11, down_ratio=8)),
        ("dlaup", dict(backbone="dla46_c", num_classes=5, down_ratio=4)),
        ("dlaup", dict(backbone="dla46x_c", num_classes=5, decoder="paper")),
        ("dlaup", dict(backbone="dla60x_c", num_classes=5, down_ratio=16)),
    ],
)
@pytest.mark.parametrize("size", [(64, 64), (97, 131)])
def test_logits_at_input_resolution_in_train_and_eval(name, kwargs, size):
    model = dla.create_model(name, **kwargs)
    out = model.train()(torch.randn(1, 3, *size))  # batch size 1 trains
    assert out.shape == (1, kwargs["num_classes"], *size)
    out.logsumexp(1).mean().backward()
    unused = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    assert all(".project." in n or n.startswith("base.fc.") for n in unused), sorted(unused)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, *size)).shape == (2, kwargs["num_classes"], *size)


def test_final_upsampling_is_frozen_bilinear_and_decoder_upsampling_learns():
    model = dla.create_model("dla34up", num_classes=3, down_ratio=4)
    assert not model.up.weight.requires_grad
    assert model.dla_up.ida_0.up_1.weight.requires_grad
    x = torch.randn(1, 3, 6, 6)
    up = BilinearUpsample(3, 2)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up(x)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])  # borders see zero padding


def test_upsampling_stays_in_fp32_under_cpu_autocast_and_still_learns():
    up, x = BilinearUpsample(4, 4), torch.randn(2, 4, 5, 5)
    expected = up(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = up(x.bfloat16())
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, expected, atol=0.02, rtol=0.02)  # only the input was rounded to bf16
    y.sum().backward()
    assert up.weight.grad is not None and up.weight.grad.dtype == torch.float32


def test_paper_decoder_projects_every_level_to_32_channels():
    model = dla.create_model("dla34up", num_classes=11, decoder="paper")
    ida_up = model.dla_up.ida_up
    assert [ida_up.get_submodule(f"proj_{i}")[0].out_channels for i in range(1, 5)] == [32] * 4
    assert [ida_up.get_submodule(f"up_{i}").factor for i in range(1, 5)] == [2, 4, 8, 16]
    assert model.fc[0].in_channels == 32


def test_backbone_weights_load_into_the_backbone(tmp_path):
    backbone = dla.create_model("dla34")
    path = tmp_path / "dla34.pth"
    torch.save(backbone.state_dict(), path)
    model = dla.create_model("dla34up", num_classes=11, pretrained_backbone=str(path))
    for key, value in backbone.state_dict().items():
        assert torch.equal(model.base.state_dict()[key], value), key


def test_segmentation_checkpoint_with_other_classes_keeps_all_but_the_head(tmp_path):
    source = dla.create_model("dla34up", num_classes=19, down_ratio=8)
    path = tmp_path / "seg.pth"
    torch.save({"model": source.state_dict()}, path)
    model = dla.create_model("dla34up", num_classes=11, down_ratio=8, pretrained=str(path))
    loaded, original = model.state_dict(), source.state_dict()
    assert model.fc[0].out_channels == 11 and model.up.weight.shape[0] == 11
    assert all(torch.equal(loaded[k], v) for k, v in original.items() if not k.startswith(("fc.", "up.")))


def test_ida_up_is_fig4():
    ida_up = dla.IDAUp([4, 6, 8], 4, [1, 2, 4]).eval()
    xs = [torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4), torch.randn(1, 8, 2, 2)]
    with torch.no_grad():
        first, second = ida_up(xs)
        up1 = ida_up.up_1(ida_up.proj_1(xs[1]))
        up2 = ida_up.up_2(ida_up.proj_2(xs[2]))
        torch.testing.assert_close(first, ida_up.node_1(torch.cat([xs[0], up1], 1)))
        torch.testing.assert_close(second, ida_up.node_2(torch.cat([first, up2], 1)))
    assert isinstance(ida_up.proj_0, torch.nn.Identity) and isinstance(ida_up.up_0, torch.nn.Identity)


@pytest.mark.parametrize(
    "kwargs",
    [dict(down_ratio=3), dict(decoder="fpn"), dict(output_stride=16), dict(backbone="nope"), dict(backbone="dla34up")],
)
def test_invalid_arguments_raise_dla_error(kwargs):
    with pytest.raises(dla.DLAError):
        meta_model("dlaup", num_classes=3, **kwargs)


def test_segmentation_models_are_not_feature_backbones():
    with pytest.raises(dla.DLAError, match="features_only"):
        meta_model("dla34up", features_only=True)


def test_a_built_backbone_is_taken_as_it_is():
    """``DLASeg.__init__`` takes the built backbone (weights are loaded by the builder, before)."""
    backbone = dla.create_model("dla46_c")
    model = dla.DLASeg(backbone, num_classes=3, down_ratio=4)
    assert model.base is backbone and model.pretrained_cfg.paper_name == "DLA-46-C 4s"
    assert dla.create_model("dlaup", backbone=backbone, num_classes=3).base is backbone
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 45, 61)).shape == (1, 3, 45, 61)
