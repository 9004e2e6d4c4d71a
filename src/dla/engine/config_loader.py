"""Loading and checking the training configuration: YAML files and ``--set`` overrides into a ``dla.config.Config``.

The schema is ``dla.config`` (typed dataclasses with defaults); ``load_config`` returns a ``Config`` whose
values have been checked against its type hints and converted once, here. What a key means for a task (its
default, whether the task reads it at all) is the task's (``dla.tasks``); every key is documented in
``configs/README.md``.

Design choices:

- Strict: an unknown key, in a file or an override, is an error that suggests the nearest valid key
  (a typo such as ``optim.lrr`` would otherwise silently train with the default).
- Types come from the hints; an integer is accepted where a number is expected (``lr: 1``), and so is
  text that YAML 1.2 reads as a number (its core schema's float, Sec. 10.3.2: ``1e6``, ``1.0e6``, ``1e-4``,
  ``-2E3``, ``.5e1``): PyYAML reads YAML 1.1, whose floats need a dot and a signed exponent (``1.0e+6``),
  and so gives these as text. Nothing else is converted from text (``lr: fast`` is an error), text is not
  read as an integer, and a number where text is expected (``model.name: 34``) stays an error.
- A file may start from another: ``base: camvid_dla34_2s.yaml`` (relative to the file) loads that one
  first, so a variant of a recipe states only what differs.
- Paths are resolved once, here, against the current directory, so that the ``config.yaml`` saved in
  the run directory says exactly which data and folder were used.
"""

import copy
import difflib
import os
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from ..config import Config, required
from ..errors import DLAError
from ..tasks import TASKS, Task, get_task

# Config keys a resumed run may change (prefixes): how long it trains, how often it evaluates and logs,
# where its data and folder are, how many loader processes, which device and how many accumulation steps
# it uses (the global batch, data.batch_size, stays; the number of training processes may change too).
RESUMABLE_CHANGES = (
    "optim.epochs",
    "optim.max_iterations",
    "optim.accumulate",
    "eval.",
    "log.",
    "data.root",
    "data.workers",
    "device",
    "deterministic",
    "out_dir",
)

DATA_ROOT_VARIABLE = "DLA_DATA_ROOT"
ROOTLESS_DATASETS = ("synthetic",)  # datasets generated in memory, which take no root folder


def load_config(path: str | None, overrides: Sequence[str] = ()) -> Config:
    """The defaults, updated by the YAML file at ``path`` (if any), then by ``overrides``, then checked.

    Args:
        path: a YAML file holding any subset of the schema (read with ``yaml.safe_load``), and optionally
            ``base: <another file>`` whose settings it starts from.
        overrides: ``"key.sub=value"`` strings (the command line's ``--set``); the value is read as YAML,
            so ``optim.lr=0.02`` is a number, ``eval.scales=[0.5,1.0]`` a list, ``model.pretrained_backbone=null`` None.

    Returns:
        the full configuration, with the task's defaults filled in and ``out_dir`` and ``data.root`` resolved.
    """
    settings = Config().to_dict()
    if path is not None:
        for file, values in _read_with_bases(Path(path)):
            _merge(settings, values, Config, prefix="", source=str(file))
    for text in overrides:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise DLAError(f"override {text!r} is not key=value (e.g. --set optim.lr=0.02)")
        try:
            nested = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise DLAError(f"override {text!r}: the value is not valid YAML: {e}") from None
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        _merge(settings, nested, Config, prefix="", source=f"--set {text}")
    cfg = _build(Config, settings)
    task = get_task(cfg.task)
    refuse_foreign_keys(cfg)
    _fill_task_defaults(cfg, task)
    _check_values(cfg, task)
    if cfg.out_dir is None:
        cfg.out_dir = str(Path("runs") / (Path(path).stem if path is not None else cfg.model.name))
    cfg.out_dir = str(Path(cfg.out_dir).expanduser().resolve())
    cfg.data.root = resolve_data_root(cfg.data.dataset, cfg.data.root)
    return cfg


