"""The paper's aggregation framework (Sec. 3): the aggregation node, IDA and HDA.

These modules know nothing of datasets, tasks or a particular backbone: they take feature maps (IDA)
or a block factory (HDA) and can be reused on any network.

Argument order. A node concatenates its inputs in the order given, which fixes the channel order of its
weights. IDA passes them in Eq. 1's order (aggregate, then the deeper input). Eq. 2 lists an HDA node's
inputs shallow to deep and Eq. 4 adds the residual of the last, deepest one; HDA passes them *deepest
first* and the node adds the residual of ``inputs[0]``: the same function with the concatenation in the
channel order of the authors' published weights, so their checkpoints load unchanged.
"""

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import DLAError
from .layers.blocks import BlockFactory
from .layers.conv_bn_act import ConvBnAct
from .layers.upsample import BilinearUpsample


class AggregationNode(nn.Module):
    """The aggregation node N of Eq. 3, or of Eq. 4 with ``residual=True`` (Fig. 8).

    ``N(x_1, ..., x_n) = relu(BatchNorm(sum_i W_i x_i + b) [+ x_n])``: one convolution over the
    concatenated inputs (in the order given), BatchNorm and ReLU; Eq. 4's ``x_n``, the deepest input, is
    ``inputs[0]`` here (HDA passes its inputs deepest first, see the module docstring). ``sum_i W_i x_i``
    is a convolution of the concatenation, and ``b`` is folded into BatchNorm's shift. Sec. 3.3: nodes are
    1x1 in classification and 3x3 in segmentation; the residual helps hierarchies of depth 4 or more
    (App. A: networks over 100 layers).

    Shapes: inputs ``(N, C_i, H, W)``, all the same ``H, W``; output ``(N, out_channels, H, W)``.
    With ``residual=True`` the first input must have ``out_channels`` channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, residual: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual

    def forward(self, inputs: list[Tensor]) -> Tensor:
        x = self.bn(self.conv(torch.cat(inputs, 1)))
        if self.residual:
            x = x + inputs[0]
        return self.relu(x)


def _resample(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Bring ``x`` to spatial ``size``: max pooling when shrinking (as the backbone's stages do), bilinear when growing."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_max_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class IDA(nn.Module):
    """Iterative deep aggregation, Eq. 1 and Fig. 2(c).

    ``I(x_1, ..., x_n) = x_1`` if ``n = 1``, else ``I(N(x_1, x_2), x_3, ..., x_n)``: the shallowest input is
    merged with the next deeper one, the aggregate with the next, and so on, so the shallowest features
    pass through the most nodes. Node ``i`` is an Eq. 3 ``AggregationNode`` over ``(aggregate, x_{i+1})``,
    Eq. 1's argument order, producing ``out_channels``.

    Resolutions may differ: the running aggregate is resampled to the next input's size (max pooling to
    go down, as the backbone does between stages, bilinear to go up), so the result has the resolution of
    the deepest input. The learned up-sampling form for dense prediction is ``IDAUp`` (Fig. 4).

    Shapes: ``xs[i]`` is ``(N, in_channels[i], H_i, W_i)`` shallow to deep; output ``(N, out_channels, H_n, W_n)``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise DLAError(f"IDA needs at least two inputs to aggregate, got in_channels={list(in_channels)}")
        aggregate_channels = [in_channels[0]] + [out_channels] * (len(in_channels) - 2)
        self.nodes = nn.ModuleList(
            AggregationNode(aggregate + deeper, out_channels, kernel_size)
            for aggregate, deeper in zip(aggregate_channels, in_channels[1:], strict=True)
        )

    def forward(self, xs: list[Tensor]) -> Tensor:
        if len(xs) != len(self.nodes) + 1:
            raise DLAError(f"IDA was built for {len(self.nodes) + 1} inputs, got {len(xs)}")
        aggregate = xs[0]
        for node, deeper in zip(self.nodes, xs[1:], strict=True):
            aggregate = node([_resample(aggregate, deeper.shape[-2:]), deeper])
        return aggregate


