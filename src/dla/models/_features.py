"""The feature contract of every backbone (timm's): ``feature_info`` describes its levels,
``forward_intermediates`` returns their maps, and ``FeatureListNet`` is a backbone used as a feature extractor.

A backbone (DLA, ResNet, DenseNet, DFANet's Xception: a ``Backbone``) lists its levels, shallow to deep, as
the layers that compute each from the previous one (``levels()``); ``run_levels`` runs them for
``forward_intermediates`` and ``forward_features`` alike, which ``FeatureListNet`` and every head use, so
all agree.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypedDict, TypeVar, overload

from torch import Tensor, nn

from ..errors import DLAError

Levels = list[Sequence[Callable[[Tensor], Tensor]]]
"""A backbone's levels: level ``i`` is its layers applied in order to level ``i - 1``'s map (to the input for 0)."""

Indices = int | Sequence[int] | None
"""Which levels ``forward_intermediates`` returns: ``None`` all, an int ``n`` the last ``n``, or level indices
(negative ones count from the end)."""

T = TypeVar("T")


class FeatureLevel(TypedDict):
    """One level of ``FeatureInfo``: its channels, reduction (stride w.r.t. the input) and module name."""

    num_chs: int
    reduction: int
    module: str


class FeatureInfo:
    """Channels, reduction (stride w.r.t. the input) and module name of a backbone's levels.

    ``channels()`` and ``reduction()`` give the selected levels (``out_indices``) as lists; with an index
    they give one level's value, counted within the selection.
    """

    def __init__(self, levels: list[FeatureLevel], out_indices: Sequence[int] | None = None) -> None:
        self.levels = levels
        self.out_indices = tuple(range(len(levels))) if out_indices is None else tuple(out_indices)
        for i in self.out_indices:
            if not 0 <= i < len(levels):
                raise DLAError(f"out_indices {list(self.out_indices)}: level {i} does not exist (levels 0-{len(levels) - 1})")

    def select(self, out_indices: Sequence[int]) -> "FeatureInfo":
        return FeatureInfo(self.levels, out_indices)

    def get(self, key: Literal["num_chs", "reduction", "module"], idx: int | None = None) -> list | int | str:
        return self._pick([self.levels[i][key] for i in self.out_indices], idx)

    @overload
    def channels(self, idx: None = None) -> list[int]: ...
    @overload
    def channels(self, idx: int) -> int: ...
    def channels(self, idx: int | None = None) -> list[int] | int:
        return self._pick([self.levels[i]["num_chs"] for i in self.out_indices], idx)

    @overload
    def reduction(self, idx: None = None) -> list[int]: ...
    @overload
    def reduction(self, idx: int) -> int: ...
    def reduction(self, idx: int | None = None) -> list[int] | int:
        return self._pick([self.levels[i]["reduction"] for i in self.out_indices], idx)

    @overload
    def module_name(self, idx: None = None) -> list[str]: ...
    @overload
    def module_name(self, idx: int) -> str: ...
    def module_name(self, idx: int | None = None) -> list[str] | str:
        return self._pick([self.levels[i]["module"] for i in self.out_indices], idx)

    @staticmethod
    def _pick(values: list[T], idx: int | None) -> list[T] | T:
        return values if idx is None else values[idx]

    def __len__(self) -> int:
        return len(self.out_indices)

    def __getitem__(self, idx: int) -> FeatureLevel:
        return self.levels[self.out_indices[idx]]

    def __repr__(self) -> str:
        return f"FeatureInfo({[self.levels[i] for i in self.out_indices]})"


def feature_take_indices(num_levels: int, indices: Indices = None) -> tuple[list[int], int]:
    """The level indices ``indices`` selects (``Indices``), in its order, and the deepest of them (timm's)."""
    if indices is None:
        take = list(range(num_levels))
    elif isinstance(indices, int):
        if not 0 < indices <= num_levels:
            raise DLAError(f"indices={indices}: a backbone of {num_levels} levels has the last 1 to {num_levels}")
        take = list(range(num_levels - indices, num_levels))
    else:
        take = [num_levels + i if i < 0 else i for i in indices]
        if not take or not all(0 <= i < num_levels for i in take):
            raise DLAError(f"indices {list(indices)}: levels are 0-{num_levels - 1}")
    return take, max(take)


def run_levels(levels: Levels, x: Tensor, indices: Indices = None, stop_early: bool = False) -> tuple[Tensor, list[Tensor]]:
    """Run a backbone's ``levels`` on ``x``: the last map computed and the maps of the selected levels.

    Without ``stop_early`` every level runs and the first result is the deepest level's map; with it the
    levels past the deepest selected one are not run (nor needed) and the first result is that level's map.
    """
    take, deepest = feature_take_indices(len(levels), indices)
    maps: dict[int, Tensor] = {}
    for i, layers in enumerate(levels[: deepest + 1] if stop_early else levels):
        for layer in layers:
            x = layer(x)
        if i in take:
            maps[i] = x
    return x, [maps[i] for i in take]


class Backbone(nn.Module):
    """A network of levels (``levels()``, described by ``feature_info``) with timm's feature contract.

    ``forward_intermediates(x, indices=None, stop_early=False, intermediates_only=False)`` returns the last
    map and the maps of the selected levels (``Indices``), or those maps alone; ``forward_features(x)`` the
    deepest level's map. Keyword arguments beyond these go to ``levels`` (a cascaded DFANet backbone's
    ``previous`` maps). A subclass builds its modules and ``feature_info`` and says how they make the levels.
    """

    feature_info: FeatureInfo

    def levels(self, *args: Any, **level_args: Any) -> Levels:
        """Level ``i``'s layers, applied in order to level ``i - 1``'s map (to the input for level 0); a
        subclass takes the arguments it needs (none, or DFANet's ``previous``)."""
        raise NotImplementedError

    @overload
    def forward_intermediates(
        self,
        x: Tensor,
        indices: Indices = None,
        stop_early: bool = False,
        *,
        intermediates_only: Literal[True],
        **level_args: Any,
    ) -> list[Tensor]: ...
    @overload
    def forward_intermediates(
        self,
        x: Tensor,
        indices: Indices = None,
        stop_early: bool = False,
        intermediates_only: Literal[False] = False,
        **level_args: Any,
    ) -> tuple[Tensor, list[Tensor]]: ...
    @overload
    def forward_intermediates(
        self,
        x: Tensor,
        indices: Indices = None,
        stop_early: bool = False,
        intermediates_only: bool = False,
        **level_args: Any,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]: ...
    def forward_intermediates(
        self,
        x: Tensor,
        indices: Indices = None,
        stop_early: bool = False,
        intermediates_only: bool = False,
        **level_args: Any,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """``(N, C, H, W) ->`` (the last map computed, the selected levels' maps) or, with
        ``intermediates_only``, the maps alone; level ``i`` is ``(N, channels[i], ~H / reduction[i],
        ~W / reduction[i])`` (``feature_info``)."""
        x, intermediates = run_levels(self.levels(**level_args), x, indices, stop_early)
        return intermediates if intermediates_only else (x, intermediates)

    def forward_features(self, x: Tensor, **level_args: Any) -> Tensor:
        """The deepest level's map, ``(N, channels[-1], ~H / reduction[-1], ~W / reduction[-1])``."""
        return run_levels(self.levels(**level_args), x, indices=1)[0]


class FeatureListNet(nn.Module):
    """A backbone cut after its deepest selected level; ``forward`` returns the selected levels' maps.

    It holds the backbone's top-level modules up to the one containing the deepest selected level, under
    their own names, so its state-dict keys are the backbone's minus the dropped tail and the classifier (a
    backbone checkpoint loads into it once those keys are dropped). ``forward`` is the backbone's
    ``forward_intermediates`` with ``stop_early``, so the dropped modules are never run; the backbone object
    is kept for that method only (not as a submodule: its keys would gain a prefix).

    Shapes: ``(N, C, H, W) -> [(N, channels[i], ~H / reduction[i], ~W / reduction[i]) for i in out_indices]``
    (sizes rounded as the backbone rounds them).
    """

    def __init__(self, model: Backbone, out_indices: Sequence[int] = (1, 2, 3, 4, 5)) -> None:
        super().__init__()
        self.feature_info = model.feature_info.select(out_indices)
        self.pretrained_cfg = model.pretrained_cfg
        _, deepest_level = feature_take_indices(len(model.feature_info.levels), self.feature_info.out_indices)
        deepest = model.feature_info.levels[deepest_level]["module"].split(".")[0]
        for name, module in model.named_children():
            self.add_module(name, module)
            if name == deepest:
                break
        self.forward_intermediates = model.forward_intermediates  # a bound method: not registered as a submodule

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_intermediates(x, self.feature_info.out_indices, stop_early=True, intermediates_only=True)


__all__ = ["Backbone", "FeatureInfo", "FeatureLevel", "FeatureListNet", "Indices", "Levels", "feature_take_indices", "run_levels"]
