"""Prediction on image files with a trained checkpoint: the ``dla predict`` command, for any task.

Inputs. Each argument is an image file; a folder, for its images (``list_images``: sorted, hidden files skipped;
with ``recursive``, those of its subfolders too); or a glob pattern the shell left unexpanded (``"*.png"``,
``"**/*.png"``), for what it matches. A file named twice is predicted once. Every file's header is read, and
every image decoded, before the model runs on any; then each image is read again when its turn comes, so that
memory holds one image, not the whole folder.

Output names. An image's outputs keep its path relative to the common folder of the inputs (a file's folder, or
a folder given itself): ``a/x.png`` and ``b/x.png`` write ``OUT/a/x_mask.png`` and ``OUT/b/x_mask.png``, a lone
``x.png`` ``OUT/x_mask.png``. Inputs that would still share a name (``x.png`` beside ``x.jpg``; compared ignoring
case, as some file systems do) keep their extension (``OUT/x.png_mask.png``, ``OUT/x.jpg_mask.png``): no output
overwrites another.

Large images. Whole-image inference needs memory in proportion to the image, so each image's size is read from its
header against a pixel budget (``max_pixels``, 4 megapixels by default). What a larger image gets is its task's
``large_images``: segmentation runs it in overlapping windows (``WINDOW`` x ``WINDOW``, smaller under a budget
below it) unless the run has a window already; classification resizes every image anyway; boundaries (whole
images only) refuse it before any image is predicted. An out-of-memory error in inference names the image and
what to do.
"""

import glob
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..data.base import IMAGE_EXTENSIONS, image_header, list_images, load_image
from ..errors import DLAError
from ..tasks.base import Picture, Task
from .config import task_of, with_eval_settings
from .inference import load_for_inference
from .runtime import select_device

DEFAULT_MAX_PIXELS = 4_000_000  # whole-image inference up to 4 megapixels (a 2048 x 1024 Cityscapes frame is 2.1)
WINDOW = 1024  # the side of the windows of larger images
WINDOW_STEP = 32  # windows are multiples of the largest output stride (DLA's 32), so that every window fits the model
_GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class _Job:
    """One image to predict: the file, its outputs' name, its size from the header, and the window it needs
    (None: the run's own settings)."""

    path: Path
    name: Path
    size: tuple[int, int]  # width, height
    window: tuple[int, int] | None = None

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]

    def describe(self) -> str:
        return f"{self.path} ({self.size[0]}x{self.size[1]})"


class _Reader:
    """Reads each image when the task comes to it and remembers which: a task predicts its pictures in order, one
    at a time, so an error raised in inference is about ``current``."""

    def __init__(self) -> None:
        self.current: _Job | None = None

    def pictures(self, jobs: Iterable[_Job]) -> Iterator[Picture]:
        for job in jobs:
            self.current = job
            yield Picture(job.path, job.name, load_image(job.path))


