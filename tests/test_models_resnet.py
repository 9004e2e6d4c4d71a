"""ResNet with torchvision's layout: parameter counts (the DenseNets' too), keys, atrous rates and multi-grid,
features, weights files."""

import pytest
import torch

from dla.complexity import count_params
from dla.errors import DLAError
from dla.models import create_model

# torchvision's published parameter counts of its ImageNet ResNets and DenseNets (the models' documentation pages)
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
}


@pytest.mark.parametrize("name", TORCHVISION_PARAMS)
def test_parameter_counts_are_torchvisions(name):
    with torch.device("meta"):
        model = create_model(name)
    assert count_params(model) == TORCHVISION_PARAMS[name]


def test_state_dict_keys_follow_torchvision():
    keys = list(create_model("resnet50").state_dict())
    assert keys[:7] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
    ]
    assert "layer1.0.downsample.0.weight" in keys and "layer1.0.downsample.1.running_var" in keys
    assert "layer4.2.conv3.weight" in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    assert "layer1.0.downsample.0.weight" not in create_model("resnet34").state_dict()  # basic blocks: 64 -> 64


@pytest.mark.parametrize(
    "output_stride, layer3, layer4", [(32, [1, 1], [1, 1, 1]), (16, [1, 1], [1, 2, 2]), (8, [1, 2], [2, 4, 4])]
)
def test_atrous_rates_are_torchvisions(output_stride, layer3, layer4):
    model = create_model("resnet50", output_stride=output_stride)
    assert [b.conv2.dilation[0] for b in model.layer3][:2] == layer3
    assert [b.conv2.dilation[0] for b in model.layer4] == layer4
    assert model.forward_features(torch.zeros(1, 3, 64, 64)).shape[-1] == 64 // output_stride


def test_multi_grid_rates_are_relative_to_the_stage_rate():
    """DeepLabv3 Sec. 3.2.1: output stride 16 and Multi_Grid (1, 2, 4) give rates (2, 4, 8)."""
    model = create_model("resnet101", output_stride=16, multi_grid=(1, 2, 4))
    assert [b.conv2.dilation[0] for b in model.layer4] == [2, 4, 8]
    assert [b.conv2.padding[0] for b in model.layer4] == [2, 4, 8]
    with pytest.raises(DLAError, match="one rate per block of the last stage"):
        create_model("resnet50", multi_grid=(1, 2))
    with pytest.raises(DLAError, match="output_stride must be 8, 16 or 32"):
        create_model("resnet50", output_stride=4)


def test_features_head_and_odd_sizes():
    model = create_model("resnet18", num_classes=7).eval()
    assert model(torch.zeros(2, 3, 97, 129)).shape == (2, 7)
    features = create_model("resnet18", features_only=True, out_indices=(0, 1, 2, 3, 4))
    shapes = [tuple(m.shape) for m in features(torch.zeros(1, 3, 96, 128))]
    assert shapes == [(1, 64, 48, 64), (1, 64, 24, 32), (1, 128, 12, 16), (1, 256, 6, 8), (1, 512, 3, 4)]
    model.reset_classifier(0)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 512)


def test_a_torchvision_format_file_loads_with_a_new_head(tmp_path):
    source = create_model("resnet18")
    torch.save(source.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    model = create_model("resnet18", pretrained=str(tmp_path / "resnet18-f37072fd.pth"), num_classes=5, in_chans=1)
    loaded = model.state_dict()
    assert torch.equal(loaded["layer4.1.conv2.weight"], source.state_dict()["layer4.1.conv2.weight"])
    assert model.fc.out_features == 5 and loaded["conv1.weight"].shape == (64, 1, 7, 7)
