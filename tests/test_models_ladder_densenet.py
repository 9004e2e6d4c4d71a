"""Ladder-style DenseNet: the Table 1 variants at odd sizes, the auxiliary output, the context's subsampling,
the layout of Sec. 3, batch size 1, frozen BatchNorm (Table 4), ImageNet weights in torchvision's old format."""

import re

import pytest
import torch
from torch import nn

from dla.errors import DLAError
from dla.models import create_model
from dla.models.ladder_densenet import SPPContext, build_ladder_densenet

VARIANTS = [
    ("ladder_densenet121", {}),
    ("ladder_densenet169", {}),
    ("ladder_densenet121", {"upsampling": False}),
    ("ladder_densenet121", {"aux": False}),
    ("ladder_densenet121", {"split3": True}),
    ("ladder_densenet121", {"context": "spp"}),
    ("ladder_densenet121", {"freeze_bn": True}),
]


@pytest.mark.parametrize("name, kwargs", VARIANTS)
def test_logits_at_odd_sizes_and_aux_only_in_training(name, kwargs):
    model = create_model(name, num_classes=5, **kwargs)
    x = torch.randn(2, 3, 97, 131)
    out = model(x)
    with_aux = kwargs.get("aux", True) and kwargs.get("upsampling", True)
    if with_aux:
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 5, 97, 131)] * 2
    else:
        assert out.shape == (2, 5, 97, 131)
    assert model.eval()(x).shape == (2, 5, 97, 131)


@pytest.mark.parametrize("kwargs, stride, num_tus", [({}, 64, 4), ({"split3": True}, 128, 5), ({"upsampling": False}, 32, 0)])
def test_subsampling_of_the_context(kwargs, stride, num_tus):
    """Sec. 3: DB4 split by a pooling puts the context at 64x; split3+4 at 128x; the baseline stays at 32x."""
    model = create_model("ladder_densenet121", **kwargs).eval()
    sizes = []
    model.context.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape)))
    model(torch.zeros(1, 3, 256, 512))
    assert model.context_stride == stride and sizes == [(1, 128, 256 // stride, 512 // stride)]
    assert len(model.transitions_up) == num_tus


def test_layout_of_sec_3():
    model = create_model("ladder_densenet169")
    project, conv = model.context.project, model.context.conv
    assert (project.in_channels, project.out_channels, project.kernel_size) == (1664, 512, (1, 1))
    assert (conv.conv.out_channels, conv.conv.kernel_size, conv.conv.dilation) == (128, (3, 3), (2, 2))
    assert isinstance(conv.norm, nn.BatchNorm2d)  # pre-activation: BN-ReLU-conv (Sec. 4)
    # skips from every dense block, coarsest first: DB4a (640 + 16 * 32 = 1152), DB3, DB2, DB1
    assert [tu.project.conv.in_channels for tu in model.transitions_up] == [1152, 1280, 512, 256]
    # projection to the coarse path's width, concatenation, one 3x3 convolution
    assert all(
        tu.project.conv.out_channels == 128 and tu.blend.conv.in_channels == 256 and tu.blend.conv.kernel_size == (3, 3)
        for tu in model.transitions_up
    )
    assert model.aux_logits.conv.in_channels == 128
    assert model.pretrained_cfg.classifier == ("logits.conv", "aux_logits.conv")
    assert model.pretrained_cfg.paper_name == "LadderDenseNet-169 4x"
    split3 = create_model("ladder_densenet121", split3=True)
    assert [tu.project.conv.in_channels for tu in split3.transitions_up] == [768, 1024, 640, 512, 256]
    assert create_model("ladder_densenet121", context="spp").pretrained_cfg.paper_name == "LadderDenseNet-121 4x SPP"


@pytest.mark.parametrize("context", ["simple", "spp"])
def test_batch_of_one_trains(context):
    model = create_model("ladder_densenet121", num_classes=3, context=context).train()
    logits, aux = model(torch.randn(1, 3, 97, 131))
    (0.7 * logits.mean() + 0.3 * aux.mean()).backward()
    assert model.backbone.features.conv0.weight.grad is not None and model.context.project.weight.grad is not None
    if context == "spp":
        assert isinstance(model.context, SPPContext) and model.context.levels[0][0].output_size == 1


def test_frozen_batchnorm_stays_frozen_after_train():
    model = create_model("ladder_densenet121", num_classes=3, freeze_bn=True)
    model.eval().train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    logits, aux = model(torch.randn(2, 3, 97, 131))
    (logits.mean() + aux.mean()).backward()
    # Table 4: all BatchNorm layers in inference mode, the backbone's and the upsampling path's alike
    assert all(not m.training and not m.weight.requires_grad and m.weight.grad is None for m in norms)
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=True))
    assert model.transitions_up[0].project.norm in norms
    assert model.backbone.features.conv0.weight.grad is not None and model.training


def test_imagenet_backbone_loads_from_a_torchvision_file(tmp_path):
    source = create_model("densenet121").state_dict()
    old = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in source.items()}
    path = tmp_path / "densenet121-a639ec97.pth"
    torch.save(old, path)
    model = create_model("ladder_densenet121", pretrained_backbone=str(path))
    loaded = model.backbone.state_dict()
    assert "classifier.weight" not in loaded and all(torch.equal(loaded[k], source[k]) for k in loaded)


def test_a_checkpoint_with_other_classes_keeps_all_but_the_classifiers(tmp_path):
    source = create_model("ladder_densenet121", num_classes=19)
    torch.save({"model": source.state_dict()}, tmp_path / "cityscapes.pth")
    model = create_model("ladder_densenet121", pretrained=str(tmp_path / "cityscapes.pth"), num_classes=21)
    assert model.logits.conv.out_channels == 21
    assert torch.equal(model.logits.norm.weight, source.logits.norm.weight)
    assert torch.equal(model.transitions_up[3].blend.conv.weight, source.transitions_up[3].blend.conv.weight)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_stride": 16}, "output_stride must be 32"),
        ({"context": "aspp"}, "context must be"),
        ({"split3": True, "upsampling": False}, "needs upsampling=True"),
        ({"backbone": "resnet18"}, "must be a DenseNet"),
    ],
)
def test_invalid_arguments_raise_dla_error(kwargs, message):
    with pytest.raises(DLAError, match=message):
        build_ladder_densenet(**kwargs)
