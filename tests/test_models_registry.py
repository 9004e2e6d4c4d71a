"""Every registered model, with its default arguments (timm's tests/test_models.py): it trains at an odd input
size and batch size 1, its outputs have the documented shapes, ``features_only`` gives the levels that
``feature_info`` describes (or a clear error for a model without), and ``dla models`` lists it. A model cannot
be registered without being tested here: the tests are parametrised over ``list_models()``, less the models
that other test modules register for their own use (e.g. a tiny network for checkpoint tests)."""

import math

import pytest
import torch

import dla
from dla.cli import main
from dla.models._registry import model_entrypoint

SIZE = (97, 131)  # odd, and deep enough that every model's coarsest level keeps more than one position

LIBRARY_MODELS = [name for name in dla.list_models() if model_entrypoint(name).__module__.startswith("dla.models.")]
each_model = pytest.mark.parametrize("name", LIBRARY_MODELS)


@each_model
def test_trains_at_batch_one_and_an_odd_size(name):
    """Classifiers give ``(N, num_classes)``, dense models ``(N, num_classes, H, W)``; a model with an auxiliary
    head (``aux``) gives ``AuxOutput`` in training and the main logits alone in evaluation."""
    model = dla.create_model(name).train()
    x = torch.randn(1, 3, *SIZE)
    dense = not hasattr(model, "feature_info")
    expected = (1, model.num_classes, *SIZE) if dense else (1, model.num_classes)
    out = model(x)
    if getattr(model, "aux", False):
        assert isinstance(out, dla.AuxOutput) and [o.shape for o in out] == [expected] * 2
        loss = out.logits.logsumexp(1).mean() + out.aux_logits.logsumexp(1).mean()
    else:
        assert isinstance(out, torch.Tensor) and out.shape == expected
        loss = out.logsumexp(1).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        out = model.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == expected


@each_model
def test_features_only_gives_the_levels_of_feature_info(name):
    """Maps with ``feature_info.channels()`` channels at about ``reduction()`` strides (backbones round sizes
    up or down); the keys are the backbone's own, less the classifier. Models without ``feature_info`` (the
    dense ones) refuse ``features_only``."""
    with torch.device("meta"):
        model = dla.create_model(name)
    if not hasattr(model, "feature_info"):
        with pytest.raises(dla.DLAError, match="features_only"):
            dla.create_model(name, features_only=True)
        return
    levels = tuple(range(len(model.feature_info.levels)))
    features = dla.create_model(name, features_only=True, out_indices=levels).eval()
    with torch.no_grad():
        maps = features(torch.randn(1, 3, *SIZE))
    info = features.feature_info
    assert [m.shape[1] for m in maps] == info.channels()
    for m, reduction in zip(maps, info.reduction(), strict=True):
        assert all(
            math.floor(s / reduction) <= got <= math.ceil(s / reduction) for got, s in zip(m.shape[-2:], SIZE, strict=True)
        )
    dropped = set(model.state_dict()) - set(features.state_dict())
    classifier = model.pretrained_cfg.classifier
    assert set(features.state_dict()) < set(model.state_dict())
    assert dropped and all(key.startswith(f"{classifier}.") for key in dropped)


@each_model
def test_listed_by_the_models_table(name, capsys):
    assert main(["models", name, "--input-size", "64", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]  # after the header and the rule
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert [row[0] for row in rows] == [name]
    assert float(rows[0][3]) > 0  # the measured parameters (M)
