"""Checkpoints: the format (``TrainState``), atomic saving, safe loading, and rebuilding a model from a checkpoint alone.

A checkpoint is a plain dict, self-describing, so that a model and its run are rebuilt from it alone. A training
run's ``TrainState`` builds it (``TrainState.checkpoint``) and resumes from it (``TrainState.restore``):

- ``model``: the model's state dict
- ``model_name``: the registry name, for ``dla.create_model``
- ``model_kwargs``: the keyword arguments that rebuild the same architecture (``num_classes``,
  ``down_ratio``, ``model.kwargs``); never ``pretrained_backbone``: the weights are in ``model`` already
- ``task``: ``"segmentation"``, ``"classification"`` or ``"boundaries"``
- ``dataset_meta``: ``DatasetMeta.to_dict()``: class names, palette, mean/std, ignore index
- ``config``: the full resolved training config, ``Config.to_dict()`` (``run_config`` reads it back)
- ``epoch``: completed epochs
- ``iteration``: completed iterations (optimizer steps); the position of the run
- ``iterations_per_epoch``: iterations in an epoch, which a resumed run must keep
- ``global_batch``: ``data.batch_size``, which a resumed run must keep; ``processes``: the number that trained
- ``optimizer``: optimizer state dict (momentum buffers)
- ``scheduler``: LR scheduler state dict
- ``scaler``: GradScaler state dict; only with ``optim.amp: fp16``
- ``rng``: random generator states (``rng_state()``), so that a resumed run draws the same numbers
- ``best_score``: the task's best validation score (mIoU, top-1, ODS) so far; -1 before the first evaluation
- ``code_version``: ``git describe`` of the code that wrote it, or the package version
- ``class_weights``: the record of class weights computed from the labels (as in ``class_weights.json``); only
  when ``optim.class_weights`` names a method

Everything in it is a tensor or a plain Python value, so ``torch.load(..., weights_only=True)`` reads it:
loading a checkpoint never runs code from the file.
"""

import errno
import json
import os
import pickle
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from ..config import Config
from ..data.meta import DatasetMeta
from ..errors import DLAError
from ..models import create_model, hub_folder, is_hub_name, load_state_dict_checked, read_state_dict
from .config_loader import config_from_dict

PathLike = Union[str, "os.PathLike[str]"]

REQUIRED_KEYS = ("model", "model_name", "model_kwargs", "task", "dataset_meta")
TEMPORARY_SUFFIX = ".tmp"  # of the file a checkpoint is written to before it is renamed
HUB_WEIGHTS, HUB_CONFIG = "model.safetensors", "config.json"  # a shared folder (dla export --format hub)


@dataclass
class TrainState:
    """What a training run's checkpoints hold, live: ``checkpoint()`` builds the dict above, ``restore`` continues
    the run from one. ``iteration`` and ``best_score`` are where the run stands; the trainer advances them."""

    model: nn.Module
    model_name: str
    model_kwargs: dict[str, Any]
    task: str
    dataset_meta: DatasetMeta
    config: Config
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler
    iterations_per_epoch: int
    processes: int  # the world size
    code_version: str
    class_weights: dict[str, Any] | None = None  # the record of computed class weights (``dla.engine.class_weights``)
    iteration: int = 0
    best_score: float = -1.0

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint of the run as it stands (the generators' states of now included)."""
        state = {
            "model": self.model.state_dict(),
            "model_name": self.model_name,
            "model_kwargs": self.model_kwargs,
            "task": self.task,
            "dataset_meta": self.dataset_meta.to_dict(),
            "config": self.config.to_dict(),
            "epoch": self.iteration // self.iterations_per_epoch,
            "iteration": self.iteration,
            "iterations_per_epoch": self.iterations_per_epoch,
            "global_batch": self.config.data.batch_size,
            "processes": self.processes,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "best_score": self.best_score,
            "code_version": self.code_version,
        }
        if self.class_weights is not None:
            state["class_weights"] = self.class_weights
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        return state

    def restore(self, checkpoint: dict[str, Any], name: str) -> None:
        """Continue from ``checkpoint`` (read from ``name``): weights, optimizer, scheduler, scaler, generators and
        the position; refused when an epoch has another number of iterations than it had."""
        if checkpoint["iterations_per_epoch"] != self.iterations_per_epoch:
            raise DLAError(
                f"cannot resume {name}: an epoch had {checkpoint['iterations_per_epoch']} iterations and now has "
                f"{self.iterations_per_epoch} (the training set or batch size changed); start a new out_dir"
            )
        load_weights(self.model, checkpoint["model"], name)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint["scaler"])
        set_rng_state(checkpoint["rng"])
        self.iteration, self.best_score = checkpoint["iteration"], checkpoint["best_score"]


