"""DeepLabv3: parameter counts against the paper and torchvision, ASPP rates, torchvision's keys, batch size 1."""

import pytest
import torch

from dla.complexity import count_params
from dla.errors import DLAError
from dla.models import create_model
from dla.models.deeplabv3 import aspp_rates


def test_parameter_counts():
    with torch.device("meta"):
        paper = create_model("deeplabv3_resnet101")
        torchvision_head = create_model("deeplabv3_resnet101", head="torchvision")
    assert count_params(paper) == pytest.approx(58.04e6, rel=0.01)  # the figure for the paper's head
    assert count_params(torchvision_head) == 58_630_997  # torchvision's deeplabv3_resnet101, 21 classes, no aux


def test_aspp_rates_follow_the_output_stride():
    assert aspp_rates(16) == (6, 12, 18) and aspp_rates(8) == (12, 24, 36)
    model = create_model("deeplabv3_resnet50", output_stride=8)
    assert [branch[0].dilation[0] for branch in model.classifier[0].convs[1:4]] == [12, 24, 36]
    assert [b.conv2.dilation[0] for b in model.backbone.layer4] == [2, 4, 4]
    with pytest.raises(DLAError, match="head must be"):
        create_model("deeplabv3_resnet50", head="v3+")


def test_keys_are_torchvisions():
    keys = list(create_model("deeplabv3_resnet50", head="torchvision").state_dict())
    assert keys[0] == "backbone.conv1.weight" and "backbone.fc.weight" not in keys
    assert {"classifier.0.convs.0.0.weight", "classifier.0.convs.3.0.weight", "classifier.0.convs.4.1.weight",
            "classifier.0.convs.4.2.running_mean", "classifier.0.project.0.weight", "classifier.1.weight",
            "classifier.4.weight", "classifier.4.bias"} <= set(keys)


def test_batch_of_one_trains_and_odd_sizes_come_back_whole():
    model = create_model("deeplabv3_resnet50", num_classes=3, multi_grid=(1, 2, 4)).train()
    pooled_bn = model.classifier[0].convs[4][2]
    before = pooled_bn.running_mean.clone()
    logits = model(torch.randn(1, 3, 97, 131))
    assert logits.shape == (1, 3, 97, 131)
    logits.mean().backward()
    assert torch.equal(pooled_bn.running_mean, before)  # one value per channel: running statistics, untouched
    assert model(torch.randn(2, 3, 65, 65)).shape == (2, 3, 65, 65)
