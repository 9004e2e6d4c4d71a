"""Feature extraction: ``FeatureInfo`` describes a backbone's levels, ``FeatureListNet`` returns them."""

from typing import Dict, List, Optional, Sequence, Union

from torch import Tensor, nn

from ..errors import DLAError


class FeatureInfo:
    """Channels, reduction (stride w.r.t. the input) and module name of a backbone's levels.

    ``channels()`` and ``reduction()`` give the selected levels (``out_indices``) as lists; with an index
    they give one level's value, counted within the selection.
    """

    def __init__(self, levels: List[Dict[str, Union[int, str]]], out_indices: Optional[Sequence[int]] = None) -> None:
        self.levels = levels
        self.out_indices = tuple(range(len(levels))) if out_indices is None else tuple(out_indices)
        for i in self.out_indices:
            if not 0 <= i < len(levels):
                raise DLAError(f"out_indices {list(self.out_indices)}: level {i} does not exist (levels 0-{len(levels) - 1})")

    def select(self, out_indices: Sequence[int]) -> "FeatureInfo":
        return FeatureInfo(self.levels, out_indices)

    def get(self, key: str, idx: Optional[int] = None) -> Union[list, int, str]:
        values = [self.levels[i][key] for i in self.out_indices]
        return values if idx is None else values[idx]

    def channels(self, idx: Optional[int] = None) -> Union[List[int], int]:
        return self.get("num_chs", idx)

    def reduction(self, idx: Optional[int] = None) -> Union[List[int], int]:
        return self.get("reduction", idx)

    def module_name(self, idx: Optional[int] = None) -> Union[List[str], str]:
        return self.get("module", idx)

    def __len__(self) -> int:
        return len(self.out_indices)

    def __getitem__(self, idx: int) -> Dict[str, Union[int, str]]:
        return self.levels[self.out_indices[idx]]

    def __repr__(self) -> str:
        return f"FeatureInfo({[self.levels[i] for i in self.out_indices]})"


class FeatureListNet(nn.ModuleDict):
    """A backbone cut after its deepest selected level; ``forward`` returns the selected levels' maps.

    The backbone's top-level modules up to that level are run in order, so it fits any network whose
    ``forward_features`` is a plain sequence of its children (all DLA classification networks). Their
    names, and so the state-dict keys, are the backbone's own: a backbone checkpoint loads into it
    once the classifier's keys are dropped.

    Shapes: ``(N, C, H, W) -> [(N, channels[i], H / reduction[i], W / reduction[i]) for i in out_indices]``
    (sizes rounded up).
    """

    def __init__(self, model: nn.Module, out_indices: Sequence[int] = (1, 2, 3, 4, 5)) -> None:
        super().__init__()
        self.feature_info = model.feature_info.select(out_indices)
        self.pretrained_cfg = model.pretrained_cfg
        wanted = set(self.feature_info.module_name())
        for name, module in model.named_children():
            if not wanted:
                break
            self[name] = module
            wanted.discard(name)

    def forward(self, x: Tensor) -> List[Tensor]:
        outputs = {}
        for name, module in self.items():
            x = module(x)
            outputs[name] = x
        return [outputs[name] for name in self.feature_info.module_name()]
