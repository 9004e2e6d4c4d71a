"""The authors' state dicts load unchanged and give the authors' outputs (``official_dla/fixtures``)."""

import pytest
import torch

import dla
from conftest import FIXTURES, require_reference


@pytest.mark.parametrize("name", ["dla46_c", "dla46x_c"])
def test_official_weights_reproduce_official_logits(name):
    require_reference()
    model = dla.create_model(name, pretrained=str(FIXTURES / f"{name}_official_state_dict.pth")).eval()
    io = torch.load(FIXTURES / f"{name}_official_io.pt", weights_only=True)
    with torch.no_grad():
        logits = model(io["input"])
    expected = io["logits"]
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max() <= 1e-4 * expected.abs().max()
