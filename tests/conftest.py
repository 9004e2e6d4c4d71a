"""Shared paths and helpers for the test suite.

The reference facts (parameter counts, the authors' state-dict layouts, output fixtures) live outside the
project, in ``$DLA_SHARED_ROOT`` or ``<project root>/../shared``; tests that need them are skipped, with a
reason, when that folder is absent.
"""

import json
import os
import tempfile
from pathlib import Path

import pytest
import torch

# No test reaches the Hugging Face Hub: the client (imported later, reading these once) sees an empty cache, offline.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="dla-tests-hf-cache-")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DLA_SHARED_ROOT", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"
OFFICIAL = REFERENCE / "official_dla"
FIXTURES = OFFICIAL / "fixtures"

MODEL_NAMES = (
    "dla34",
    "dla46_c",
    "dla46x_c",
    "dla60x_c",
    "dla60",
    "dla60x",
    "dla102",
    "dla102x",
    "dla102x2",
    "dla169",
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _cache_folder(tmp_path_factory):
    """The counts ``dla models`` caches (``dla.model_facts``) go to a folder of the session, not the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


def require_reference():
    """Skip the calling test when the shared reference folder is not there."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference folder {REFERENCE} not found (set DLA_SHARED_ROOT)")


@pytest.fixture(scope="session")
def counts():
    """``counts.json``: parameters, multiply-adds and unused projection parameters per model."""
    require_reference()
    return json.loads((REFERENCE / "counts.json").read_text())


def shape_string(tensor):
    """A tensor's shape written as in the keys files: ``16x3x7x7``, ``16`` or ``scalar``."""
    return "x".join(map(str, tensor.shape)) if tensor.dim() else "scalar"


def read_keys(name):
    """``official_dla/<name>.keys.txt`` as a list of ``(key, shape string)`` in file order."""
    require_reference()
    lines = (OFFICIAL / f"{name}.keys.txt").read_text().splitlines()
    return [tuple(line.split()) for line in lines if line.strip()]


def state_dict_layout(model):
    """A model's state dict as ``(key, shape string)`` pairs, in registration order."""
    return [(key, shape_string(value)) for key, value in model.state_dict().items()]


def state_dict_from_layout(layout):
    """Random tensors of the given ``(key, shape string)`` layout (``scalar``: a long counter)."""
    return {
        key: torch.tensor(7) if shape == "scalar" else torch.randn(tuple(int(s) for s in shape.split("x")))
        for key, shape in layout
    }


def assert_state_dicts_equal(actual, expected):
    assert list(actual) == list(expected)
    different = [key for key in expected if not torch.equal(actual[key], expected[key])]
    assert not different, f"{len(different)} entries differ, e.g. {different[:5]}"


@pytest.fixture(scope="session")
def data_root():
    """The folder of the real data sets: ``$DLA_DATA_ROOT``, by default ``<shared>/data``."""
    return Path(os.environ.get("DLA_DATA_ROOT", SHARED / "data"))


@pytest.fixture(scope="session")
def real_data(data_root):
    """``real_data(name, inside)``: the real data set ``data_root / name``, skipping the calling test when its
    sub-folder ``inside`` is not there."""

    def find(name, inside):
        path = data_root / name
        if not (path / inside).is_dir():
            pytest.skip(f"real {name} not found at {path} (set DLA_DATA_ROOT)")
        return path

    return find


# Tiny trained checkpoints of each task (``engine_runs.train_tiny``, seconds each), for the tests that predict with one.


@pytest.fixture(scope="session")
def segmentation_checkpoint(tmp_path_factory) -> str:
    from engine_runs import train_tiny  # registers the stand-in models: only for the tests that use them

    return train_tiny(tmp_path_factory.mktemp("segmentation"), "segmentation")


@pytest.fixture(scope="session")
def classification_checkpoint(tmp_path_factory) -> str:
    from engine_runs import train_tiny

    return train_tiny(tmp_path_factory.mktemp("classification"), "classification")


@pytest.fixture(scope="session")
def boundary_checkpoint(tmp_path_factory) -> str:
    from engine_runs import train_tiny

    return train_tiny(tmp_path_factory.mktemp("boundaries"), "boundaries", tmp_path_factory.mktemp("rectangles"))
