"""The training configuration: its schema with defaults, loading (YAML + ``--set`` overrides) and checks.

The schema is the dataclasses below; each field's type hint is what a value must be and its default is
what a config file may leave out. ``load_config`` returns a plain nested ``dict`` (what the trainer reads,
what ``config.yaml`` in a run directory holds, what a checkpoint stores), never the dataclasses themselves:
they only describe the shape. Every key is documented in ``configs/README.md``.

Design choices:

- Strict: an unknown key, in a file or an override, is an error that suggests the nearest valid key
  (a typo such as ``optim.lrr`` would otherwise silently train with the default).
- Types come from the hints; an integer is accepted where a number is expected (``lr: 1``), but
  nothing is converted from text (YAML reads ``1e-4`` as a string: write ``1.0e-4``).
- A file may start from another: ``base: camvid_dla34_2s.yaml`` (relative to the file) loads that one
  first, so a variant of a recipe states only what differs.
- Paths are resolved once, here, against the current directory, so that the ``config.yaml`` saved in
  the run directory says exactly which data and folder were used.
"""

import difflib
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union, get_args, get_origin, get_type_hints

import yaml

from ..errors import DLAError

DATA_ROOT_VARIABLE = "DLA_DATA_ROOT"
ROOTLESS_DATASETS = ("synthetic",)  # datasets generated in memory, which take no root folder

# What null means, per task, for the keys whose sensible value depends on the task; `load_config` writes
# these values into the config, so that a run's config.yaml states what was used.
TASK_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "segmentation": {
        "model.name": "dla34up", "data.crop_size": [360, 480], "data.scale": [0.5, 2.0], "data.rotation": 10.0,
    },
    "classification": {
        # Sec. 5.1: random-resized crops of 224 (area 8-100%, aspect 3/4-4/3); test on the centre 224 of 256
        "model.name": "dla34", "data.crop_size": [224, 224], "data.scale": [0.08, 1.0], "data.ratio": [0.75, 4 / 3],
        "data.resize": [256],
    },
    "boundaries": {
        # Sec. 5.4 after HED: boundary pixels weigh 10 times the others; rotations up to 180 degrees for BSDS;
        # the BSDS benchmark's 99 thresholds and matching distance of 0.0075 of the image diagonal
        "model.name": "dla34edge", "data.crop_size": [320, 320], "data.scale": [0.5, 1.5],
        "data.rotation": 180.0, "optim.class_weights": [1.0, 10.0], "eval.thresholds": 99, "eval.tolerance": 0.0075,
    },
}

# The keys that only some tasks read, and those tasks. Another task refuses any value but the schema's
# default, rather than silently ignoring a setting the user believes is in effect.
TASK_KEYS: Dict[str, Tuple[str, ...]] = {
    "model.down_ratio": ("segmentation", "boundaries"),
    "data.rotation": ("segmentation", "boundaries"),
    "eval.scales": ("segmentation",),
    "eval.flip": ("segmentation",),
    "eval.window": ("segmentation",),
    "eval.output_stride": ("segmentation",),
    "data.ratio": ("classification",),
    "data.lighting": ("classification",),
    "data.resize": ("classification",),
    "eval.ten_crop": ("classification",),
    "eval.thresholds": ("boundaries",),
    "eval.tolerance": ("boundaries",),
}


@dataclass
class ModelConfig:
    name: Optional[str] = None  # a registered model (`dla models`); null: the task's default (TASK_DEFAULTS)
    down_ratio: Optional[Literal[2, 4, 8, 16]] = None  # DLA's decoder output stride ("2s", "8s"); null: the model's own
    pretrained_backbone: Union[bool, str, None] = None  # ImageNet weights for the backbone: true, a path or a URL
    kwargs: Dict[str, Any] = field(default_factory=dict)  # any other keyword arguments of the model


