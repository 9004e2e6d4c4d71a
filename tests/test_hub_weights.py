"""Weights from the Hugging Face Hub (``hf-hub:`` names, ``pretrained=True``), read from a local Hub cache.

Every test builds its own cache in the layout ``huggingface_hub`` reads (``models--<owner>--<repo>/blobs``,
``snapshots/<commit>/<file>`` links, ``refs/<revision>``) and runs with ``HF_HUB_OFFLINE``: nothing touches the
network. The files are written by the tests in both key layouts: the authors' (every ``project`` layer) and timm's
(no ``project`` in trees deeper than 1; with or without BatchNorm batch counters; optionally a linear classifier).
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import dla
from conftest import FIXTURES, ROOT, assert_state_dicts_equal, require_reference
from dla.commands.export import save_pretrained
from dla.engine.checkpoint import load_checkpoint
from dla.engine.trainer import train
from dla.models import _pretrained
from dla.models.dla import default_cfgs
from engine_runs import quick_config

NAME = "dla46_c"
REPO = f"timm/{NAME}.in1k"
UNUSED_PROJECTS = ("level4.project.",)  # dla46_c's one tree of depth > 1 whose channels change (the authors' keys)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache of the test's own, offline; an empty torch.hub cache too; announcements forgotten."""
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(_pretrained, "_announced", set())
    return cache


def put_in_cache(cache: Path, repo: str, files: dict[str, Path], revision: str = "main") -> Path:
    """Store ``files`` (name in the repository: local file) as ``repo``'s ``revision``, the way ``huggingface_hub``
    does: content-addressed blobs, a snapshot folder of links named by a commit hash, and a ref. The snapshot folder."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
    snapshot = folder / "snapshots" / commit
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        data = source.read_bytes()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / revision).write_text(commit)
    return snapshot


def official_weights() -> dict[str, torch.Tensor]:
    """The authors' layout: the state dict fixture written from their code (random weights, real statistics)."""
    require_reference()
    return torch.load(FIXTURES / f"{NAME}_official_state_dict.pth", weights_only=True)


def timm_layout(state_dict, counters=True, linear_fc=False):
    """The same weights as timm stores them: no unused ``project`` layers (and, for older files, no batch counters
    or a linear classifier)."""
    out = {k: v for k, v in state_dict.items() if not k.startswith(UNUSED_PROJECTS)}
    if not counters:
        out = {k: v for k, v in out.items() if not k.endswith("num_batches_tracked")}
    if linear_fc:
        out["fc.weight"] = out["fc.weight"].flatten(1)
    return out