def predict_files(
    checkpoint: str,
    images: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    probabilities: bool = False,
    device: str = "auto",
    top_k: int = 5,
    backend: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    recursive: bool = False,
    **settings: Any,
) -> list[Path]:
    """Predict image files with a trained checkpoint (or its ONNX export, ``load_for_inference``) run by ``backend``;
    write what its task predicts into ``out_dir``, a folder (created if missing).

    ``images`` are files, folders (with ``recursive``, their subfolders too) or glob patterns; outputs keep each
    image's path relative to the inputs' common folder, and an image above ``max_pixels`` is tiled, resized or
    refused by its task (the module's docstring says how). Segmentation writes ``<name>_mask.png`` (class
    indices, the dataset's palette embedded), ``<name>_overlay.png`` and, with ``probabilities``,
    ``<name>_probs.npy`` (float16, ``C x H x W``) for each image. Boundaries write ``<name>_boundaries.png``,
    ``<name>_boundaries16.png`` and ``<name>_thin.png`` (the probability in 8 and 16 bits, and thinned, as grey
    levels) and, with ``probabilities``, ``<name>_probs.npy`` (float16 ``H x W``). Classification writes one
    ``predictions.json``: for each image path, as named, its ``top_k`` classes with their probabilities, best
    first. ``settings`` replace the run's ``eval`` keys (``scales``, ``flip``, ``window``, ``output_stride`` for
    segmentation; ``ten_crop`` for classification). Input errors are raised before the model runs on any image.
    Returns the written paths.
    """
    if max_pixels < 1:
        raise DLAError(f"--max-pixels is the pixel budget of whole-image inference, a positive number; got {max_pixels}")
    out = output_folder(out_dir)
    files = find_images(images, recursive)
    jobs = [_Job(path, name, image_header(path)) for (path, _), name in zip(files, output_names(files), strict=True)]
    target = select_device(device)
    model, meta, cfg = load_for_inference(checkpoint, backend, settings, target)
    task = task_of(cfg)
    jobs = _plan_large_images(task, cfg, jobs, max_pixels)
    for job in jobs:
        load_image(job.path)  # decodes: a truncated or corrupt file is named now, not after the others are written
    reader, written = _Reader(), []
    try:
        with torch.no_grad():
            for window, group in groupby(jobs, key=lambda job: job.window):
                run_cfg = cfg if window is None else with_eval_settings(cfg, {"window": list(window)})
                written += task.predict(model, reader.pictures(group), run_cfg, meta, target, out, probabilities, top_k)
    except Exception as error:
        if reader.current is None or not out_of_memory(error):
            raise
        raise _memory_error(reader.current, error, task, max_pixels) from error
    return written


def _memory_error(job: _Job, error: BaseException, task: Task, max_pixels: int) -> DLAError:
    """What to say when memory ran out predicting ``job``: the image, the allocator's first line, and what to do
    (smaller windows, or a smaller budget, for a task that tiles; a smaller image, or an earlier refusal, for one that
    runs whole images)."""
    reason = (str(error).strip() or type(error).__name__).splitlines()[0]
    if task.large_images == "tile":
        advice = (
            f"run it in smaller windows with --window H W, or lower --max-pixels (now {max_pixels}) to tile more "
            "images, in smaller windows"
        )
    else:
        advice = (
            f"{task.name} runs whole images: downscale it, or lower --max-pixels (now {max_pixels}) to have such "
            "images refused before any runs"
        )
    return DLAError(f"{job.describe()}: out of memory in inference ({reason}); {advice}")