@dataclass
class DataConfig:
    dataset: str = "synthetic"  # camvid, cityscapes, voc, listfile, folder, synthetic
    root: Optional[str] = None  # null: $DLA_DATA_ROOT/<dataset>; relative paths: from the current directory
    train_split: str = "train"
    val_split: str = "val"
    options: Dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of the dataset
    crop_size: Optional[List[int]] = None  # [height, width] of training crops; null: the task's default
    scale: Optional[List[float]] = None  # segmentation: rescaling range; classification: crop area fraction
    ratio: Optional[List[float]] = None  # classification: crop aspect-ratio range [low, high]
    rotation: Optional[float] = None  # random rotation within +-degrees (segmentation only)
    flip: bool = True  # random horizontal flip
    color_jitter: float = 0.0  # strength of random brightness/contrast/saturation changes; 0 is off
    lighting: float = 0.0  # classification: std of AlexNet's PCA lighting noise (0.1 in AlexNet); 0 is off
    resize: Optional[List[int]] = None  # classification, evaluation: [shorter side] or [height, width] before the crop
    batch_size: int = 8
    workers: int = 2  # DataLoader worker processes; 0 loads in the training process


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adam"] = "sgd"  # SGD with momentum (DLA, DeepLabv3, DFANet) or Adam (Ladder DenseNet)
    lr: float = 0.01
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1.0e-4
    schedule: Literal["step", "poly"] = "step"
    step_epochs: List[int] = field(default_factory=lambda: [800])  # step: multiply lr by gamma at these epochs
    gamma: float = 0.1
    power: float = 0.9  # poly: lr * (1 - iteration / total) ** power
    epochs: int = 1000
    max_iterations: Optional[int] = None  # stop (and end the schedules) after this many iterations
    class_weights: Optional[List[float]] = None  # one loss weight per class (boundaries: [1.0, 10.0])
    backbone_lr_factor: float = 1.0  # the backbone's lr is optim.lr times this (e.g. 0.1 for a pretrained one)
    aux_weight: float = 0.3  # a model's auxiliary logits weigh this in the loss, its main ones 1 - this (Ladder: 0.3)
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision; fp16 needs CUDA
    grad_clip: Optional[float] = None  # clip the gradient norm to this value


@dataclass
class EvalConfig:
    every_epochs: int = 10  # and always after the last epoch
    scales: List[float] = field(default_factory=lambda: [1.0])  # image scales whose predictions are summed
    flip: bool = False  # also sum the prediction of the mirrored image
    window: Optional[List[int]] = None  # [height, width] of sliding-window tiles; null: whole images
    output_stride: Optional[int] = None  # segmentation: evaluate at this output stride (DeepLabv3: 8); null: as trained
    ten_crop: bool = False  # classification: average the 10 crops (corners, centre, mirrored) of each image
    thresholds: Optional[int] = None  # boundaries: how many thresholds the benchmark sweeps (99 in BSDS)
    tolerance: Optional[float] = None  # boundaries: the matching distance, a fraction of the image diagonal


@dataclass
class LogConfig:
    every_iterations: int = 20
    tensorboard: bool = True


@dataclass
class Config:
    task: Literal["segmentation", "classification", "boundaries"] = "segmentation"
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms (slower on CUDA)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out_dir: Optional[str] = None  # null: runs/<config file name>, or runs/<model name> without a file
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)


