"""Running a model at another output stride than it was trained at (DeepLabv3, Sec. 4.2: trained at 16,
evaluated at 8 with the same weights), for evaluation, prediction and export alike."""

import contextlib
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from torch import nn

from ..errors import DLAError


@runtime_checkable
class StrideSwitchable(Protocol):
    """A model that can run at another output stride with the same weights (DeepLabv3, Sec. 4.2)."""

    output_stride: int

    def set_output_stride(self, output_stride: int) -> None: ...


@contextlib.contextmanager
def evaluated_at(model: nn.Module, output_stride: int | None) -> Iterator[None]:
    """Run the block with the model at ``output_stride`` (DeepLabv3: trained at 16, evaluated at 8, Sec. 4.2),
    then restore its own; ``None`` leaves it as it is."""
    if output_stride is None:
        yield
        return
    if not isinstance(model, StrideSwitchable):
        raise DLAError(f"eval.output_stride: {type(model).__name__} cannot change its output stride (DeepLabv3 can)")
    trained = model.output_stride
    model.set_output_stride(output_stride)
    try:
        yield
    finally:
        model.set_output_stride(trained)
