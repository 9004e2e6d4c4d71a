"""Pretrained weights: local files, ``file://`` URLs through the torch.hub cache, hash checks, adaptation, errors.

Every test runs with the torch.hub cache inside its ``tmp_path``; nothing touches the network.
"""

import hashlib
import importlib

import pytest
import torch

import dla
from conftest import assert_state_dicts_equal
from dla.models._pretrained import download

NAME = "dla46_c"
FC_KEYS = ("fc.weight", "fc.bias")
dla_family = importlib.import_module("dla.models.dla")


@pytest.fixture(autouse=True)
def hub_dir(tmp_path, monkeypatch):
    """A torch.hub cache of the test's own: TORCH_HOME in tmp_path, no directory set by ``set_dir``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # restored after the test
    hub = tmp_path / "torch" / "hub"
    assert torch.hub.get_dir() == str(hub)
    return hub


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_hashed(obj, directory, stem=NAME):
    """Save ``obj`` as ``<stem>-<first 8 hex of its SHA-256>.pth`` (torch.hub's naming) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.pth"
    torch.save(obj, path)
    return path.rename(directory / f"{stem}-{sha256(path)[:8]}.pth")


def wrong_hash(digest):
    return ("1" if digest[0] == "0" else "0") + digest[1:8]


def cached_files(hub_dir):
    checkpoints = hub_dir / "checkpoints"
    return sorted(p.name for p in checkpoints.iterdir()) if checkpoints.exists() else []


def random_state_dict(name=NAME, seed=1234):
    torch.manual_seed(seed)
    return dla.create_model(name).state_dict()


@pytest.fixture
def weights():
    return random_state_dict()


@pytest.fixture
def weights_file(weights, tmp_path):
    return save_hashed(weights, tmp_path / "published")


def without(state_dict, keys):
    return {k: v for k, v in state_dict.items() if k not in keys}


@pytest.mark.parametrize("num_classes", [1000, 10])
def test_file_url_goes_through_the_hub_cache(weights, weights_file, hub_dir, num_classes):
    model = dla.create_model(NAME, pretrained="file://" + str(weights_file), num_classes=num_classes)
    loaded = model.state_dict()
    if num_classes == 1000:
        assert_state_dicts_equal(loaded, weights)
    else:
        assert_state_dicts_equal(without(loaded, FC_KEYS), without(weights, FC_KEYS))
        assert loaded["fc.weight"].shape == (10, 256, 1, 1)
        assert loaded["fc.bias"].shape == (10,)
    assert cached_files(hub_dir) == [weights_file.name]
    assert (hub_dir / "checkpoints" / weights_file.name).read_bytes() == weights_file.read_bytes()


def test_file_url_with_a_wrong_hash_is_rejected_and_not_kept(weights, tmp_path, hub_dir):
    good = save_hashed(weights, tmp_path / "published")
    bad = good.rename(good.with_name(f"{NAME}-{wrong_hash(sha256(good))}.pth"))
    with pytest.raises(dla.DLAError, match="integrity"):
        dla.create_model(NAME, pretrained="file://" + str(bad))
    assert cached_files(hub_dir) == []


def test_download_checks_the_hash_prefix_and_caches(weights_file, hub_dir):
    digest = sha256(weights_file)
    url = weights_file.as_uri()
    with pytest.raises(dla.DLAError, match="integrity"):
        download(url, wrong_hash(digest))
    assert cached_files(hub_dir) == []

    path = download(url, digest[:8])
    assert path == str(hub_dir / "checkpoints" / weights_file.name)
    weights_file.unlink()
    assert download(url, digest[:8]) == path  # served from the cache, not fetched again


@pytest.mark.parametrize("correct_hash", [True, False])
def test_pretrained_true_uses_the_model_cfg(weights, weights_file, monkeypatch, correct_hash):
    digest = sha256(weights_file)[:8]
    cfg = dla.PretrainedCfg(url=weights_file.as_uri(), hash_prefix=digest if correct_hash else wrong_hash(digest))
    monkeypatch.setitem(dla_family.default_cfgs, NAME, cfg)
    if correct_hash:
        assert_state_dicts_equal(dla.create_model(NAME, pretrained=True).state_dict(), weights)
    else:
        with pytest.raises(dla.DLAError, match="integrity"):
            dla.create_model(NAME, pretrained=True)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {"model": sd, "epoch": 3},
        lambda sd: {"state_dict": sd},
    ],
    ids=["module-prefix", "model-key", "state_dict-key"],
)
def test_wrapped_checkpoints_load(weights, tmp_path, wrap):
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(weights), path)
    assert_state_dicts_equal(dla.create_model(NAME, pretrained=str(path)).state_dict(), weights)


@pytest.mark.parametrize(
    "in_chans, adapt",
    [(1, lambda w: w.sum(1, keepdim=True)), (6, lambda w: torch.cat([w, w], 1) * 0.5)],
)
def test_first_convolution_is_adapted_to_in_chans(weights, weights_file, in_chans, adapt):
    model = dla.create_model(NAME, pretrained=str(weights_file), in_chans=in_chans)
    loaded = model.state_dict()
    first = "base_layer.0.weight"
    torch.testing.assert_close(loaded[first], adapt(weights[first]))
    assert_state_dicts_equal(without(loaded, [first]), without(weights, [first]))
    with torch.no_grad():
        assert model.eval()(torch.randn(1, in_chans, 64, 64)).shape == (1, 1000)


def test_features_only_with_pretrained_weights(weights, weights_file):
    model = dla.create_model(NAME, pretrained=str(weights_file), features_only=True)
    loaded = model.state_dict()
    assert loaded and not any(k.startswith("fc.") for k in loaded)
    assert_state_dicts_equal(loaded, {k: weights[k] for k in loaded})
    with torch.no_grad():
        assert len(model.eval()(torch.randn(1, 3, 64, 64))) == 5


def test_truncated_file_names_the_file(weights_file, tmp_path):
    truncated = tmp_path / "truncated.pth"
    data = weights_file.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(dla.DLAError) as error:
        dla.create_model(NAME, pretrained=str(truncated))
    assert str(truncated) in str(error.value)


def renamed(sd):
    return {("level2.root.conv.weights" if k == "level2.root.conv.weight" else k): v for k, v in sd.items()}


@pytest.mark.parametrize(
    "make_state_dict, expected",
    [
        (lambda: renamed(random_state_dict()), ["missing keys", "unexpected keys", "level2.root.conv.weight"]),
        (lambda: random_state_dict("dla34"), ["missing keys", "level2.tree1.conv3.weight", "shape mismatches"]),
    ],
    ids=["renamed-key", "dla34-weights"],
)
def test_mismatched_keys_are_named(tmp_path, make_state_dict, expected):
    path = tmp_path / "other.pth"
    torch.save(make_state_dict(), path)
    with pytest.raises(dla.DLAError) as error:
        dla.create_model(NAME, pretrained=str(path))
    message = str(error.value)
    assert str(path) in message
    assert all(text in message for text in expected), message


@pytest.mark.parametrize("kind", ["path", "file-url"])
def test_missing_source_is_an_error(tmp_path, hub_dir, kind):
    missing = tmp_path / "missing-0123abcd.pth"
    source = str(missing) if kind == "path" else missing.as_uri()
    with pytest.raises(dla.DLAError, match="missing-0123abcd"):
        dla.create_model(NAME, pretrained=source)
    assert cached_files(hub_dir) == []


def test_path_objects_are_accepted(weights, weights_file):
    assert_state_dicts_equal(dla.create_model(NAME, pretrained=weights_file).state_dict(), weights)
