"""Checkpoints: atomic saving, safe loading, and rebuilding a model from a checkpoint alone.

A checkpoint is a plain dict, self-describing, so that a model and its run are rebuilt from it alone:

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
- ``optimizer``: optimizer state dict (momentum buffers)
- ``scheduler``: LR scheduler state dict
- ``scaler``: GradScaler state dict; only with ``optim.amp: fp16``
- ``rng``: random generator states (``rng_state()``), so that a resumed run draws the same numbers
- ``best_score``: the task's best validation score (mIoU, top-1, ODS) so far; -1 before the first evaluation
- ``code_version``: ``git describe`` of the code that wrote it, or the package version

Everything in it is a tensor or a plain Python value, so ``torch.load(..., weights_only=True)`` reads it:
loading a checkpoint never runs code from the file.
"""

import os
import random
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..data.meta import DatasetMeta
from ..errors import DLAError
from ..models import create_model
from .config import config_from_dict

PathLike = Union[str, "os.PathLike[str]"]

REQUIRED_KEYS = ("model", "model_name", "model_kwargs", "task", "dataset_meta")


def save_checkpoint(path: PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: the file is either the old one or the complete new one.

    The bytes go to a temporary file in the same folder (same file system, so the rename is atomic),
    are flushed to disk with ``fsync``, and the temporary file is renamed over ``path`` with
    ``os.replace``. If anything fails (a full disk, an unpicklable value, Ctrl-C) the temporary file is
    removed and the previous checkpoint is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (on the CPU, with ``weights_only=True``).

    Raises a DLAError naming the file when it is missing, unreadable, or lacks the keys of a dla checkpoint.
    """
    if not Path(path).is_file():
        raise DLAError(f"checkpoint {path} not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated files, pickles with arbitrary objects, non-torch files
        raise DLAError(f"cannot read checkpoint {path}: {e}") from None
    return check_checkpoint(checkpoint, str(path))


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


def model_from_checkpoint(checkpoint: PathLike | dict[str, Any]) -> tuple[nn.Module, DatasetMeta]:
    """The trained model (in eval mode, on the CPU) and its dataset's meta, from a checkpoint alone.

    Args:
        checkpoint: a path, or a dict already read with ``load_checkpoint``.
    """
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    checkpoint = check_checkpoint(checkpoint)
    model = create_model(checkpoint["model_name"], **checkpoint["model_kwargs"])
    model.load_state_dict(checkpoint["model"])
    return model.eval(), DatasetMeta.from_dict(checkpoint["dataset_meta"])


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