def save_checkpoint(path: PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: the file is either the old one or the complete new one.

    The bytes go to a temporary file in the same folder (same file system, so the rename is atomic),
    are flushed to disk with ``fsync``, and the temporary file is renamed over ``path`` with
    ``os.replace``. If anything fails (a full disk, an unpicklable value, Ctrl-C) the temporary file is
    removed and the previous checkpoint is untouched; a full disk or another write error is a DLAError that
    says so. The file gets the permissions of any file this process writes (``0666`` less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, (OSError, RuntimeError)) and _is_write_failure(e):
            raise DLAError(f"cannot write {path}: {_write_failure(e)}; the previous checkpoint is unchanged") from None
        raise
    _fsync_folder(path.parent)


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the temporary files that checkpoint writes cut short (``kill -9``, a power cut) left in ``folder``;
    the removed paths. Only while no other process writes checkpoints there (the run's lock is held)."""
    stale = sorted(Path(folder).glob(f".*.pt.*{TEMPORARY_SUFFIX}"))
    for file in stale:
        file.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (on the CPU, with ``weights_only=True``).

    ``path`` may also be a folder written by ``dla export --format hub``, here or on the Hugging Face Hub
    (``hf-hub:<owner>/<repo>[@<revision>]``, fetched into the Hub's cache).

    Raises a DLAError naming the file when it is missing, a folder, empty, not a checkpoint (an image, a text),
    unreadable, or lacks the keys of a dla checkpoint. Loading stays safe: a file that holds Python objects
    other than tensors and plain values is refused, never loaded with ``weights_only=False``.
    """
    if is_hub_name(path):  # a folder of dla export --format hub, uploaded to the Hugging Face Hub
        return load_shared_folder(hub_folder(str(path), (HUB_CONFIG, HUB_WEIGHTS)))
    file = Path(path)
    if file.is_dir() and (file / HUB_CONFIG).is_file():
        return load_shared_folder(file)
    if file.is_dir():
        raise DLAError(
            f"{path} is a folder, not a checkpoint file; give the .pt file (e.g. {file / 'checkpoints' / 'best.pt'}) "
            "or a folder written by dla export --format hub"
        )
    if not file.is_file():
        raise DLAError(f"checkpoint {path} not found")
    kind = _file_kind(file)
    if kind is not None:
        raise DLAError(f"{path} is {kind}, not a dla checkpoint; give a .pt file written by dla train")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # objects that safe loading refuses
        raise DLAError(f"cannot read checkpoint {path}: {_refused_objects(e)}") from None
    except Exception as e:  # truncated files, other formats
        raise DLAError(f"cannot read checkpoint {path}: {e or type(e).__name__} (a truncated or corrupt file?)") from None
    return check_checkpoint(checkpoint, str(path))


def load_shared_folder(folder: Path) -> dict[str, Any]:
    """A folder written by ``dla export --format hub`` (``config.json``, ``model.safetensors``) as a checkpoint
    dict (without optimizer state: it evaluates and predicts, it does not resume)."""
    try:
        card = json.loads((folder / HUB_CONFIG).read_text())
    except ValueError as e:
        raise DLAError(f"{folder / HUB_CONFIG} is not valid JSON ({e})") from None
    if not isinstance(card, dict) or card.get("format") != "dla":
        raise DLAError(f"{folder / HUB_CONFIG} was not written by dla export --format hub (no format: dla)")
    if not (folder / HUB_WEIGHTS).is_file():
        raise DLAError(f"{folder} has no {HUB_WEIGHTS}; the folder is incomplete")
    weights = read_state_dict(str(folder / HUB_WEIGHTS))
    fields = {key: card[key] for key in (*REQUIRED_KEYS[1:], "config", "iteration") if key in card}
    return check_checkpoint({"model": weights, **fields}, str(folder))


def check_checkpoint(checkpoint: Any, name: str = "checkpoint") -> dict[str, Any]:
    """``checkpoint`` if it is a dict holding the keys that rebuild a model; a DLAError otherwise."""
    if not isinstance(checkpoint, dict):
        raise DLAError(f"{name} is not a dla checkpoint (it holds a {type(checkpoint).__name__}, not a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise DLAError(
            f"{name} is not a dla checkpoint: it lacks {', '.join(missing)}. "
            "(ImageNet weights for a backbone go in model.pretrained_backbone instead.)"
        )
    return checkpoint


def model_from_checkpoint(checkpoint: PathLike | dict[str, Any], name: str | None = None) -> tuple[nn.Module, DatasetMeta]:
    """The trained model (in eval mode, on the CPU) and its dataset's meta, from a checkpoint alone.

    Args:
        checkpoint: a path, or a dict already read with ``load_checkpoint``.
        name: what to call the checkpoint in errors (default: its path, or "checkpoint").

    Raises a DLAError naming the checkpoint when its ``model_kwargs`` do not build its model, its ``dataset_meta``
    is malformed, or its weights do not fit the model (the counts of missing, unexpected and mismatched keys).
    """
    if not isinstance(checkpoint, dict):
        name = name or str(checkpoint)
        checkpoint = load_checkpoint(checkpoint)
    name = name or "checkpoint"
    checkpoint = check_checkpoint(checkpoint, name)
    model_name, kwargs = checkpoint["model_name"], checkpoint["model_kwargs"]
    if not isinstance(kwargs, dict):
        raise DLAError(f"{name}: model_kwargs must be a mapping of keyword arguments, got {type(kwargs).__name__}")
    try:
        model = create_model(model_name, **kwargs)
    except (TypeError, ValueError) as e:
        raise DLAError(f"{name}: its model_kwargs {kwargs} do not build {model_name}: {e}") from None
    load_weights(model, checkpoint["model"], name)
    try:
        meta = DatasetMeta.from_dict(checkpoint["dataset_meta"])
    except (TypeError, KeyError, ValueError) as e:
        raise DLAError(
            f"{name}: its dataset_meta is malformed ({type(e).__name__}: {e}); it was not written by dla train"
        ) from None
    return model.eval(), meta


def load_weights(model: nn.Module, state_dict: Any, name: str) -> None:
    """Load a checkpoint's weights strictly, or raise a DLAError naming the checkpoint with the counts of missing,
    unexpected and mismatched keys (``dla.models.load_state_dict_checked``)."""
    if not isinstance(state_dict, dict):
        raise DLAError(f"{name}: its model weights are a {type(state_dict).__name__}, not a state dict")
    load_state_dict_checked(model, state_dict, name)


def run_config(checkpoint: dict[str, Any], name: PathLike = "checkpoint") -> Config:
    """The training config a checkpoint was written with, checked as a config file is."""
    return config_from_dict(checkpoint["config"], source=f"{name} (its config)")


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators, as tensors and lists."""
    numpy = np.random.get_state(legacy=False)  # the legacy tuple's fields, by name
    mt = numpy["state"]
    return {
        "python": random.getstate(),
        "numpy": [
            numpy["bit_generator"],
            torch.from_numpy(mt["key"].astype(np.int64)),
            mt["pos"],
            numpy["has_gauss"],
            numpy["gauss"],
        ],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by ``rng_state``; CUDA states only when the device count matches."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_write_failure(error: BaseException) -> bool:
    """An OSError, or torch's C++ writer failing (``PytorchStreamWriter failed writing file``, ``enforce fail``)."""
    return isinstance(error, OSError) or "PytorchStreamWriter" in str(error) or "enforce fail" in str(error)


def _write_failure(error: BaseException) -> str:
    if (
        (isinstance(error, OSError) and error.errno == errno.ENOSPC)
        or "No space left" in str(error)
        or "file write failed" in str(error)
    ):
        return "no space left on the device"
    return str(error).splitlines()[0]


# The first bytes of files people give by mistake, and what they are.
_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5 file (Keras weights?)"),
)


def _file_kind(file: Path) -> str | None:
    """What ``file`` is when it is surely not a checkpoint (empty, an image, text); None when it may be one."""
    with open(file, "rb") as f:
        head = f.read(512)
    if not head:
        return "empty (0 bytes)"
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    if head.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "a text file"


def _refused_objects(error: pickle.UnpicklingError) -> str:
    """Why safe loading refused a file, without PyTorch's advice to turn safe loading off."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    what = f"a Python object of type {found[1]}" if found else "Python objects other than tensors and plain values"
    return (
        f"it holds {what}, which dla does not load: checkpoints are read with weights_only=True so that no code from "
        "a file ever runs. Give a checkpoint written by dla train, or weights as a state dict (model.pretrained_backbone)"
    )


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