def load_config(path: Optional[str], overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """The defaults, updated by the YAML file at ``path`` (if any), then by ``overrides``, then checked.

    Args:
        path: a YAML file holding any subset of the schema (read with ``yaml.safe_load``), and optionally
            ``base: <another file>`` whose settings it starts from.
        overrides: ``"key.sub=value"`` strings (the command line's ``--set``); the value is read as YAML,
            so ``optim.lr=0.02`` is a number, ``eval.scales=[0.5,1.0]`` a list, ``model.pretrained_backbone=null`` None.

    Returns:
        the full configuration as a nested dict of plain values, with ``out_dir`` and ``data.root`` resolved.
    """
    cfg = asdict(Config())
    if path is not None:
        for file, settings in _read_with_bases(Path(path)):
            _merge(cfg, settings, Config, prefix="", source=str(file))
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
        _merge(cfg, nested, Config, prefix="", source=f"--set {text}")
    refuse_foreign_keys(cfg)
    _fill_task_defaults(cfg)
    _check_values(cfg)
    if cfg["out_dir"] is None:
        cfg["out_dir"] = str(Path("runs") / (Path(path).stem if path is not None else cfg["model"]["name"]))
    cfg["out_dir"] = str(Path(cfg["out_dir"]).expanduser().resolve())
    cfg["data"]["root"] = resolve_data_root(cfg["data"]["dataset"], cfg["data"]["root"])
    return cfg


def dump_config(cfg: Dict[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write ``cfg`` as YAML, in schema order; ``load_config`` reads it back unchanged."""
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False))


def resolve_data_root(dataset: str, root: Optional[str]) -> Optional[str]:
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


def config_keys(schema: type = Config, prefix: str = "") -> List[str]:
    """Every leaf key of the schema, dotted (``optim.lr``), in schema order."""
    keys = []
    for f in fields(schema):
        hint = get_type_hints(schema)[f.name]
        keys += config_keys(hint, f"{prefix}{f.name}.") if is_dataclass(hint) else [prefix + f.name]
    return keys


def config_differences(a: Dict[str, Any], b: Dict[str, Any], prefix: str = "") -> List[str]:
    """Dotted keys whose values differ between two configs (free-form mappings compare as a whole)."""
    keys = []
    for key in a.keys() | b.keys():
        x, y = a.get(key), b.get(key)
        name = prefix + key
        if isinstance(x, dict) and isinstance(y, dict) and name not in ("model.kwargs", "data.options"):
            keys += config_differences(x, y, name + ".")
        elif x != y:
            keys.append(name)
    return sorted(keys)


# --- merging and checking -------------------------------------------------------------------------------


def _read_with_bases(path: Path, children: Sequence[Path] = ()) -> List[Tuple[Path, Dict[str, Any]]]:
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


def _read_yaml(path: Path) -> Dict[str, Any]:
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


def _merge(cfg: Dict[str, Any], update: Dict[str, Any], schema: type, prefix: str, source: str) -> None:
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


def _checked(value: Any, hint: Any, name: str, source: str) -> Any:
    """``value`` if it conforms to ``hint`` (an int where a float is expected becomes a float); a DLAError otherwise."""
    converted = _conform(value, hint)
    if converted is _MISMATCH:
        advice = " (YAML reads 1e-4 as text: write 1.0e-4)" if isinstance(value, str) and _is_number(value) else ""
        raise DLAError(f"{source}: {name} must be {_describe(hint)}, got {value!r}{advice}")
    return converted


_MISMATCH = object()


def _conform(value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin is Union:  # Optional[X] is Union[X, None]
        for option in args:
            converted = _conform(value, option)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if origin is Literal:
        return value if any(value == a and type(value) is type(a) for a in args) else _MISMATCH
    if origin is list:
        if not isinstance(value, list):
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
    return value if isinstance(value, hint) else _MISMATCH


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Union:
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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def refuse_foreign_keys(cfg: Dict[str, Any]) -> None:
    """Raise when ``cfg`` sets a key that only another task than ``cfg['task']`` reads (see ``TASK_KEYS``)."""
    task, defaults = cfg["task"], asdict(Config())
    foreign = [key for key, tasks in TASK_KEYS.items() if task not in tasks]
    wrong = [key for key in foreign if lookup(cfg, key) not in (None, lookup(defaults, key))]
    if wrong:
        raise DLAError(
            f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to task: {task}; "
            "remove them (configs/README.md says which task reads each key)"
        )


def with_eval_settings(cfg: Dict[str, Any], settings: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of a run's ``cfg`` whose ``eval`` keys are replaced by ``settings`` (test-time options such as
    ``scales`` or ``ten_crop``), refused when they belong to another task than the run's."""
    updated = {**cfg, "eval": {**cfg["eval"], **settings}}
    refuse_foreign_keys(updated)
    return updated


def lookup(cfg: Dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key (``optim.lr``) of a nested config; None where a part is missing."""
    for part in dotted.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    return cfg


def _fill_task_defaults(cfg: Dict[str, Any]) -> None:
    """Replace this task's nulls by ``TASK_DEFAULTS``."""
    for key, value in TASK_DEFAULTS[cfg["task"]].items():
        section, leaf = key.split(".")
        if cfg[section][leaf] is None:
            cfg[section][leaf] = value


def _check_values(cfg: Dict[str, Any]) -> None:
    """Checks beyond types: sizes, ranges, lengths."""
    data, optim = cfg["data"], cfg["optim"]
    problems = []
    for name, value in [
        ("data.batch_size", data["batch_size"]),
        ("optim.epochs", optim["epochs"]),
        ("eval.every_epochs", cfg["eval"]["every_epochs"]),
        ("log.every_iterations", cfg["log"]["every_iterations"]),
        ("optim.max_iterations", optim["max_iterations"] or 1),
    ]:
        if value < 1:
            problems.append(f"{name} must be at least 1, got {value}")
    if data["workers"] < 0:
        problems.append(f"data.workers must be 0 or more, got {data['workers']}")
    if len(data["crop_size"]) != 2 or min(data["crop_size"]) < 1:
        problems.append(f"data.crop_size must be [height, width] of positive sizes, got {data['crop_size']}")
    if len(data["scale"]) != 2 or not 0 < data["scale"][0] <= data["scale"][1]:
        problems.append(f"data.scale must be [low, high] with 0 < low <= high, got {data['scale']}")
    if cfg["task"] == "classification":
        if data["scale"][1] > 1:
            problems.append(f"data.scale is the crop's fraction of the image area in classification: at most 1, got {data['scale']}")
        if len(data["ratio"]) != 2 or not 0 < data["ratio"][0] <= data["ratio"][1]:
            problems.append(f"data.ratio must be [low, high] with 0 < low <= high, got {data['ratio']}")
        if len(data["resize"]) not in (1, 2) or min(data["resize"]) < 1:
            problems.append(f"data.resize must be [shorter side] or [height, width], got {data['resize']}")
    if cfg["task"] == "boundaries" and (cfg["eval"]["thresholds"] < 1 or not 0 < cfg["eval"]["tolerance"] < 1):
        problems.append("eval.thresholds must be at least 1 and eval.tolerance a fraction of the diagonal in (0, 1)")
    if data["lighting"] < 0 or data["color_jitter"] < 0:
        problems.append("data.lighting and data.color_jitter must be 0 (off) or positive")
    if optim["backbone_lr_factor"] < 0:
        problems.append(f"optim.backbone_lr_factor must be 0 (frozen) or positive, got {optim['backbone_lr_factor']}")
    if not 0 <= optim["aux_weight"] < 1:
        problems.append(f"optim.aux_weight must be in [0, 1), got {optim['aux_weight']}")
    if optim["lr"] <= 0:
        problems.append(f"optim.lr must be positive, got {optim['lr']}")
    if not cfg["eval"]["scales"] or min(cfg["eval"]["scales"]) <= 0:
        problems.append(f"eval.scales must be a non-empty list of positive scales, got {cfg['eval']['scales']}")
    window = cfg["eval"]["window"]
    if window is not None and (len(window) != 2 or min(window) < 1):
        problems.append(f"eval.window must be null or [height, width], got {window}")
    if problems:
        raise DLAError("invalid config: " + "; ".join(problems))
