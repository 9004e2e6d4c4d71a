"""``hubconf.py``: every registered model is a torch.hub entry point taking ``create_model``'s arguments."""

import importlib.util

import pytest
import torch

import dla
from conftest import MODEL_NAMES, ROOT


@pytest.fixture(scope="module")
def hubconf():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hub_load_from_the_project_root():
    model = torch.hub.load(str(ROOT), "dla34", source="local", num_classes=7)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_hubconf_declares_its_dependencies(hubconf):
    assert "torch" in hubconf.dependencies


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_classifier_is_an_entry_point(hubconf, name):
    with torch.device("meta"):
        model = getattr(hubconf, name)(num_classes=3, output_stride=16)
        out = model(torch.empty(1, 3, 64, 64))
    assert out.shape == (1, 3)
    assert model.feature_info.reduction()[-1] == 16


def test_every_registered_model_is_an_entry_point(hubconf):
    assert all(callable(getattr(hubconf, name)) for name in dla.list_models())
