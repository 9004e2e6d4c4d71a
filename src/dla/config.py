"""The training configuration's schema: typed dataclasses with their defaults.

A config is a ``Config``: ``cfg.optim.lr``, ``cfg.data.batch_size``. Each field's type hint is what a value
must be and its default is what a config file may leave out; ``dla.engine.config_loader.load_config`` reads YAML
and ``--set`` overrides into it, checking every key and converting every value once, and ``to_dict()``
gives the plain nested mapping that a run's ``config.yaml`` and a checkpoint store. Every key is documented
in ``configs/README.md``.

Keys whose sensible value depends on the task are ``None`` here ("the task's default"): the task module
(``dla.tasks``) states its defaults and which of these keys it reads.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from .errors import DLAError

T = TypeVar("T")


@dataclass
class ModelConfig:
    name: str | None = None  # a registered model (`dla models`); null: the task's default
    down_ratio: Literal[2, 4, 8, 16] | None = None  # DLA's decoder output stride ("2s", "8s"); null: the model's own
    pretrained_backbone: bool | str | None = None  # ImageNet weights for the backbone: true, a path or a URL
    kwargs: dict[str, Any] = field(default_factory=dict)  # any other keyword arguments of the model
    sync_bn: bool | None = None  # several processes: BatchNorm statistics over all of them; null: the task's default


@dataclass
class DataConfig:
    dataset: str = "synthetic"  # camvid, cityscapes, voc, listfile, folder, synthetic, ...
    root: str | None = None  # null: $DLA_DATA_ROOT/<dataset>; relative paths: from the current directory
    train_split: str = "train"
    val_split: str = "val"
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of the dataset
    val_options: dict[str, Any] = field(default_factory=dict)  # the validation split's own, over options
    crop_size: list[int] | None = None  # [height, width] of training crops; null: the task's default
    scale: list[float] | None = None  # segmentation: rescaling range; classification: crop area fraction
    ratio: list[float] | None = None  # classification: crop aspect-ratio range [low, high]
    rotation: float | None = None  # random rotation within +-degrees (dense tasks only)
    flip: bool = True  # random horizontal flip
    color_jitter: float = 0.0  # strength of random brightness/contrast/saturation changes; 0 is off
    lighting: float = 0.0  # classification: std of AlexNet's PCA lighting noise (0.1 in AlexNet); 0 is off
    resize: list[int] | None = None  # classification, evaluation: [shorter side] or [height, width] before the crop
    batch_size: int = 8  # the global batch of an iteration, over all processes and accumulation steps
    workers: int = 2  # DataLoader worker processes; 0 loads in the training process

    def split_options(self, split: str) -> dict[str, Any]:
        """The dataset's keyword arguments for ``split``: ``options``, with ``val_options`` over them for ``val_split``."""
        return {**self.options, **self.val_options} if split == self.val_split else dict(self.options)


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adam"] = "sgd"  # SGD with momentum (DLA, DeepLabv3, DFANet) or Adam (Ladder DenseNet)
    lr: float = 0.01
    lr_base_batch: int | None = None  # linear scaling rule: lr is for this global batch, scaled by batch_size / this
    accumulate: int = 1  # gradient accumulation: each process's share of a batch in this many forward-backward steps
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1.0e-4
    schedule: Literal["step", "poly"] = "step"
    step_epochs: list[int] = field(default_factory=lambda: [800])  # step: multiply lr by gamma at these epochs
    gamma: float = 0.1
    power: float = 0.9  # poly: lr * (1 - iteration / total) ** power
    epochs: int = 1000
    max_iterations: int | None = None  # stop (and end the schedules) after this many iterations
    # named losses summed with weights, [{name: ce, weight: 1.0}, {name: lovasz, weight: 0.5}] (dla.losses); null: the task's
    loss: list[dict[str, Any]] | None = None
    # one loss weight per class (boundaries: [1.0, 10.0]), or computed from the training labels: median_freq, inverse_log
    class_weights: list[float] | Literal["median_freq", "inverse_log"] | None = None
    backbone_lr_factor: float = 1.0  # the backbone's lr is optim.lr times this (e.g. 0.1 for a pretrained one)
    aux_weight: float = 0.3  # a model's auxiliary logits weigh this in the loss, its main ones 1 - this (Ladder: 0.3)
    # mixed precision; fp16 needs CUDA; auto is bf16 where the device computes it natively, else none
    amp: Literal["none", "bf16", "fp16", "auto"] = "none"
    grad_clip: float | None = None  # clip the gradient norm to this value


@dataclass
class EvalConfig:
    every_epochs: int = 10  # and always after the last epoch
    scales: list[float] = field(default_factory=lambda: [1.0])  # image scales whose predictions are summed
    flip: bool = False  # also sum the prediction of the mirrored image
    window: list[int] | None = None  # [height, width] of sliding-window tiles; null: whole images
    output_stride: int | None = None  # segmentation: evaluate at this output stride (DeepLabv3: 8); null: as trained
    ten_crop: bool = False  # classification: average the 10 crops (corners, centre, mirrored) of each image
    thresholds: int | None = None  # boundaries: how many thresholds the benchmark sweeps (99 in BSDS)
    tolerance: float | None = None  # boundaries: the matching distance, a fraction of the image diagonal


@dataclass
class LogConfig:
    every_iterations: int = 20
    tensorboard: bool = True


@dataclass
class Config:
    task: str = "segmentation"  # a task of dla.tasks.TASKS: segmentation, classification, boundaries
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms (slower on CUDA)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out_dir: str | None = None  # null: runs/<config file name>, or runs/<model name> without a file
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        """The nested mapping of plain values, in schema order (what ``config.yaml`` and checkpoints hold)."""
        return asdict(self)


def required(value: T | None, key: str) -> T:
    """The value of a key whose null means "the task's default": ``load_config`` has filled it in; a config built
    by hand (``Config()``) may not have, which this names."""
    if value is None:
        raise DLAError(f"{key} is null: build the config with dla.engine.load_config, which fills in the task's default")
    return value


def pair(values: Sequence[T] | None, key: str) -> tuple[T, T]:
    """A two-value key (``data.crop_size``: ``[height, width]``) as a tuple; a DLAError naming the key otherwise."""
    given = required(values, key)
    if len(given) != 2:
        raise DLAError(f"{key} must be two values ([height, width] or [low, high]), got {list(given)}")
    return given[0], given[1]


__all__ = ["Config", "DataConfig", "EvalConfig", "LogConfig", "ModelConfig", "OptimConfig", "pair", "required"]