def safetensors_file(state_dict, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return path


def logits_on_fixture_input(model):
    io = torch.load(FIXTURES / f"{NAME}_official_io.pt", weights_only=True)
    with torch.no_grad():
        return model.eval()(io["input"]), io["logits"]


@pytest.mark.parametrize(
    "layout",
    [dict(counters=True), dict(counters=False), dict(counters=True, linear_fc=True)],
    ids=["timm", "timm-without-batch-counters", "timm-linear-classifier"],
)
def test_timm_layout_gives_the_authors_outputs(hub_cache, tmp_path, layout):
    put_in_cache(
        hub_cache, REPO, {"model.safetensors": safetensors_file(timm_layout(official_weights(), **layout), tmp_path / "w")}
    )
    logits, expected = logits_on_fixture_input(dla.create_model(NAME, pretrained=f"hf-hub:{REPO}"))
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_authors_layout_from_the_hub_and_old_bin_files(hub_cache, tmp_path):
    """A repository in the authors' layout, stored only as ``pytorch_model.bin`` without batch counters (files
    from before PyTorch 0.4.1, as the authors' own), loads as it is."""
    weights = {k: v for k, v in official_weights().items() if not k.endswith("num_batches_tracked")}
    torch.save(weights, tmp_path / "w.bin")
    put_in_cache(hub_cache, REPO, {"pytorch_model.bin": tmp_path / "w.bin"})
    logits, expected = logits_on_fixture_input(dla.create_model(NAME, pretrained=f"hf-hub:{REPO}"))
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_a_file_lacking_only_some_unused_projections_fails_loudly(hub_cache, tmp_path):
    """dla34 has two unused projections (level3, level4); a file without one of them is no known layout."""
    weights = {k: v for k, v in dla.create_model("dla34").state_dict().items() if not k.startswith("level3.project.")}
    put_in_cache(hub_cache, "timm/dla34.in1k", {"model.safetensors": safetensors_file(weights, tmp_path / "w")})
    with pytest.raises(dla.DLAError, match=r"6 missing keys \(level3\.project\.0\.weight"):
        dla.create_model("dla34", pretrained="hf-hub:timm/dla34.in1k")


def test_another_models_file_fails_with_the_key_counts(hub_cache, tmp_path):
    other = timm_layout(dla.create_model("dla46x_c").state_dict())
    put_in_cache(hub_cache, REPO, {"model.safetensors": safetensors_file(other, tmp_path / "w")})
    with pytest.raises(dla.DLAError, match=r"does not fit DLA \(DLA-46-C\): .*shape mismatches"):
        dla.create_model(NAME, pretrained=f"hf-hub:{REPO}")


def test_revisions_are_the_clients(hub_cache, tmp_path):
    first, second = (timm_layout(dla.create_model(NAME).state_dict()) for _ in range(2))
    put_in_cache(hub_cache, REPO, {"model.safetensors": safetensors_file(first, tmp_path / "a")})
    put_in_cache(hub_cache, REPO, {"model.safetensors": safetensors_file(second, tmp_path / "b")}, revision="v2")
    loaded = dla.create_model(NAME, pretrained=f"hf-hub:{REPO}@v2").state_dict()
    assert_state_dicts_equal({k: loaded[k] for k in second}, second)


def test_pretrained_true_prefers_the_hub_and_says_so_once(hub_cache, tmp_path, capsys):
    weights = timm_layout(dla.create_model(NAME).state_dict())
    put_in_cache(hub_cache, REPO, {"model.safetensors": safetensors_file(weights, tmp_path / "w")})
    for _ in range(2):
        loaded = dla.create_model(NAME, pretrained=True).state_dict()
    assert_state_dicts_equal({k: loaded[k] for k in weights}, weights)
    assert capsys.readouterr().err.count(f"weights from hf-hub:{REPO}") == 1


def test_pretrained_true_falls_back_to_the_authors_file(hub_cache, tmp_path, capsys):
    """Offline with nothing in the Hub cache, the authors' file in the torch.hub cache is used (and named)."""
    weights = dla.create_model(NAME).state_dict()
    url = default_cfgs[NAME].url
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(weights, checkpoints / os.path.basename(url))
    assert_state_dicts_equal(dla.create_model(NAME, pretrained=True).state_dict(), weights)
    assert f"weights from {url}" in capsys.readouterr().err


def test_no_source_names_every_source_tried(hub_cache, monkeypatch):
    def unreachable(url, hash_prefix=None):
        raise dla.DLAError(f"could not download {url}: no network")

    monkeypatch.setattr(_pretrained, "download", unreachable)
    with pytest.raises(dla.DLAError) as error:
        dla.create_model(NAME, pretrained=True)
    message = str(error.value)
    assert f"hf-hub:{REPO}" in message and "HF_HUB_OFFLINE" in message and default_cfgs[NAME].url in message
    assert "pretrained='path/to/file.pth'" in message


@pytest.mark.parametrize("name", ["hf-hub:dla34", "hf-hub:a/b/c", "hf-hub:/x"])
def test_malformed_hub_names_are_refused(name):
    with pytest.raises(dla.DLAError, match="hf-hub:<owner>/<repository>"):
        dla.create_model(NAME, pretrained=name)


def test_an_exported_folder_on_the_hub_is_a_checkpoint(hub_cache, tmp_path):
    """A folder of ``dla export --format hub`` uploaded as it is: ``create_model(pretrained=)`` and everything that
    takes a checkpoint (``load_checkpoint``: dla eval, dla predict) read it by its Hub name."""
    cfg = quick_config(
        tmp_path / "run",
        "model.name=engine_train_tiny",
        "data.options={length: 2, height: 32, width: 32}",
        "data.crop_size=[32, 32]",
        "data.batch_size=2",
        "optim.epochs=1",
    )
    train(cfg)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    folder = save_pretrained(checkpoint, tmp_path / "shared")
    put_in_cache(hub_cache, "someone/tiny-shapes", {p.name: p for p in folder.iterdir()})
    expected = load_checkpoint(checkpoint)
    state = load_checkpoint("hf-hub:someone/tiny-shapes")
    assert_state_dicts_equal({k: state["model"][k] for k in expected["model"]}, expected["model"])
    model = dla.create_model(state["model_name"], pretrained="hf-hub:someone/tiny-shapes", **state["model_kwargs"])
    assert_state_dicts_equal(model.state_dict(), expected["model"])


def test_offline_cache_by_environment_as_a_user_sets_it(tmp_path):
    """The client's own variables, set before Python starts: ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE=1``."""
    put_in_cache(tmp_path / "hf", REPO, {"model.safetensors": safetensors_file(timm_layout(official_weights()), tmp_path / "w")})
    code = f"import dla; dla.create_model({NAME!r}, pretrained='hf-hub:{REPO}')"
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"weights from hf-hub:{REPO}" in done.stderr