class IDAUp(nn.Module):
    """Interpolation by iterative deep aggregation, Fig. 4 and Sec. 4.2.

    Each input ``x_i`` (shallow to deep) is projected to ``out_channels`` (1x1 convolution-BN-ReLU, skipped
    when it already has them) and up-sampled by ``up_factors[i]`` to the resolution of ``x_1`` (a
    learnable transposed convolution initialised to bilinear, skipped for factor 1). The maps are then
    aggregated iteratively as in Eq. 1, with 3x3 nodes (Sec. 3.3: "in semantic segmentation ... 3x3
    convolution"): ``a_1 = N(x_1, x_2)``, ``a_i = N(a_{i-1}, x_{i+1})``. The nodes are Eq. 3 nodes stored
    as ``node_i = [conv, BN, ReLU]``, the authors' layout (``proj_i``, ``up_i``, ``node_i``).

    An up-sampled map can be a little larger than ``x_1`` when a size was not divisible by the factor
    (the backbone rounds sizes up); it is cropped at the bottom and right, where the extra pixels lie.

    Shapes: ``xs[i]`` ``(N, in_channels[i], ~H / f_i, ~W / f_i)`` -> every aggregate ``a_i`` ``(N, out_channels, H, W)``;
    ``forward`` returns the list ``[a_1, ..., a_{n-1}]`` (the last is the result).
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: int, up_factors: Sequence[int], node_kernel_size: int = 3
    ) -> None:
        super().__init__()
        if len(in_channels) != len(up_factors) or len(in_channels) < 2:
            raise DLAError(
                f"IDAUp needs two or more inputs and one up-sampling factor each, got in_channels={list(in_channels)} "
                f"and up_factors={list(up_factors)}"
            )
        self.num_inputs = len(in_channels)
        for i, (channels, factor) in enumerate(zip(in_channels, up_factors, strict=True)):
            project = nn.Identity() if channels == out_channels else ConvBnAct(channels, out_channels, kernel_size=1)
            self.add_module(f"proj_{i}", project)
            self.add_module(f"up_{i}", nn.Identity() if factor == 1 else BilinearUpsample(out_channels, int(factor)))
        for i in range(1, self.num_inputs):
            self.add_module(f"node_{i}", ConvBnAct(2 * out_channels, out_channels, kernel_size=node_kernel_size))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        if len(xs) != self.num_inputs:
            raise DLAError(f"IDAUp was built for {self.num_inputs} inputs, got {len(xs)}")
        height, width = xs[0].shape[-2:]
        maps = [self.get_submodule(f"up_{i}")(self.get_submodule(f"proj_{i}")(x)) for i, x in enumerate(xs)]
        aggregate, aggregates = maps[0], []
        for i in range(1, self.num_inputs):
            deeper = maps[i][..., :height, :width]
            aggregate = self.get_submodule(f"node_{i}")(torch.cat([aggregate, deeper], 1))
            aggregates.append(aggregate)
        return aggregates


class HDA(nn.Module):
    """Hierarchical deep aggregation ``T_n``, Eq. 2 with the refinements of Fig. 2(e) and 2(f).

    A tree of depth ``n`` over ``2^n`` blocks ``B``::

        T_n(x)   = N(R_{n-1}(x), ..., R_1(x), L_1(x), L_2(x))
        L_1(x)   = B(R_1(x)),  L_2(x) = B(L_1(x))
        R_m(x)   = T_m(x) if m = n - 1 else T_m(R_{m+1}(x))

    Fig. 2(e): each sub-tree's aggregate is fed back into the backbone as the input of the next sub-tree
    (``tree2`` runs on ``tree1``'s output). Fig. 2(f): nodes of the same depth are merged, so only the
    deepest, right-most sub-tree of depth 1 has a node (``root``); every enclosing tree hands its
    ``R_m`` down to it (``children``). With ``aggregate_input=True`` the tree's (down-sampled) input also
    joins the root: this is IDA across stages combined with HDA (Sec. 4.1, "we only need to change the
    root node at each hierarchy by combining Equation 1 and 2").

    The root's inputs, deepest first (see the module docstring):
    ``[L_2, L_1, input (if aggregate_input), R_{n-1}, ..., R_1]``.

    Down-sampling (Sec. 4.1) is a 2x2 max pooling of the shortcut and the stride of the first block;
    pooling rounds up (``ceil_mode``), so odd sizes match the strided convolution and sizes divisible by
    the stride are unchanged. A tree whose channels change builds a 1x1 projection (``project``) of the
    shortcut for its first block. The authors' trees of depth > 1 build one too and never use its output
    (their sub-tree recomputes it); we keep that layer so their checkpoints load with ``strict=True``,
    but never run it.

    Args:
        depth: ``n``, the number of aggregation levels (``2^depth`` blocks).
        block: ``block(in_channels, out_channels, stride=..., dilation=...)``, any module factory. If its
            module's ``forward`` accepts ``residual``, it is given the projected shortcut (the residual
            blocks of Fig. 9); otherwise it is called on ``x`` alone and no projection is built.
        in_channels, out_channels: channels of the tree's input and output.
        stride: down-sampling of the tree (2 between stages, 1 within).
        dilation: dilation of the blocks, used in place of stride for output strides below 32.
        aggregate_input: also aggregate the tree's input at its root (IDA link between stages).
        root_channels: channels handed down by enclosing trees (their ``R_m`` and inputs); 0 at the top.
        root_kernel_size: the node's kernel size (1 for classification).
        root_residual: use Eq. 4 instead of Eq. 3 at the root.

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self,
        depth: int,
        block: BlockFactory,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        dilation: int = 1,
        aggregate_input: bool = False,
        root_channels: int = 0,
        root_kernel_size: int = 1,
        root_residual: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise DLAError(f"HDA depth must be at least 1, got {depth}")
        self.depth = depth
        self.aggregate_input = aggregate_input
        root_channels += in_channels if aggregate_input else 0
        if depth == 1:
            self.tree1 = block(in_channels, out_channels, stride=stride, dilation=dilation)
            self.tree2 = block(out_channels, out_channels, stride=1, dilation=dilation)
            self.root = AggregationNode(2 * out_channels + root_channels, out_channels, root_kernel_size, root_residual)
            self.takes_residual = _accepts_residual(self.tree1)
        else:
            self.tree1 = HDA(
                depth - 1,
                block,
                in_channels,
                out_channels,
                stride,
                dilation=dilation,
                root_kernel_size=root_kernel_size,
                root_residual=root_residual,
            )
            self.tree2 = HDA(
                depth - 1,
                block,
                out_channels,
                out_channels,
                1,
                root_channels=root_channels + out_channels,
                dilation=dilation,
                root_kernel_size=root_kernel_size,
                root_residual=root_residual,
            )
            self.takes_residual = self.tree1.takes_residual
        self.downsample = nn.MaxPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.project = None
        if in_channels != out_channels and self.takes_residual:
            self.project = ConvBnAct(in_channels, out_channels, kernel_size=1, act=False)

    def forward(self, x: Tensor, children: list[Tensor] | None = None) -> Tensor:
        children = [] if children is None else children
        if self.depth > 1:
            if self.aggregate_input:
                children = children + [self.downsample(x)]
            x1 = self.tree1(x)  # R_{n-1}: the left sub-tree's aggregate, fed on (Fig. 2e) and to the root (Fig. 2f)
            return self.tree2(x1, children + [x1])
        bottom = self.downsample(x)
        if self.aggregate_input:
            children = children + [bottom]
        if self.takes_residual:
            x1 = self.tree1(x, bottom if self.project is None else self.project(bottom))  # L_1
        else:
            x1 = self.tree1(x)
        x2 = self.tree2(x1)  # L_2
        return self.root([x2, x1] + children)


def _accepts_residual(module: nn.Module) -> bool:
    return "residual" in inspect.signature(module.forward).parameters


__all__ = ["AggregationNode", "HDA", "IDA", "IDAUp"]
