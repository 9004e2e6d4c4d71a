"""The run directory, the metrics logger, and what an evaluation during training writes (``report_evaluation``).

One training run owns one folder (``out_dir``)::

    config.yaml               the resolved config; `load_config` reads it back
    code_version              `git describe --always --dirty` of the code, or the package version
    metrics.jsonl             one JSON record per log event (training loss and lr, validation scores)
    metrics.csv               the same records as a table, one column per key
    events.out.tfevents.*     TensorBoard scalars (with log.tensorboard)
    checkpoints/last.pt       after every epoch, and on Ctrl-C
    checkpoints/best.pt       the checkpoint with the best validation score of the task (mIoU, top-1, ODS)
    eval/epoch_<n>.json       full validation metrics (per-class IoU, accuracies) after epoch n
    plots/                    the task's pictures of the last evaluation and the training curves
    .lock                     held by the process training into the folder (its PID and host)

The logs always describe the run that produced ``last.pt``: when a run resumes from iteration ``i``,
records after ``i`` (written after that checkpoint, by a run that then crashed) are dropped, and
TensorBoard is told to purge its events after ``i``.
"""

import contextlib
import csv
import fcntl
import json
import math
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .._version import __version__
from ..config import Config
from ..data.meta import DatasetMeta
from ..errors import DLAError
from ..tasks import Task, plot_curves
from .checkpoint import remove_stale_temporaries
from .config_loader import dump_config
from .results import write_json


@dataclass(frozen=True)
class RunDir:
    """The paths of a run directory (nothing is created until ``create``)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def resume_from(self, resume: bool) -> Path | None:
        """The checkpoint to continue from: ``last.pt`` when resuming, None for a new run.

        A folder that holds a run's checkpoint is only reused with ``resume``. A run that failed before its first
        checkpoint holds nothing worth keeping: it starts again, with ``resume`` or without.
        """
        holds_run = self.last.exists() or self.best.exists()
        if holds_run and not resume:
            raise DLAError(
                f"out_dir {self.root} already holds a run; pass --resume to continue it, "
                "or choose a new out_dir (--set out_dir=...)"
            )
        if resume and not holds_run:
            raise DLAError(
                f"nothing to resume in {self.root} (no config.yaml or checkpoints/last.pt); drop --resume to start a new run"
            )
        return self.last if resume and self.last.exists() else None

    def create(self, cfg: Config) -> None:
        """Make the folders, write ``config.yaml`` and ``code_version``, and delete the temporary files of
        checkpoint writes that a killed run left behind (the lock is held: no one else writes them)."""
        for folder in (self.root, self.last.parent, self.eval, self.plots):
            folder.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, self.config)
        (self.root / "code_version").write_text(code_version() + "\n")
        remove_stale_temporaries(self.last.parent)

    @contextlib.contextmanager
    def locked(self, enabled: bool = True) -> Iterator[None]:
        """Hold an exclusive lock on the run directory for the block, so that a second ``dla train`` into the same
        ``out_dir`` (a new run or ``--resume``) is refused, naming the process that holds it.

        The lock is ``fcntl.flock`` on ``.lock`` in the folder, which also records the holder's PID and host; the
        operating system releases it when the process ends, however it ends (``kill -9`` included), so a lock
        never outlives its run. A folder the block made and left holding only the lock (a run refused before it
        wrote anything) is removed again. ``enabled=False`` (processes other than rank 0) takes none.
        """
        if not enabled:
            yield
            return
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with self._flocked():
                yield
        finally:
            if created and [p.name for p in self.root.iterdir()] == [self.lock_file.name]:  # a run that wrote nothing
                self.lock_file.unlink()
                self.root.rmdir()

    @contextlib.contextmanager
    def _flocked(self) -> Iterator[None]:
        with open(self.lock_file, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise DLAError(
                    f"out_dir {self.root} is in use by {holder}, which is training into it; wait for it to end "
                    "(or stop it), then --resume; or choose another out_dir"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def code_version() -> str:
    """``git describe --always --dirty`` of the checkout holding this package, else ``dla.__version__``."""
    package = Path(__file__).resolve().parents[1]
    try:
        # only when the package's own files are tracked: an installed copy may sit inside some other repository
        tracked = ["git", "ls-files", "--error-unmatch", "__init__.py"]
        subprocess.run(tracked, cwd=package, check=True, capture_output=True, timeout=10)
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=package, check=True, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    return described.stdout.strip() or __version__


class MetricsLogger:
    """Appends records to ``metrics.jsonl`` and ``metrics.csv`` and, optionally, TensorBoard scalars.

    A record is a flat dict with an ``iteration`` (the x axis everywhere) and usually an ``epoch``, e.g.
    ``{"epoch": 3, "iteration": 120, "loss": 0.41, "lr": 0.01}`` or ``{"epoch": 10, "iteration": 400,
    "val_miou": 0.52}``. The CSV has one column per key ever logged; when a record brings a new key,
    the file is rewritten once with the wider header.

    Args:
        root: the run directory.
        tensorboard: also write ``events.*`` files for TensorBoard.
        start_iteration: the iteration the run (re)starts from; records after it are dropped.
    """

    def __init__(self, root: Path, tensorboard: bool, start_iteration: int = 0) -> None:
        self.jsonl = root / "metrics.jsonl"
        self.csv = root / "metrics.csv"
        self.records = [r for r in _read_jsonl(self.jsonl) if r.get("iteration", 0) <= start_iteration]
        self.columns: list[str] = []
        self._rewrite()
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported here: slow, and only needed here

            self.writer = SummaryWriter(str(root), purge_step=start_iteration + 1)

    def log(self, record: dict[str, Any]) -> None:
        """Append one record everywhere."""
        self.records.append(record)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if set(record) - set(self.columns):
            self._rewrite()
        else:
            with self.csv.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(record)
        if self.writer is not None:
            for key, value in record.items():
                if key not in ("epoch", "iteration") and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, record["iteration"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _rewrite(self) -> None:
        """Write both files from ``self.records`` (at start, and when the CSV needs a new column)."""
        self.columns = list(dict.fromkeys(key for record in self.records for key in record))
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        with self.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(self.records)


def report_evaluation(
    run: RunDir,
    logger: MetricsLogger,
    task: Task,
    meta: DatasetMeta,
    scores: dict[str, Any],
    epoch: int,
    iteration: int,
    best: float,
) -> None:
    """Write an evaluation's scores (``eval/epoch_<n>.json``, the log), its pictures and the curves; print its summary."""
    at = {"epoch": epoch, "iteration": iteration}
    write_json(run.eval / f"epoch_{epoch}.json", {**at, "classes": list(meta.classes), **scores})
    logger.log({**at, **{f"val_{k}": v for k, v in scores.items() if isinstance(v, float)}})  # the scalars
    for name, picture in task.draw(scores, meta.classes).items():
        picture.save(run.plots / f"{name}.png")
    plot_curves(run.root / "metrics.jsonl", run.plots / "curves.png", task.score)
    tqdm.write(f"epoch {epoch}: {task.summary(scores)} (best {best:.4f})")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a crash ends the readable history
    return records
