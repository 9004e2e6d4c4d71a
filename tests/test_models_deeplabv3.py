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
    assert {
        "classifier.0.convs.0.0.weight",
        "classifier.0.convs.3.0.weight",
        "classifier.0.convs.4.1.weight",
        "classifier.0.convs.4.2.running_mean",
        "classifier.0.project.0.weight",
        "classifier.1.weight",
        "classifier.4.weight",
        "classifier.4.bias",
    } <= set(keys)


def test_batch_of_one_trains_and_odd_sizes_come_back_whole():
    model = create_model("deeplabv3_resnet50", num_classes=3, multi_grid=(1, 2, 4)).train()
    pooled_bn = model.classifier[0].convs[4][2]
    before = pooled_bn.running_mean.clone()
    logits = model(torch.randn(1, 3, 97, 131))
    assert logits.shape == (1, 3, 97, 131)
    logits.mean().backward()
    assert torch.equal(pooled_bn.running_mean, before)  # one value per channel: running statistics, untouched
    assert model(torch.randn(2, 3, 65, 65)).shape == (2, 3, 65, 65)


def test_switching_the_output_stride_keeps_the_weights_and_equals_building_at_it():
    torch.manual_seed(0)
    trained_at_16 = create_model("deeplabv3_resnet50", num_classes=3, multi_grid=(1, 2, 4)).eval()
    built_at_8 = create_model("deeplabv3_resnet50", num_classes=3, multi_grid=(1, 2, 4), output_stride=8).eval()
    built_at_8.load_state_dict(trained_at_16.state_dict())
    x = torch.randn(1, 3, 67, 75)
    at_16 = trained_at_16(x)
    trained_at_16.set_output_stride(8)
    with torch.no_grad():
        assert torch.allclose(trained_at_16(x), built_at_8(x), atol=1e-5)
        assert not torch.allclose(trained_at_16(x), at_16, atol=1e-3)
    assert trained_at_16.output_stride == 8 and trained_at_16.backbone.feature_info.reduction() == [2, 4, 8, 8, 8]
    with pytest.raises(DLAError, match="output_stride must be one of"):
        trained_at_16.set_output_stride(64)  # no cascaded blocks to stride


@pytest.mark.parametrize(
    "output_stride, strides, rates",
    [
        (16, [1, 1, 1], [[4, 8, 8], [8, 16, 16], [16, 32, 32]]),  # Fig. 3b: block4-7 at rates 2, 4, 8, 16 (x multi-grid)
        (64, [2, 1, 1], [[1, 2, 2], [2, 4, 4], [4, 8, 8]]),  # Table 1's larger output strides: the replicas stride
        (256, [2, 2, 2], [[1, 2, 2], [1, 2, 2], [1, 2, 2]]),  # no atrous rate but the multi-grid units
    ],
)
def test_cascaded_blocks_stride_then_dilate(output_stride, strides, rates):
    with torch.device("meta"):
        model = create_model("deeplabv3_cascade_resnet50", output_stride=output_stride, multi_grid=(1, 2, 2))
    assert [replica[0].conv2.stride[0] for replica in model.cascade] == strides
    assert [[unit.conv2.dilation[0] for unit in replica] for replica in model.cascade] == rates
    assert model.pretrained_cfg.paper_name == "DeepLabv3-ResNet-50 block7"


def test_cascade_has_the_same_weights_at_every_output_stride_and_trains_at_batch_one():
    with torch.device("meta"):
        counts = {count_params(create_model("deeplabv3_cascade_resnet50", output_stride=s)) for s in (8, 16, 256)}
        block5 = create_model("deeplabv3_cascade_resnet101", cascade=1)
    assert len(counts) == 1 and len(block5.cascade) == 1
    assert "cascade.0.0.conv2.weight" in block5.state_dict() and "classifier.0.weight" in block5.state_dict()
    model = create_model("deeplabv3_cascade_resnet50", num_classes=2, output_stride=64, cascade=1).train()
    logits = model(torch.randn(1, 3, 70, 90))
    assert logits.shape == (1, 2, 70, 90)
    logits.mean().backward()
    with pytest.raises(DLAError, match="cascade is the number"):
        create_model("deeplabv3_cascade_resnet50", cascade=4)
