"""The ten DLA classification networks against the authors' layouts and counts, and their API."""

import math

import pytest
import torch

import dla
from conftest import MODEL_NAMES, read_keys, state_dict_from_layout, state_dict_layout
from dla.complexity import count_macs, count_params

LEVEL_CHANNELS = {
    "dla34": (16, 32, 64, 128, 256, 512),
    **{name: (16, 32, 64, 64, 128, 256) for name in ("dla46_c", "dla46x_c", "dla60x_c")},
    **{name: (16, 32, 128, 256, 512, 1024) for name in ("dla60", "dla60x", "dla102", "dla102x", "dla102x2", "dla169")},
}
REDUCTIONS = (1, 2, 4, 8, 16, 32)
ALL_LEVELS = (0, 1, 2, 3, 4, 5)

each_model = pytest.mark.parametrize("name", MODEL_NAMES)


def meta_model(name, **kwargs):
    """The model built on the meta device: shapes and counts without memory or initialisation cost."""
    with torch.device("meta"):
        return dla.create_model(name, **kwargs)


@torch.no_grad()
def run_eval(model, *shape):
    return model.eval()(torch.randn(*shape))


def map_sizes(maps):
    return [tuple(m.shape[1:]) for m in maps]


def expected_map_sizes(channels, reductions, height, width):
    return [(c, math.ceil(height / r), math.ceil(width / r)) for c, r in zip(channels, reductions, strict=True)]


def test_list_models():
    assert dla.list_models()[: len(MODEL_NAMES)] == list(MODEL_NAMES)
    assert dla.list_models("dla*x*") == ["dla46x_c", "dla60x_c", "dla60x", "dla102x", "dla102x2"]
    assert dla.list_models("*up") == ["dlaup", "dla34up", "dla60up", "dla102up", "dla169up"]


@each_model
def test_parameter_count(name, counts):
    assert count_params(meta_model(name)) == counts[name]["params"]


@each_model
def test_multiply_adds(name, counts):
    assert count_macs(meta_model(name).eval(), (1, 3, 224, 224)) == counts[name]["macs"]


@each_model
def test_state_dict_layout_is_the_authors(name, counts):
    reference = read_keys(name)
    assert len(reference) == counts[name]["state_dict_entries"]
    assert state_dict_layout(meta_model(name)) == reference


@each_model
def test_strict_load_of_the_authors_layout(name):
    state_dict = state_dict_from_layout(read_keys(name))
    model = dla.create_model(name)
    model.load_state_dict(state_dict, strict=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state_dict.items())


@each_model
def test_only_unused_projections_get_no_gradient(name, counts):
    model = dla.create_model(name).train()
    model(torch.randn(2, 3, 64, 64)).logsumexp(1).sum().backward()
    params = dict(model.named_parameters())
    no_grad = {key for key, p in params.items() if p.grad is None}

    assert sum(params[key].numel() for key in no_grad) == counts[name]["unused_project_params"]
    assert all("project" in key for key in no_grad), sorted(no_grad)
    # Exactly the projections of trees with sub-trees: those recompute their own shortcut.
    unused = {
        f"{module_name}.project.{key}"
        for module_name, module in model.named_modules()
        if isinstance(module, dla.HDA) and module.depth > 1 and module.project is not None
        for key, _ in module.project.named_parameters()
    }
    assert no_grad == unused
    not_finite = [key for key, p in params.items() if key not in no_grad and not torch.isfinite(p.grad).all()]
    assert not not_finite


@each_model
@pytest.mark.parametrize("size", [(224, 224), (225, 193)])
def test_classification_output_shape(name, size):
    assert run_eval(dla.create_model(name), 1, 3, *size).shape == (1, 1000)


@each_model
def test_features_only_maps(name):
    height, width = 65, 97
    model = dla.create_model(name, features_only=True, out_indices=ALL_LEVELS)
    info = model.feature_info
    assert info.channels() == list(LEVEL_CHANNELS[name])
    assert info.reduction() == list(REDUCTIONS)
    maps = run_eval(model, 1, 3, height, width)
    assert map_sizes(maps) == expected_map_sizes(info.channels(), info.reduction(), height, width)