def output_folder(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir`` as a folder to write into, checked before any work: a file there, or in place of one of the
    folders above it, is refused (the folder itself is created when the first output is written)."""
    out = Path(out_dir)
    existing = next(path for path in (out, *out.parents) if path.exists())
    if not existing.is_dir():
        raise DLAError(f"--out {out}: {existing} is a file; --out must be a folder (it is created if missing)")
    return out


def find_images(arguments: Sequence[str | os.PathLike[str]], recursive: bool = False) -> list[tuple[Path, Path]]:
    """The image files ``arguments`` name (files, folders, glob patterns), in order and each once, with the folder
    its output name is relative to: a file's own folder, or the folder given. An empty folder and a pattern that
    matches nothing are refused; a missing file is left to ``image_header``, which names it."""
    found: dict[Path, tuple[Path, Path]] = {}
    for named_as in arguments:
        argument = os.fspath(named_as)
        path = Path(argument)
        if path.exists() or not any(c in argument for c in _GLOB_CHARACTERS):
            named = _named(path, recursive)
        else:  # a pattern the shell did not expand: quoted, or run without a shell
            matches = sorted(Path(match) for match in glob.glob(argument, recursive=True))
            if not matches:
                raise DLAError(f"{argument}: no file matches this pattern")
            named = [pair for match in matches for pair in _named(match, recursive)]
        for file, folder in named:
            found.setdefault(file.resolve(), (file, folder))
    return list(found.values())


def _named(path: Path, recursive: bool) -> list[tuple[Path, Path]]:
    """A file with its folder, or a folder's images (``_folder_images``) with the folder."""
    if not path.is_dir():
        return [(path, path.parent)]
    images = _folder_images(path, recursive)
    if not images:
        subfolders = not recursive and any(p.is_dir() for p in path.iterdir())
        hint = "; --recursive also reads its subfolders" if subfolders else ""
        raise DLAError(f"{path}: no images in this folder (files ending in {', '.join(IMAGE_EXTENSIONS)}){hint}")
    return [(image, path) for image in images]


def _folder_images(folder: Path, recursive: bool) -> list[Path]:
    """``list_images(folder)`` and, with ``recursive``, those of its subfolders at any depth (hidden ones skipped,
    links to folders not followed), sorted by path."""
    if not recursive:
        return list_images(folder)
    images = []
    for root, subfolders, _ in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        images += list_images(Path(root))
    return sorted(images)


def output_names(files: Sequence[tuple[Path, Path]]) -> list[Path]:
    """Where each of ``find_images``' files writes, relative to the output folder and without a suffix: its path
    relative to the common folder of the files' folders (``a/x.png``, ``b/x.png``: ``a/x``, ``b/x``). Names that
    still coincide, ignoring case, keep their extension (``x.png`` beside ``x.jpg``: ``x.png``, ``x.jpg``), until
    none does; distinct files have distinct paths with their extensions, so the names of a call are distinct."""
    base = os.path.commonpath([os.path.abspath(folder) for _, folder in files])
    full = [Path(os.path.abspath(file)).relative_to(base) for file, _ in files]
    names = [path.with_suffix("") for path in full]
    while clashing := _clashing(names, full):
        for index in clashing:
            names[index] = full[index]
    return names


def _clashing(names: list[Path], full: list[Path]) -> list[int]:
    """The indices of the names that another name equals (ignoring case) and that can still keep their extension."""
    counts = Counter(str(name).casefold() for name in names)
    return [i for i, name in enumerate(names) if counts[str(name).casefold()] > 1 and name != full[i]]


def window_for(max_pixels: int) -> tuple[int, int]:
    """The window of an image above ``max_pixels``: ``WINDOW`` x ``WINDOW``, or under a smaller budget the largest
    square multiple of ``WINDOW_STEP`` within it (one ``WINDOW_STEP`` square at least), so that lowering the budget
    also lowers the memory of tiled inference."""
    side = min(WINDOW, max(WINDOW_STEP, math.isqrt(max_pixels) // WINDOW_STEP * WINDOW_STEP))
    return side, side


def _plan_large_images(task: Task, cfg: Config, jobs: list[_Job], max_pixels: int) -> list[_Job]:
    """``jobs`` with the window each image above ``max_pixels`` needs, by ``task.large_images``: a tiling task runs
    them in ``window_for(max_pixels)`` windows (said once, on stdout) unless ``cfg.eval.window`` already tiles every
    image; a resizing task needs none; a whole-image task refuses them, naming the first, before any is predicted."""
    large = [job for job in jobs if job.pixels > max_pixels]
    if not large or task.large_images == "resize":
        return jobs
    if task.large_images == "refuse":
        others = f" (and {len(large) - 1} more)" if len(large) > 1 else ""
        raise DLAError(
            f"{large[0].describe()}{others}: {large[0].pixels} pixels, above the budget of {max_pixels} for "
            f"whole-image inference, and {task.name} predicts whole images only (no sliding window); downscale "
            f"the image, or raise the budget with --max-pixels {large[0].pixels} if this machine has the memory"
        )
    if cfg.eval.window:
        return jobs
    window = window_for(max_pixels)
    print(
        f"dla: {len(large)} image(s) above {max_pixels} pixels, e.g. {large[0].describe()}, run in {window[0]}x{window[1]} "
        "windows (sliding-window inference); --window H W sets the window, --max-pixels the budget"
    )
    return [replace(job, window=window) if job.pixels > max_pixels else job for job in jobs]


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says memory ran out: ``torch.OutOfMemoryError`` (CUDA), ``MemoryError`` (NumPy), or a
    ``RuntimeError`` of an allocator that could not allocate (the CPU's, MPS's)."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in message or "allocate memory" in message)
