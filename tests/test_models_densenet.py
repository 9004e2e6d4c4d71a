"""DenseNet with torchvision's layout: keys, torchvision's old-format files, features, head (its parameter counts are
checked with the ResNets' in test_models_resnet.py)."""

import re

import pytest
import torch
from torch import nn

from dla.errors import DLAError
from dla.models import create_model
from dla.models._paper import PAPER_FIGURES
from dla.models.densenet import DenseBlock


# torchvision's published parameter counts of its ImageNet DenseNets (the models' documentation pages)
def old_format(state_dict):
    """torchvision's published files name ``denselayer1.norm1.weight`` ``denselayer1.norm.1.weight``."""
    return {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state_dict.items()}


def test_state_dict_keys_follow_torchvision():
    with torch.device("meta"):
        keys = list(create_model("densenet121").state_dict())
    assert keys[:2] == ["features.conv0.weight", "features.norm0.weight"]
    layer = "features.denseblock1.denselayer1."
    norm = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [k[len(layer) :] for k in keys if k.startswith(layer)] == (
        [f"norm1.{n}" for n in norm] + ["conv1.weight"] + [f"norm2.{n}" for n in norm] + ["conv2.weight"]
    )
    assert {
        "features.transition1.norm.weight",
        "features.transition1.conv.weight",
        "features.denseblock4.denselayer16.conv2.weight",
        "features.norm5.running_var",
    } <= set(keys)
    assert "features.denseblock4.denselayer17.conv1.weight" not in keys
    assert "features.transition4.conv.weight" not in keys
    assert keys[-2:] == ["classifier.weight", "classifier.bias"]


def test_published_cfg_is_torchvisions():
    cfg = create_model("densenet169", num_classes=0).pretrained_cfg
    assert cfg.url == "https://download.pytorch.org/models/densenet169-b2777c0a.pth" and cfg.hash_prefix == "b2777c0a"
    paper_params = PAPER_FIGURES["densenet169"].params
    assert (cfg.first_conv, cfg.classifier, paper_params) == ("features.conv0", "classifier", 13.0)


def test_a_torchvision_old_format_file_loads(tmp_path):
    source = create_model("densenet121").state_dict()
    old = old_format(source)
    assert "features.denseblock3.denselayer24.norm.2.running_var" in old and "features.transition2.norm.weight" in old
    path = tmp_path / "densenet121-a639ec97.pth"
    torch.save(old, path)
    model = create_model("densenet121", pretrained=str(path))
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.items())
    model = create_model("densenet121", pretrained=str(path), num_classes=5, in_chans=1)  # new head, grey input
    assert model.classifier.out_features == 5 and model.state_dict()["features.conv0.weight"].shape == (64, 1, 7, 7)
    assert torch.equal(model.state_dict()["features.norm5.weight"], source["features.norm5.weight"])


def test_features_head_and_odd_sizes():
    model = create_model("densenet121", num_classes=7).eval()
    assert model.feature_info.channels() == [64, 256, 512, 1024, 1024]
    assert model.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert model(torch.zeros(2, 3, 97, 129)).shape == (2, 7)
    x = torch.zeros(1, 3, 64, 96)
    assert model.forward_features(x).shape == (1, 1024, 2, 3)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (1, 1024)
    model.reset_classifier(0)
    assert model(x).shape == (1, 1024) and isinstance(model.get_classifier(), nn.Identity)
    with torch.device("meta"):
        assert create_model("densenet169").feature_info.channels() == [64, 256, 512, 1280, 1664]


def test_a_dense_block_split_in_two_is_the_whole_block():
    block = DenseBlock(4, 16, growth_rate=8, bn_size=4).eval()
    x = torch.randn(2, 16, 5, 7)
    assert (block.width(), block.width(2)) == (48, 32)
    assert block(x, stop=2).shape == (2, 32, 5, 7)
    assert torch.allclose(block(block(x, stop=2), start=2), block(x))


def test_only_output_stride_32():
    with pytest.raises(DLAError, match="output_stride must be 32"):
        create_model("densenet121", output_stride=16)


def test_features_only_loads_a_torchvision_file_and_keeps_its_keys(tmp_path):
    """The levels nested in ``features`` are reached through ``forward_intermediates``; the keys stay the
    DenseNet's own (less the classifier), so the ImageNet file loads into the feature extractor."""
    source = create_model("densenet121").state_dict()
    path = tmp_path / "densenet121-a639ec97.pth"
    torch.save(old_format(source), path)
    features = create_model("densenet121", pretrained=str(path), features_only=True, out_indices=(0, 1, 2, 3, 4))
    loaded = features.state_dict()
    assert list(loaded) == [k for k in source if not k.startswith("classifier.")]
    assert all(torch.equal(v, source[k]) for k, v in loaded.items())
    shapes = [tuple(m.shape) for m in features.eval()(torch.zeros(1, 3, 64, 96))]
    assert shapes == [(1, 64, 32, 48), (1, 256, 16, 24), (1, 512, 8, 12), (1, 1024, 4, 6), (1, 1024, 2, 3)]


def test_split_blocks_add_levels_and_no_keys():
    """Krešo et al. Sec. 3: DB4 split by a pooling (DB4a, DB4b) puts the last level at 64x; no new weights."""
    with torch.device("meta"):
        plain, split = create_model("densenet121"), create_model("densenet121", split_blocks=(4,))
    assert list(split.state_dict()) == list(plain.state_dict())
    assert split.feature_info.channels() == [64, 256, 512, 1024, 512 + 8 * 32, 1024]
    assert split.feature_info.reduction() == [2, 4, 8, 16, 32, 64]
    features = create_model("densenet121", split_blocks=(4,)).forward_features(torch.zeros(1, 3, 97, 131))
    assert features.shape == (1, 1024, 2, 2)
    with pytest.raises(DLAError, match="split_blocks"):
        create_model("densenet121", split_blocks=(5,))
