"""What a user can rely on from the models and the config: every registered model trains at batch size 1 on
inputs down to its smallest size (BatchNorm of pooled maps is ``PooledBatchNorm``, which is BatchNorm wherever
it has more than one value per channel), and numbers in scientific notation (``1e-4``, ``1.0e6``) are numbers
where the config expects one, in ``--set`` overrides and in files alike."""

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import dla
from dla.engine.config_loader import load_config
from dla.errors import DLAError
from dla.layers.norm import PooledBatchNorm
from dla.models._registry import model_entrypoint

LIBRARY_MODELS = [name for name in dla.list_models() if model_entrypoint(name).__module__.startswith("dla.models.")]

# The smallest square side each family trains on at batch 1: its deepest convolution map then keeps more than one
# position (BatchNorm cannot normalise one value per channel; a map that a 1-pixel-smaller input leaves 1x1 is
# a convolution's, which no running statistics may stand in for, unlike a pooled one).
SMALLEST_SIDE = {
    "dla.models.dla": 33,  # stride 32, sizes rounded up
    "dla.models.dla_up": 33,
    "dla.models.resnet": 33,
    "dla.models.deeplabv3": 17,  # output stride 16
    "dla.models.densenet": 61,  # stride 32, the transitions' poolings round down
    "dla.models.ladder_densenet": 93,  # DB4b at stride 64, after the DenseNet's rounding down
    "dla.models.dfanet": 65,  # the third backbone's enc4 at stride 64 (2 ** (4 + n) for backbone n from 0)
}


def _smallest_side(name: str) -> int:
    return SMALLEST_SIDE[model_entrypoint(name).__module__]


def _training_loss(model: nn.Module, side: int) -> torch.Tensor:
    """One image of ``side x side`` through ``model`` in training, cross-entropy against random labels (both
    heads of a model with auxiliary logits)."""
    generator = torch.Generator().manual_seed(0)
    out = model.train()(torch.randn(1, 3, side, side, generator=generator))
    heads = list(out) if isinstance(out, dla.AuxOutput) else [out]
    target = torch.randint(0, 3, (1, *heads[0].shape[2:]), generator=generator)
    return sum(F.cross_entropy(logits, target) for logits in heads)


@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_every_model_trains_at_batch_1(name):
    model = dla.create_model(name, num_classes=3)
    loss = _training_loss(model, _smallest_side(name))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads)


FAMILIES = [next(name for name in LIBRARY_MODELS if model_entrypoint(name).__module__ == family) for family in SMALLEST_SIDE]


@pytest.mark.parametrize("name", FAMILIES)
def test_one_pixel_less_than_the_smallest_side_leaves_one_value_per_channel(name):
    """The smallest sides above are tight: one pixel less and a convolution map of the deepest level is 1x1."""
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        _training_loss(dla.create_model(name, num_classes=3), _smallest_side(name) - 1)


@pytest.mark.parametrize("shape", [(2, 4, 1, 1), (1, 4, 2, 1), (3, 4, 5, 7)])
def test_pooled_batchnorm_is_batchnorm_beyond_one_value_per_channel(shape):
    """Outputs, gradients and running statistics equal ``nn.BatchNorm2d``'s, and the state-dict keys are its."""
    torch.manual_seed(0)
    plain, pooled = nn.BatchNorm2d(4), PooledBatchNorm(4)
    plain.weight.data.uniform_(0.5, 2)
    pooled.load_state_dict(plain.state_dict())
    x = torch.randn(shape)
    for norm in (plain, pooled):
        norm(x).pow(2).sum().backward()
    assert torch.equal(pooled(x), plain(x))
    assert torch.equal(pooled.weight.grad, plain.weight.grad) and torch.equal(pooled.bias.grad, plain.bias.grad)
    assert pooled.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(pooled.state_dict()[k], v) for k, v in plain.state_dict().items())