@each_model
def test_features_only_default_levels(name):
    model = dla.create_model(name, features_only=True)
    assert model.feature_info.out_indices == (1, 2, 3, 4, 5)
    assert model.feature_info.channels() == list(LEVEL_CHANNELS[name][1:])
    assert len(run_eval(model, 1, 3, 64, 64)) == 5


def test_features_are_the_backbone_levels():
    torch.manual_seed(1)
    model = dla.create_model("dla34").eval()
    torch.manual_seed(1)
    features = dla.create_model("dla34", features_only=True, out_indices=(2, 5)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        level2, level5 = features(x)
        expected = model.forward_features(x)
    assert level2.shape[1] == 64
    torch.testing.assert_close(level5, expected)


@each_model
@pytest.mark.parametrize("output_stride", [8, 16])
def test_output_stride(name, output_stride):
    features = dla.create_model(name, features_only=True, out_indices=ALL_LEVELS, output_stride=output_stride)
    reductions = [min(r, output_stride) for r in REDUCTIONS]
    assert features.feature_info.reduction() == reductions
    maps = run_eval(features, 1, 3, 64, 64)
    assert map_sizes(maps) == expected_map_sizes(LEVEL_CHANNELS[name], reductions, 64, 64)

    model = dla.create_model(name, output_stride=output_stride)
    assert state_dict_layout(model) == state_dict_layout(meta_model(name))  # same weights fit
    assert run_eval(model, 1, 3, 64, 64).shape == (1, 1000)


@each_model
def test_classifier_reset_and_pre_logits(name):
    model = dla.create_model(name).eval()
    num_features = LEVEL_CHANNELS[name][-1]
    assert model.num_features == num_features
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, num_features)
        model.reset_classifier(10)
        assert model(x).shape == (2, 10)
        model.reset_classifier(0)
        assert model(x).shape == (2, num_features)


@each_model
def test_in_chans_and_dropout(name):
    model = dla.create_model(name, in_chans=1, drop_rate=0.2, num_classes=5).train()
    x = torch.randn(2, 1, 64, 64)
    first, second = model(x), model(x)
    assert first.shape == (2, 5)
    assert not torch.equal(first, second)  # BatchNorm uses batch statistics: only dropout differs
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("dla34", dict(output_stride=4)),
        ("dla34", dict(output_stride=64)),
        ("dla34", dict(features_only=True, out_indices=(6,))),
        ("dla35", {}),
    ],
)
def test_invalid_arguments_raise_dla_error(name, kwargs):
    with pytest.raises(dla.DLAError):
        meta_model(name, **kwargs)


def test_export_matches_eager():
    model = dla.create_model("dla34").eval()
    x = torch.randn(1, 3, 224, 224)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=0, atol=1e-4)


@pytest.mark.parametrize("order", [("dla102x2", "dla102x"), ("dla102x", "dla102x2")])
def test_cardinality_belongs_to_the_instance(order):
    models = [meta_model(name) for name in order]
    for name, model in zip(order, models, strict=True):
        assert state_dict_layout(model) == read_keys(name), name


def test_forward_intermediates_selects_levels():
    """timm's contract: ``indices`` None (all), an int (the last n) or level indices (negative from the end)."""
    model = dla.create_model("dla34").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert [m.shape[1] for m in maps] == list(LEVEL_CHANNELS["dla34"])
        torch.testing.assert_close(final, model.forward_features(x))
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last_two] == [256, 512]
        early, chosen = model.forward_intermediates(x, indices=(1, -3), stop_early=True)
        assert [m.shape[1] for m in chosen] == [32, 128] and early is chosen[-1]
    for indices in ((6,), 7, 0, ()):
        with pytest.raises(dla.DLAError, match="indices"):
            model.forward_intermediates(x, indices=indices)


def test_features_only_keys_are_the_backbones_up_to_the_deepest_level():
    model = dla.create_model("dla34")
    features = dla.create_model("dla34", features_only=True, out_indices=(1, 2))
    kept = ("base_layer", "level0", "level1", "level2")
    assert list(features.state_dict()) == [key for key in model.state_dict() if key.split(".")[0] in kept]
