"""Prediction on image files with a trained checkpoint: the ``dla predict`` command, for any task.

Inputs. Each argument is an image file; a folder, for its images (``list_images``: sorted, hidden files skipped;
with ``recursive``, those of its subfolders too); or a glob pattern the shell left unexpanded (``"*.png"``,
``"**/*.png"``), for what it matches. A file named twice is predicted once. Every file's header is read, and
every image decoded, before the model runs on any; then each batch's images are read again when its turn comes,
so that memory holds one batch, not the whole folder.

Output names. An image's outputs keep its path relative to the common folder of the inputs (a file's folder, or
a folder given itself): ``a/x.png`` and ``b/x.png`` write ``OUT/a/x_mask.png`` and ``OUT/b/x_mask.png``, a lone
``x.png`` ``OUT/x_mask.png``. Inputs that would still share a name (``x.png`` beside ``x.jpg``; compared ignoring
case, as some file systems do) keep their extension (``OUT/x.png_mask.png``, ``OUT/x.jpg_mask.png``): no output
overwrites another.

Inference. The images go through a ``dla.commands.predictor.Predictor``, the object Python users call, in batches
of consecutive images of one size, with its pixel budget for large images (tiled, resized or refused by the task);
each image's outputs are written by its task (``Task.write``) as its batch is done, and ``OUT/summary.json``
describes the run and every image (``write_summary``).
"""

import glob
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..data.base import IMAGE_EXTENSIONS, image_header, list_images, load_image
from ..errors import DLAError
from .predictor import DEFAULT_MAX_PIXELS, Job, Prediction, Predictor

_GLOB_CHARACTERS = "*?["


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
    batch_size: int = 1,
    progress: bool = True,
    **settings: Any,
) -> list[Path]:
    """Predict image files with a trained checkpoint (a folder ``dla export --format hub`` wrote, or an ONNX export:
    ``load_for_inference``) run by ``backend``; write what its task predicts into ``out_dir``, a folder (created if
    missing).

    ``images`` are files, folders (with ``recursive``, their subfolders too) or glob patterns; outputs keep each
    image's path relative to the inputs' common folder, and an image above ``max_pixels`` is tiled, resized or
    refused by its task (``Predictor.plan``). Segmentation writes ``<name>_mask.png`` (class indices, the dataset's
    palette embedded), ``<name>_overlay.png`` and, with ``probabilities``, ``<name>_probs.npy`` (float16,
    ``C x H x W``) for each image. Boundaries write ``<name>_boundaries.png``, ``<name>_boundaries16.png`` and
    ``<name>_thin.png`` (the probability in 8 and 16 bits, and thinned, as grey levels) and, with ``probabilities``,
    ``<name>_probs.npy`` (float16 ``H x W``). Classification writes one ``predictions.json``: for each image path, as
    named, its ``top_k`` classes with their probabilities, best first. Every task writes ``summary.json``
    (``write_summary``). ``batch_size``: consecutive images of one size run together; ``progress``: a progress bar on
    stderr when it is a terminal. ``settings`` replace the run's ``eval`` keys (``scales``, ``flip``, ``window``,
    ``output_stride`` for segmentation; ``ten_crop`` for classification). Input errors are raised before the model
    runs on any image. Returns the written paths, ``summary.json`` last.
    """
    out = output_folder(out_dir)
    files = find_images(images, recursive)
    jobs = [Job(path, image_header(path)) for path, _ in files]
    predictor = Predictor(checkpoint, device, backend, top_k=top_k, batch_size=batch_size, max_pixels=max_pixels, **settings)
    jobs = predictor.plan(jobs)
    for path, _ in files:
        load_image(path)  # decodes: a truncated or corrupt file is named now, not after the others are written
    names = iter(output_names(files))  # in the order of the jobs, which the batches keep
    written: list[Path] = []
    records, summaries = [], {}
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="predicting", unit="image", file=sys.stderr, disable=not progress or not sys.stderr.isatty())
    with bar:
        for batch in predictor.batches(jobs):
            for prediction in predictor.run(batch, probabilities):
                outputs = predictor.write(out, next(names), prediction, probabilities)
                records.append(_record(prediction, batch[0].window, [path.relative_to(out) for path in outputs]))
                summaries[str(prediction.path)] = prediction.summary
                written += outputs
            bar.update(len(batch))
    shared = predictor.write_run(out, summaries)
    summary = write_summary(out, predictor, records, [path.relative_to(out) for path in shared], time.perf_counter() - start)
    return [*written, *shared, summary]


def _record(prediction: Prediction, window: tuple[int, int] | None, outputs: list[Path]) -> dict[str, Any]:
    """One image's entry in ``summary.json``."""
    return {
        "path": str(prediction.path),
        "outputs": [str(path) for path in outputs],
        "size": list(prediction.size),
        "window": list(window) if window else None,
        "seconds": prediction.seconds,
        "summary": prediction.summary,
    }


def write_summary(out: Path, predictor: Predictor, images: list[dict[str, Any]], outputs: list[Path], seconds: float) -> Path:
    """Write ``out/summary.json``: the run (checkpoint, model, task, classes, device, settings, the ``outputs`` written
    for all images, relative to ``out``, and the ``seconds`` of the whole prediction, reading and writing included) and
    ``images``, one entry per image in order: its ``path`` as named, its ``outputs`` (relative to ``out``), ``size``
    (width, height), the ``window`` it ran in (null: the run's settings), the ``seconds`` of its inference and its
    task's ``summary`` (``Prediction.summary``)."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "checkpoint": predictor.checkpoint,
        "model": predictor.cfg.model.name,
        "task": predictor.task,
        "classes": predictor.classes,
        "device": str(predictor.device),
        "settings": predictor.settings,
        "outputs": [str(path) for path in outputs],
        "seconds": seconds,
        "images": images,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out / "summary.json"


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