def test_pooled_batchnorm_of_one_value_per_channel_uses_the_running_statistics():
    pooled = PooledBatchNorm(4)
    pooled.running_mean.uniform_(-1, 1)
    pooled.running_var.uniform_(0.5, 2)
    before = {k: v.clone() for k, v in pooled.state_dict().items()}
    x = torch.randn(1, 4, 1, 1)
    y = pooled.train()(x)
    assert all(torch.equal(pooled.state_dict()[k], v) for k, v in before.items())  # nothing learnt from one value
    assert torch.allclose(y, pooled.eval()(x))


# --- numbers in scientific notation in the config ------------------------------------------------------------


def test_pyyaml_reads_scientific_notation_without_a_dot_or_an_exponent_sign_as_text():
    """The cause: YAML 1.1's float (PyYAML's resolver) needs a dot and a signed exponent."""
    assert [yaml.safe_load(text) for text in ("1e6", "1.0e6", "1e-4", "1.0e+6")] == ["1e6", "1.0e6", "1e-4", 1.0e6]


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("optim.lr=1e6", "lr", 1.0e6),
        ("optim.lr=1.0e6", "lr", 1.0e6),
        ("optim.lr=1.0e+6", "lr", 1.0e6),
        ("optim.lr=1e-4", "lr", 1.0e-4),
        ("optim.lr=.5e1", "lr", 5.0),
        ("optim.grad_clip=1E1", "grad_clip", 10.0),  # float | None
    ],
)
def test_scientific_notation_is_a_number(override, key, expected):
    value = getattr(load_config(None, [override]).optim, key)
    assert value == expected and type(value) is float


def test_scientific_notation_is_a_number_in_lists_and_negative():
    cfg = load_config(None, ["data.scale=[5e-1, 1e0]", "data.rotation=-2E3"])
    assert cfg.data.scale == [0.5, 1.0] and cfg.data.rotation == -2000.0


def test_scientific_notation_is_a_number_in_a_config_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("optim:\n  lr: 1.0e6\n  weight_decay: 1e-4\n  class_weights: [1e0, .5e1]\ndata:\n  scale: [5e-1, 2E0]\n")
    cfg = load_config(str(path))
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.class_weights) == (1.0e6, 1.0e-4, [1.0, 5.0])
    assert cfg.data.scale == [0.5, 2.0]


@pytest.mark.parametrize("text", ["fast", "nan", "1e", "e6", "1.0e6x", "1.0.0"])
def test_text_that_is_no_number_is_refused_where_a_number_is_expected(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"optim:\n  lr: {text}\n")
    with pytest.raises(DLAError, match=rf"{path}: optim.lr must be a number, got '{text}'$"):
        load_config(str(path))


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.name=34", "model.name must be a string or null, got 34$"),
        ("data.dataset=1.0e+6", "data.dataset must be a string, got 1000000.0$"),
        ("optim.lr=true", "optim.lr must be a number, got True$"),
        ("optim.lr=yes", "optim.lr must be a number, got True$"),  # YAML 1.1's boolean
        ("data.flip=1e0", "data.flip must be true or false, got '1e0'$"),
        ("model.down_ratio=3e0", r"model.down_ratio must be one of 2, 4, 8, 16 or null, got '3e0'$"),
    ],
)
def test_numbers_for_text_and_booleans_for_numbers_stay_refused(override, expected):
    with pytest.raises(DLAError, match=expected):
        load_config(None, [override])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.batch_size=1e3", r"must be an integer, got '1e3' \(1e3 is a float: write the integer in digits, 1000\)"),
        ("model.down_ratio=4e0", r"got '4e0' \(4e0 is a float: write the integer in digits, 4\)"),
        ("data.batch_size=1e-4", "data.batch_size must be an integer, got '1e-4'$"),
    ],
)
def test_scientific_notation_where_an_integer_is_expected_says_what_to_write(override, expected):
    with pytest.raises(DLAError, match=expected):
        load_config(None, [override])