def config_from_dict(values: Mapping[str, Any], source: str = "config") -> Config:
    """A ``Config`` from a saved mapping (a checkpoint's ``config``, a run's ``config.yaml`` already read), each
    key and value checked as ``load_config`` checks them; keys it lacks (older runs) take the defaults, the
    task's included (``model.sync_bn``), as ``load_config`` would give them."""
    settings = Config().to_dict()
    _merge(settings, dict(values), Config, prefix="", source=source)
    cfg = _build(Config, settings)
    _fill_task_defaults(cfg, get_task(cfg.task))
    return cfg


def dump_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML, in schema order; ``load_config`` reads it back unchanged."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def resolve_data_root(dataset: str, root: str | None) -> str | None:
    """The absolute data folder of ``dataset``: ``root`` (relative to the current directory, environment
    variables such as ``$DLA_DATA_ROOT`` expanded), or ``$DLA_DATA_ROOT/<dataset>`` when ``root`` is None;
    None for datasets that need no files."""
    if root is None:
        if dataset in ROOTLESS_DATASETS:
            return None
        root = os.path.join(f"${DATA_ROOT_VARIABLE}", dataset)
    expanded = os.path.expandvars(root)
    if "$" in expanded:
        raise DLAError(
            f"data.root {root} names an environment variable that is not set; set it "
            f"(e.g. export {DATA_ROOT_VARIABLE}=<folder holding {dataset}/>) or give data.root as a path "
            f"(e.g. --set data.root=/data/{dataset})"
        )
    return str(Path(expanded).expanduser().resolve())


def config_keys(schema: Any = Config, prefix: str = "") -> list[str]:
    """Every leaf key of the schema, dotted (``optim.lr``), in schema order."""
    keys = []
    for f in fields(schema):
        hint = get_type_hints(schema)[f.name]
        keys += config_keys(hint, f"{prefix}{f.name}.") if is_dataclass(hint) else [prefix + f.name]
    return keys


def check_resumable(saved: Config, cfg: Config, path: Path) -> None:
    """Refuse to resume with settings that would make a different run than the one saved at ``path``."""
    changed = [key for key in config_differences(saved, cfg) if not key.startswith(RESUMABLE_CHANGES)]
    if changed:
        details = "; ".join(f"{key}: {lookup(saved, key)!r} in the run, {lookup(cfg, key)!r} now" for key in changed)
        raise DLAError(
            f"cannot resume {path} with a different config ({details}). Resume with the run's own "
            f"config ({path.parent.parent / 'config.yaml'}) or train into a new out_dir."
        )


def config_differences(a: Config, b: Config) -> list[str]:
    """Dotted keys whose values differ between two configs (sections compare key by key, free-form mappings such
    as ``model.kwargs`` and ``data.options`` as a whole)."""
    return sorted(_differences(a, b, prefix=""))


def _differences(a: Any, b: Any, prefix: str) -> list[str]:
    keys = []
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        name = prefix + f.name
        if is_dataclass(x) and is_dataclass(y):
            keys += _differences(x, y, prefix=name + ".")
        elif x != y:
            keys.append(name)
    return keys


# --- merging and checking -------------------------------------------------------------------------------


