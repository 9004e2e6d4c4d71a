"""The configured loss: a weighted sum of named losses, each with its options (``optim.loss``)::

    optim:
      loss:
        - {name: ce, weight: 1.0}
        - {name: lovasz, weight: 0.5, per_image: false, class_weights: false}

``class_weights: false`` leaves ``optim.class_weights`` out of that one term (each loss of mmseg has its own class
weights): weighted cross-entropy beside an unweighted Lovász-softmax, the surrogate of the mean IoU itself.

A loss is a function ``loss(logits, target, ignore_index, class_weights, *, options...)``; its options are its
keyword-only parameters, whose type hints say what a value must be (``Probability``: a number in (0, 1], ...) and
whose defaults are what an entry may leave out. ``loss_terms`` checks a list of entries against the losses a task
offers (name known, weight a positive number, each option one of that loss's and of its type and range) and
raises a ``DLAError`` naming the entry's key (``optim.loss[1].gamma``) at config load, before any work is spent.
"""

import difflib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from torch import Tensor

from ..errors import DLAError
from ._dense import ClassWeights

LossFunction = Callable[..., Tensor]  # (logits, target, ignore_index, class_weights, **options) -> a scalar


@dataclass(frozen=True)
class Interval:
    """The values an option accepts, ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    low: float
    high: float = math.inf
    low_open: bool = False

    def __contains__(self, value: float) -> bool:
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


Probability = Annotated[float, Interval(0.0, 1.0, low_open=True)]
NonNegative = Annotated[float, Interval(0.0)]
Count = Annotated[int, Interval(0)]


@dataclass(frozen=True)
class LossTerm:
    """One summand of the configured loss: ``weight x function(..., **options)``, given the class weights unless
    ``weighted`` is false."""

    name: str
    function: LossFunction
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)
    weighted: bool = True

    def __call__(self, logits: Tensor, target: Tensor, ignore_index: int, class_weights: ClassWeights) -> Tensor:
        weights = class_weights if self.weighted else None
        return self.weight * self.function(logits, target, ignore_index, weights, **self.options)


def combined_loss(
    terms: Sequence[LossTerm], logits: Tensor, target: Tensor, ignore_index: int, class_weights: ClassWeights = None
) -> Tensor:
    """The weighted sum of the ``terms`` of one batch's logits (a single term of weight 1 is that loss exactly)."""
    total = terms[0](logits, target, ignore_index, class_weights)
    for term in terms[1:]:
        total = total + term(logits, target, ignore_index, class_weights)
    return total


def loss_options(function: LossFunction) -> dict[str, inspect.Parameter]:
    """The options of a loss: its keyword-only parameters, by name."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def loss_terms(entries: Sequence[Any], losses: Mapping[str, LossFunction], key: str = "optim.loss") -> list[LossTerm]:
    """The terms of ``entries`` (mappings ``{name, weight, class_weights, options...}``; ``weight`` 1 and
    ``class_weights`` true when left out), each checked against ``losses``, the losses the task offers by name;
    a ``DLAError`` naming ``key[i]`` and what to write."""
    if not entries:
        raise DLAError(f"{key} must list one loss at least, e.g. [{{name: {next(iter(losses))}, weight: 1.0}}]")
    return [_term(entry, losses, f"{key}[{i}]") for i, entry in enumerate(entries)]


def _term(entry: Any, losses: Mapping[str, LossFunction], key: str) -> LossTerm:
    offered = ", ".join(losses)
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise DLAError(f"{key} must be a mapping {{name: <loss>, weight: <number>, options}} (losses: {offered}); got {entry!r}")
    name = entry["name"]
    if name not in losses:
        close = difflib.get_close_matches(str(name), list(losses), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DLAError(f"{key}.name: unknown loss {name!r} for this task; its losses are {offered}{hint}")
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < math.inf:
        raise DLAError(f"{key}.weight must be a positive number, got {weight!r}")
    weighted = entry.get("class_weights", True)
    if not isinstance(weighted, bool):
        raise DLAError(f"{key}.class_weights must be true (use optim.class_weights) or false (leave them out), got {weighted!r}")
    options = {option: value for option, value in entry.items() if option not in ("name", "weight", "class_weights")}
    return LossTerm(name, losses[name], float(weight), _checked_options(options, name, losses, key), weighted)


def _checked_options(options: dict[str, Any], name: str, losses: Mapping[str, LossFunction], key: str) -> dict[str, Any]:
    accepted = loss_options(losses[name])
    hints = get_type_hints(losses[name], include_extras=True)
    checked = {}
    for option, value in options.items():
        if option not in accepted:
            owners = [other for other, function in losses.items() if option in loss_options(function)]
            whose = f" ({option} is an option of {', '.join(owners)})" if owners else ""
            takes = f"its options are {', '.join(accepted)}" if accepted else "it takes no options"
            raise DLAError(f"{key}.{option}: {name} has no option {option!r}{whose}; {takes}")
        checked[option] = _option_value(value, hints[option], f"{key}.{option}")
    return checked


def _option_value(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the option's type (an integer is a number), checked against its ``Interval``."""
    kind, limits = (get_args(hint)[0], get_args(hint)[1:]) if get_origin(hint) is Annotated else (hint, ())
    names = {bool: "true or false", int: "an integer", float: "a number"}
    accepted = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, accepted = float(value), True
    if not accepted or any(value not in interval for interval in limits):
        what = " ".join([names[kind], *(str(interval) for interval in limits)])
        raise DLAError(f"{key} must be {what}, got {value!r}")
    return value
