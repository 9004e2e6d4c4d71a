"""Prediction from Python: ``Predictor``, a checkpoint loaded once and called on images, returning ``Prediction``s.

``dla predict`` (``dla.commands.predict``) runs its files through a ``Predictor`` and writes what it returns, so the
command and the object compute every result by one code path, the task's (``Task.predict``: the arrays and the
summary of a batch, in memory; ``Task.pictures``; ``Task.write``). The engine names no task.

Batches. Consecutive images of one size (and window) run as one batch of up to ``batch_size`` images; a batch's
results equal those of its images run one at a time within float tolerance (a convolution over a batch may sum in
another order). ``Prediction.seconds`` is the batch's wall time divided among its images.

Large images. Whole-image inference needs memory in proportion to the image, so each image's size is checked against
a pixel budget (``max_pixels``, 4 megapixels by default) before any image is predicted. What a larger image gets is
its task's ``large_images``: segmentation runs it in overlapping windows (``WINDOW`` x ``WINDOW``, smaller under a
budget below it) unless the run has a window already; classification resizes every image anyway; boundaries (whole
images only) refuse it. An out-of-memory error in inference names the image and what to do.
"""

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from PIL import Image

from ..data.base import load_image, to_rgb
from ..engine.config_loader import with_eval_settings
from ..engine.runtime import select_device
from ..errors import DLAError
from ..tasks import PredictOptions, Task, get_task
from .loading import load_for_inference

DEFAULT_MAX_PIXELS = 4_000_000  # whole-image inference up to 4 megapixels (a 2048 x 1024 Cityscapes frame is 2.1)
WINDOW = 1024  # the side of the windows of larger images
WINDOW_STEP = 32  # windows are multiples of the largest output stride (DLA's 32), so that every window fits the model

ImageInput = Image.Image | np.ndarray | str | os.PathLike


@dataclass(frozen=True)
class Prediction:
    """What a model predicts of one image.

    ``arrays`` by task, at the image's size: segmentation ``mask`` (``H x W`` int64 class ids; 255 is never
    predicted) and, when asked for, ``probabilities`` (``C x H x W`` float32); boundaries ``boundaries`` (``H x W``
    float32 probability) and ``thin`` (``H x W`` float32, the probability where the thinned edges survive, 0
    elsewhere); classification ``probabilities`` (``C`` float32). ``summary``, JSON-ready: segmentation
    ``{"class_pixels": {class: count}}`` (every class), classification ``{"top_k": [{"class", "index",
    "probability"}, ...]}`` best first, boundaries ``{"edge_pixels": n}`` (thinned pixels of probability >= 0.5).
    """

    path: Path | None  # the file, when the input was a path
    size: tuple[int, int]  # the input's width, height
    seconds: float  # wall time of this image's inference (its batch's, divided among its images)
    arrays: dict[str, np.ndarray]
    summary: dict[str, Any]
    image: Image.Image = field(repr=False, compare=False)  # the RGB image predicted
    draw: Callable[[], dict[str, Image.Image]] = field(default=dict, repr=False, compare=False)  # the task's pictures

    def __repr__(self) -> str:
        arrays = ", ".join(f"{name}: {array.dtype} {'x'.join(map(str, array.shape))}" for name, array in self.arrays.items())
        return (
            f"Prediction(path={self.path}, size={self.size}, seconds={self.seconds:.4f}, arrays={{{arrays}}}, "
            f"summary={self.summary})"
        )

    def pictures(self) -> dict[str, Image.Image]:
        """The prediction drawn, by name: segmentation ``mask`` (palette image of class ids) and ``overlay`` (RGB);
        boundaries ``boundaries`` and ``thin`` (8-bit grey); classification none."""
        return self.draw()


@dataclass(frozen=True)
class Job:
    """One image to predict: ``path``, the file (None for an image given in memory); ``size`` (width, height), from
    the file's header or the image; ``window``, the window it needs (None: the run's own settings); ``given``, the
    image when it was given in memory or read already (None: read the file when its batch runs)."""

    path: Path | None
    size: tuple[int, int]
    window: tuple[int, int] | None = None
    given: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]

    def read(self) -> Image.Image:
        if self.given is not None:
            return self.given
        if self.path is None:
            raise ValueError("a Job is given an image or a file to read it from")
        return load_image(self.path)

    def describe(self) -> str:
        return f"{self.path if self.path is not None else 'the image'} ({self.size[0]}x{self.size[1]})"