def _read_with_bases(path: Path, children: Sequence[Path] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """``(file, settings)`` of ``path`` and the files it is based on, the most basic first."""
    settings = _read_yaml(path)
    base = settings.pop("base", None)
    if base is None:
        return [(path, settings)]
    if not isinstance(base, str):
        raise DLAError(f"{path}: base must be the path of another config file, got {base!r}")
    base_path = path.parent / base
    if base_path.resolve() in [p.resolve() for p in (path, *children)]:
        raise DLAError(f"{path}: base {base} leads back to {path} (a cycle)")
    return _read_with_bases(base_path, (path, *children)) + [(path, settings)]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise DLAError(f"config file {path} not found") from None
    except yaml.YAMLError as e:
        raise DLAError(f"config file {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DLAError(f"config file {path} must hold a mapping of keys (task:, model:, data:, ...), not a {type(data).__name__}")
    return data


def _merge(cfg: dict[str, Any], update: dict[str, Any], schema: Any, prefix: str, source: str) -> None:
    """Write ``update`` into ``cfg`` key by key, checking each key against ``schema`` and each value against its hint."""
    hints = get_type_hints(schema)
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in hints:
            raise DLAError(f"{source}: unknown config key {name!r}{_suggestion(name)}")
        hint = hints[key]
        if is_dataclass(hint):
            value = {} if value is None else value  # a section whose keys are all commented out
            if not isinstance(value, dict):
                raise DLAError(f"{source}: {name} must be a mapping of keys ({', '.join(get_type_hints(hint))}), got {value!r}")
            _merge(cfg[key], value, hint, prefix=name + ".", source=source)
        elif get_origin(hint) is dict and isinstance(value, dict):
            cfg[key] = {**cfg[key], **value}  # free-form keyword arguments: merged, not checked
        else:
            cfg[key] = _checked(value, hint, name, source)


def _build(schema: Any, values: dict[str, Any]) -> Any:
    """The ``schema`` dataclass holding ``values`` (already checked by ``_merge``), nested sections built alike."""
    hints = get_type_hints(schema)
    return schema(**{key: _build(hints[key], value) if is_dataclass(hints[key]) else value for key, value in values.items()})


def _checked(value: Any, hint: Any, name: str, source: str) -> Any:
    """``value`` if it conforms to ``hint`` (an int, or a decimal number's text such as ``1e-4``, where a float is
    expected becomes a float); a DLAError otherwise."""
    converted = _conform(value, hint)
    if converted is _MISMATCH:
        raise DLAError(f"{source}: {name} must be {_describe(hint)}, got {value!r}{_advice(value, hint)}")
    return converted


def _advice(value: Any, hint: Any) -> str:
    """For a number's text refused where an integer is expected (``batch_size: 1e3``, a float), the integer
    to write instead, when ``hint`` accepts it; nothing otherwise."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value) and float(value).is_integer():
        integer = int(float(value))
        if _conform(integer, hint) is not _MISMATCH:
            return f" ({value} is a float: write the integer in digits, {integer})"
    return ""


_MISMATCH = object()
UNIONS = (Union, types.UnionType)  # the origins of Union[X, Y] and of X | Y
# YAML 1.2's core schema float (Sec. 10.3.2), less .inf and .nan: the decimal notations a user types.
_DECIMAL = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _conform(value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in UNIONS:  # X | None
        for option in args:
            converted = _conform(value, option)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if origin is Literal:
        return value if any(value == a and type(value) is type(a) for a in args) else _MISMATCH
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        items = [_conform(v, args[0]) for v in value]
        return _MISMATCH if any(v is _MISMATCH for v in items) else items
    if origin is dict:
        return value if isinstance(value, dict) else _MISMATCH
    if hint is type(None):
        return value if value is None else _MISMATCH
    if isinstance(value, bool) and hint is not bool:
        return _MISMATCH  # YAML's true/false are not numbers here
    if hint is float and isinstance(value, int):
        return float(value)
    if hint is float and isinstance(value, str):
        return float(value) if _DECIMAL.fullmatch(value) else _MISMATCH  # 1e-4: a number in YAML 1.2, text in 1.1
    return value if isinstance(value, hint) else _MISMATCH


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in UNIONS:
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    return names.get(hint, "a mapping")


def _suggestion(name: str) -> str:
    keys = config_keys()
    sections = sorted({k.split(".")[0] for k in keys})
    close = difflib.get_close_matches(name, keys + sections, n=1, cutoff=0.6)
    if not close:  # a right key in the wrong section: `lr` for `optim.lr`
        leaf = name.rsplit(".", 1)[-1]
        close = [k for k in keys if k.rsplit(".", 1)[-1] == leaf][:1]
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(keys)}"


def refuse_foreign_keys(cfg: Config) -> None:
    """Raise when ``cfg`` sets a key that only tasks other than ``cfg.task`` read (their ``Task.keys``)."""
    own, defaults = get_task(cfg.task).keys, Config()
    foreign = dict.fromkeys(key for task in TASKS.values() for key in task.keys if key not in own)
    wrong = [key for key in foreign if lookup(cfg, key) not in (None, lookup(defaults, key))]
    if wrong:
        raise DLAError(
            f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to task: {cfg.task}; "
            "remove them (configs/README.md says which task reads each key)"
        )


def with_eval_settings(cfg: Config, settings: Mapping[str, Any]) -> Config:
    """A copy of a run's ``cfg`` whose ``eval`` keys are replaced by ``settings`` (test-time options such as
    ``scales`` or ``ten_crop``), each checked as a config value, refused when they belong to another task."""
    values = cfg.to_dict()
    _merge(values, {"eval": dict(settings)}, Config, prefix="", source="evaluation settings")
    updated = _build(Config, values)
    refuse_foreign_keys(updated)
    return updated


def lookup(cfg: Any, dotted: str) -> Any:
    """The value at a dotted key (``optim.lr``) of a config; None where a part is missing."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part, None)
    return cfg


def _fill_task_defaults(cfg: Config, task: Task) -> None:
    """Replace the nulls of the keys ``task.defaults`` names by the task's values."""
    for key, value in task.defaults.items():
        section, leaf = key.split(".")
        if getattr(getattr(cfg, section), leaf) is None:
            setattr(getattr(cfg, section), leaf, copy.deepcopy(value))


def _check_values(cfg: Config, task: Task) -> None:
    """Checks beyond types: sizes, ranges, lengths; then the task's own (``Task.check``)."""
    data, optim = cfg.data, cfg.optim
    problems = []
    for name, value in [
        ("data.batch_size", data.batch_size),
        ("optim.epochs", optim.epochs),
        ("eval.every_epochs", cfg.eval.every_epochs),
        ("log.every_iterations", cfg.log.every_iterations),
        ("optim.max_iterations", optim.max_iterations or 1),
        ("optim.accumulate", optim.accumulate),
        ("optim.lr_base_batch", optim.lr_base_batch or 1),
    ]:
        if value < 1:
            problems.append(f"{name} must be at least 1, got {value}")
    if data.batch_size % optim.accumulate:
        problems.append(f"data.batch_size {data.batch_size} must be a multiple of optim.accumulate {optim.accumulate}")
    if data.workers < 0:
        problems.append(f"data.workers must be 0 or more, got {data.workers}")
    crop_size, scale = required(data.crop_size, "data.crop_size"), required(data.scale, "data.scale")
    if len(crop_size) != 2 or min(crop_size) < 1:
        problems.append(f"data.crop_size must be [height, width] of positive sizes, got {crop_size}")
    if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
        problems.append(f"data.scale must be [low, high] with 0 < low <= high, got {scale}")
    if data.color_jitter < 0:
        problems.append("data.color_jitter must be 0 (off) or positive")
    if optim.backbone_lr_factor < 0:
        problems.append(f"optim.backbone_lr_factor must be 0 (frozen) or positive, got {optim.backbone_lr_factor}")
    if not 0 <= optim.aux_weight < 1:
        problems.append(f"optim.aux_weight must be in [0, 1), got {optim.aux_weight}")
    if optim.lr <= 0:
        problems.append(f"optim.lr must be positive, got {optim.lr}")
    problems += task.check(cfg)
    if problems:
        raise DLAError("invalid config: " + "; ".join(problems))
