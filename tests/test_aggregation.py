"""The aggregation framework of Sec. 3: node (Eq. 3, 4), IDA (Eq. 1) and HDA (Eq. 2) on their own."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dla
from dla.layers import BasicBlock


def randomize_batchnorm(module):
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode is not an identity."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return module.eval()


def manual_node(node, inputs, residual):
    """Eq. 3 (and Eq. 4 with ``residual``) written out with functional ops and the node's weights."""
    conv, bn = node.conv, node.bn
    x = F.conv2d(torch.cat(inputs, 1), conv.weight, padding=conv.padding)
    x = (x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    x = x * bn.weight[:, None, None] + bn.bias[:, None, None]
    return torch.relu(x + inputs[0] if residual else x)


class PlainBlock(nn.Module):
    """A user block whose forward takes only ``x``: a strided 3x3 convolution and ReLU."""

    def __init__(self, in_channels, out_channels, stride=1, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.mark.parametrize("kernel_size", [1, 3])
@pytest.mark.parametrize("residual", [False, True])
def test_aggregation_node_equations(kernel_size, residual):
    node = randomize_batchnorm(dla.AggregationNode(6 + 3, 6, kernel_size, residual=residual))
    inputs = [torch.randn(2, 6, 5, 7), torch.randn(2, 3, 5, 7)]
    with torch.no_grad():
        out = node(inputs)
        torch.testing.assert_close(out, manual_node(node, inputs, residual))
        # Eq. 4 differs from Eq. 3 by the deepest input before the ReLU.
        node.residual = not residual
        assert not torch.allclose(out, node(inputs))


@pytest.mark.parametrize(
    "sizes, resample",
    [
        ([(16, 16), (8, 8), (4, 4)], lambda x, size: F.max_pool2d(x, 2)),
        ([(4, 4), (8, 8), (16, 16)], lambda x, size: F.interpolate(x, size, mode="bilinear", align_corners=False)),
    ],
    ids=["down", "up"],
)
def test_ida_is_eq1(sizes, resample):
    channels, out_channels = [4, 6, 8], 5
    ida = randomize_batchnorm(dla.IDA(channels, out_channels))
    xs = [torch.randn(2, c, *size) for c, size in zip(channels, sizes, strict=True)]
    with torch.no_grad():
        out = ida(xs)
        first = ida.nodes[0]([resample(xs[0], sizes[1]), xs[1]])
        expected = ida.nodes[1]([resample(first, sizes[2]), xs[2]])
    assert out.shape == (2, out_channels, *sizes[-1])
    assert [node.conv.in_channels for node in ida.nodes] == [4 + 6, out_channels + 8]
    torch.testing.assert_close(out, expected)


def test_ida_needs_two_inputs():
    with pytest.raises(dla.DLAError):
        dla.IDA([8], 8)


@pytest.mark.parametrize("aggregate_input", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_hda_with_a_block_without_residual(depth, aggregate_input):
    tree = dla.HDA(depth, PlainBlock, 3, 8, stride=2, aggregate_input=aggregate_input)
    names = [name for name, _ in tree.named_modules()]
    assert not any("project" in name for name in names)
    assert sum(isinstance(m, PlainBlock) for m in tree.modules()) == 2**depth

    out = tree(torch.randn(2, 3, 15, 17))
    assert out.shape == (2, 8, 8, 9)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in tree.parameters())


def test_hda_depth_zero_is_an_error():
    with pytest.raises(dla.DLAError):
        dla.HDA(0, BasicBlock, 3, 8)


def test_hda_root_collects_the_hierarchy():
    in_channels, out_channels = 4, 8
    tree = dla.HDA(3, BasicBlock, in_channels, out_channels, stride=2, aggregate_input=True)
    # [L_2, L_1, input, R_2, R_1]: two blocks, the down-sampled input and two sub-tree aggregates.
    assert tree.tree2.tree2.root.conv.in_channels == 2 * out_channels + in_channels + 2 * out_channels
    assert tree(torch.randn(2, in_channels, 16, 16)).shape == (2, out_channels, 8, 8)