class Predictor:
    """A model loaded once from ``checkpoint`` (a ``dla`` checkpoint, a folder ``dla export --format hub`` wrote, or an
    ``.onnx`` export: ``load_for_inference``), called on images.

    ``predictor(image)`` takes a PIL image (any mode, as RGB), a NumPy uint8 array (``H x W x 3`` RGB or ``H x W``
    grey) or a path to an image file, and returns a ``Prediction``; a list or tuple of them returns a list, in order.
    ``settings`` replace the run's ``eval`` keys (``scales``, ``flip``, ``window``, ``output_stride``, ``ten_crop``);
    ``top_k``: classes in a classification summary; ``batch_size``: images of one size run together;
    ``max_pixels``: the budget of whole-image inference (the module's docstring).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        device: str = "auto",
        backend: str | None = None,
        *,
        top_k: int = 5,
        batch_size: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        **settings: Any,
    ) -> None:
        for flag, value in (("--top-k", top_k), ("--batch-size", batch_size), ("--max-pixels", max_pixels)):
            if value < 1:
                raise DLAError(f"{flag} ({flag[2:].replace('-', '_')}) must be a positive number; got {value}")
        self.checkpoint, self.top_k, self.batch_size, self.max_pixels = str(checkpoint), top_k, batch_size, max_pixels
        self.device = select_device(device)
        self.model, self.meta, self.cfg = load_for_inference(checkpoint, backend, settings, self.device)
        self.backend = backend or ("onnxruntime" if Path(checkpoint).suffix == ".onnx" else "eager")
        self._task: Task = get_task(self.cfg.task)

    @property
    def task(self) -> str:
        """``segmentation``, ``classification`` or ``boundaries``."""
        return self._task.name

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @property
    def palette(self) -> list[tuple[int, int, int]] | None:
        return [(int(r), int(g), int(b)) for r, g, b in self.meta.palette] or None

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings: the ``eval`` keys of its task in force, the backend, the batch size, the pixel budget and
        ``top_k``."""
        evaluated = {key: value for key, value in asdict(self.cfg.eval).items() if f"eval.{key}" in self._task.keys}
        return {
            "eval": evaluated,
            "backend": self.backend,
            "batch_size": self.batch_size,
            "max_pixels": self.max_pixels,
            "top_k": self.top_k,
        }

    @overload
    def __call__(self, images: ImageInput, probabilities: bool = False) -> Prediction: ...
    @overload
    def __call__(self, images: list[ImageInput] | tuple[ImageInput, ...], probabilities: bool = False) -> list[Prediction]: ...
    def __call__(self, images: Any, probabilities: bool = False) -> Prediction | list[Prediction]:
        """Predict an image, or a list (tuple) of images; ``probabilities``: also the dense tasks' probabilities.
        Every input is read and checked, and every size against the budget, before the model runs on any."""
        if isinstance(images, (list, tuple)):
            jobs = self.plan([_job(image, f"input {i}") for i, image in enumerate(images)])
            return [prediction for batch in self.batches(jobs) for prediction in self.run(batch, probabilities)]
        return self.run(self.plan([_job(images, "the input")]), probabilities)[0]

    def plan(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` with the window each image above ``max_pixels`` needs, by the task's ``large_images``: a tiling task
        runs them in ``window_for(max_pixels)`` windows (said once, on stdout) unless ``eval.window`` already tiles
        every image; a resizing task needs none; a whole-image task refuses them, naming the first."""
        large = [job for job in jobs if job.pixels > self.max_pixels]
        task = self._task
        if not large or task.large_images == "resize":
            return jobs
        if task.large_images == "refuse":
            others = f" (and {len(large) - 1} more)" if len(large) > 1 else ""
            raise DLAError(
                f"{large[0].describe()}{others}: {large[0].pixels} pixels, above the budget of {self.max_pixels} for "
                f"whole-image inference, and {task.name} predicts whole images only (no sliding window); downscale "
                f"the image, or raise the budget with --max-pixels {large[0].pixels} if this machine has the memory"
            )
        if self.cfg.eval.window:
            return jobs
        window = window_for(self.max_pixels)
        print(
            f"dla: {len(large)} image(s) above {self.max_pixels} pixels, e.g. {large[0].describe()}, run in "
            f"{window[0]}x{window[1]} windows (sliding-window inference); --window H W sets the window, --max-pixels "
            "the budget"
        )
        return [replace(job, window=window) if job.pixels > self.max_pixels else job for job in jobs]

    def batches(self, jobs: Sequence[Job]) -> Iterator[list[Job]]:
        """``jobs`` in order, in batches of consecutive images of one size and window, up to ``batch_size`` each."""
        batch: list[Job] = []
        for job in jobs:
            if batch and (len(batch) == self.batch_size or (job.size, job.window) != (batch[0].size, batch[0].window)):
                yield batch
                batch = []
            batch.append(job)
        if batch:
            yield batch

    def run(self, batch: Sequence[Job], probabilities: bool = False) -> list[Prediction]:
        """Predict one batch (images of one size and window) with the task's ``predict``; each image read now."""
        images = [job.read() for job in batch]
        window = batch[0].window
        cfg = self.cfg if window is None else with_eval_settings(self.cfg, {"window": list(window)})
        start = time.perf_counter()
        try:
            with torch.no_grad():
                outputs = self._task.predict(self.model, images, cfg, self.meta, self.device, self._options(probabilities))
        except Exception as error:
            if not out_of_memory(error):
                raise
            raise self._memory_error(batch, error) from error
        seconds = (time.perf_counter() - start) / len(batch)
        return [
            Prediction(
                job.path, job.size, seconds, arrays, summary, image, partial(self._task.pictures, image, arrays, self.meta)
            )
            for job, image, (arrays, summary) in zip(batch, images, outputs, strict=True)
        ]

    def write(self, out: Path, name: Path, prediction: Prediction, probabilities: bool = False) -> list[Path]:
        """Write ``prediction`` as ``dla predict``'s files of one image, named after ``name`` under ``out``
        (``Task.write``); the written paths."""
        return self._task.write(out, name, prediction.image, prediction.arrays, self.meta, self._options(probabilities))

    def write_run(self, out: Path, summaries: dict[str, dict[str, Any]]) -> list[Path]:
        """Write the task's files for all images (classification: ``predictions.json``) from their summaries, keyed by
        path (``Task.write_run``); the written paths."""
        return self._task.write_run(out, summaries)

    def _options(self, probabilities: bool) -> PredictOptions:
        """What the task's ``predict`` and ``write`` are asked beyond the run's settings."""
        return PredictOptions(probabilities=probabilities, top_k=self.top_k)

    def _memory_error(self, batch: Sequence[Job], error: BaseException) -> DLAError:
        """What to say when memory ran out predicting ``batch``: its (first) image, the allocator's first line, and what
        to do (a smaller batch; smaller windows, or a smaller budget, for a task that tiles; a smaller image, or an
        earlier refusal, for one that runs whole images)."""
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        where = batch[0].describe() + (f" and {len(batch) - 1} more in its batch" if len(batch) > 1 else "")
        advice = "lower --batch-size, or " if len(batch) > 1 else ""
        if self._task.large_images == "tile":
            advice += (
                f"run it in smaller windows with --window H W, or lower --max-pixels (now {self.max_pixels}) to tile "
                "more images, in smaller windows"
            )
        else:
            advice += (
                f"{self._task.name} runs whole images: downscale it, or lower --max-pixels (now {self.max_pixels}) to "
                "have such images refused before any runs"
            )
        return DLAError(f"{where}: out of memory in inference ({reason}); {advice}")


def _job(image: Any, where: str) -> Job:
    """A ``Job`` of one input: a path (read and decoded now: a missing or broken file is named before any runs), a PIL
    image or a NumPy uint8 array, as RGB; anything else is refused naming ``where`` and its type."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        rgb = load_image(path)
        return Job(path, rgb.size, given=rgb)
    if isinstance(image, Image.Image):
        rgb = to_rgb(_decoded(image, where), f"{where} (a PIL image)")
    elif isinstance(image, np.ndarray):
        rgb = to_rgb(Image.fromarray(_pixels(image, where)), where)
    else:
        raise DLAError(
            f"{where}: {type(image).__name__} is not an image; give a PIL image, a NumPy "
            "uint8 array (H x W x 3 RGB or H x W grey), a path to an image file, or a list of them"
        )
    return Job(None, rgb.size, given=rgb)


def _decoded(image: Image.Image, where: str) -> Image.Image:
    """``image`` with its pixels decoded (PIL reads an opened file lazily): a truncated file is a DLAError here."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise DLAError(f"{where}: the PIL image cannot be decoded ({e}); not an image, or truncated or corrupt") from e
    return image


def _pixels(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` checked to be an image's uint8 pixels, ``H x W x 3`` (RGB) or ``H x W`` (grey)."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)) or 0 in array.shape:
        raise DLAError(
            f"{where}: a NumPy image is uint8, H x W x 3 (RGB) or H x W (grey); got shape {array.shape} and dtype "
            f"{array.dtype} (scale floats to 0..255 and convert them with .astype(np.uint8); drop an alpha channel)"
        )
    return np.ascontiguousarray(array)


def window_for(max_pixels: int) -> tuple[int, int]:
    """The window of an image above ``max_pixels``: ``WINDOW`` x ``WINDOW``, or under a smaller budget the largest
    square multiple of ``WINDOW_STEP`` within it (one ``WINDOW_STEP`` square at least), so that lowering the budget
    also lowers the memory of tiled inference."""
    side = min(WINDOW, max(WINDOW_STEP, math.isqrt(max_pixels) // WINDOW_STEP * WINDOW_STEP))
    return side, side


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says memory ran out: ``torch.OutOfMemoryError`` (CUDA), ``MemoryError`` (NumPy), or a
    ``RuntimeError`` of an allocator that could not allocate (the CPU's, MPS's)."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in message or "allocate memory" in message)


__all__ = ["DEFAULT_MAX_PIXELS", "Job", "Prediction", "Predictor", "out_of_memory", "window_for"]
