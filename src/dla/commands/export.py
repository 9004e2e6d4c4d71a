"""Exporting a checkpoint or a registered model (the ``dla export`` command), and reading a run back from an export.

Two formats: ``onnx`` (one file, below) and ``hub`` (``save_pretrained``: a folder to share as it is, on any model
hub: ``model.safetensors``, ``config.json`` and a generated ``README.md`` model card; ``dla eval DIR``,
``dla predict --checkpoint DIR`` and ``create_model(name, pretrained=DIR)`` read it).

An export of a checkpoint is self-describing: its metadata (``dla.commands.loading.export_metadata``, documented
there) carries the task, the classes, the normalisation and the run's settings, so that ``dla eval model.onnx`` and
``dla predict --checkpoint model.onnx`` rebuild them from the file alone; both load it with
``dla.commands.loading``, as this module loads what it exports.
"""

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..data.meta import DatasetMeta
from ..engine.checkpoint import HUB_CONFIG, HUB_WEIGHTS, load_checkpoint, model_from_checkpoint
from ..engine.rundir import code_version
from ..errors import DLAError
from ..inference.onnx import DEFAULT_OPSET, export_onnx
from ..inference.stride import evaluated_at
from ..models import create_model
from ..tasks import get_task
from .loading import DEFAULT_SIZE, export_metadata, load_run

FORMATS = ("onnx", "hub")


def export_model(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fmt: str = "onnx",
    input_size: tuple[int, int] = DEFAULT_SIZE,
    opset: int = DEFAULT_OPSET,
    num_classes: int | None = None,
) -> Path:
    """Export ``source`` (a ``dla`` checkpoint file, or a registered model name) to ``out``; returns ``out``.

    A checkpoint's model is exported at its run's ``eval.output_stride`` (DeepLabv3: 8), the stride its
    evaluation uses, and carries the run in its metadata (module docstring). ``num_classes`` applies to a
    model name only (a checkpoint's classes are its own).
    """
    if fmt not in FORMATS:
        raise DLAError(f"unknown export format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if fmt == "hub":
        return save_pretrained(source, out)
    if Path(source).is_file():
        if num_classes is not None:
            raise DLAError(f"--num-classes applies to a model name; {source} is a checkpoint with its own classes")
        model, metadata, output_stride = _checkpoint_export(source)
    else:
        model, metadata, output_stride = _model_export(str(source), num_classes)
    with evaluated_at(model, output_stride):
        return export_onnx(model, out, input_size=input_size, opset=opset, metadata=metadata)


def save_pretrained(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write a trained checkpoint as a folder to share (``dla export CKPT --format hub --out DIR``); returns it.

    - ``model.safetensors``: the weights (safetensors: no code runs when they are read), the checkpoint's keys;
    - ``config.json``: ``format: dla``, ``model_name``, ``model_kwargs``, ``task``, ``dataset_meta`` (classes,
      palette, mean/std), the training ``config``, ``iteration``, ``scores`` (the run's evaluation at the
      checkpoint's epoch, when the run folder holds it) and the code versions that trained and exported it;
    - ``README.md``: a model card from the above (what, data, scores, how to use it, how it was trained).

    The optimizer state is left out: the folder is for inference and fine-tuning, ``--resume`` needs the ``.pt``.
    """
    from safetensors.torch import save_file  # a dependency; imported here, where it is used

    state = load_checkpoint(checkpoint)  # a shared folder need not hold a run's config, which load_run reads
    model, meta = model_from_checkpoint(state, name=str(checkpoint))
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise DLAError(f"--out {folder} is a file; the hub format writes a folder")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, folder / HUB_WEIGHTS, {"format": "pt"})
    scores = _run_scores(Path(checkpoint), state)
    card = {
        "format": "dla",
        "model_name": state["model_name"],
        "model_kwargs": state["model_kwargs"],
        "task": state["task"],
        "dataset_meta": meta.to_dict(),
        "config": state.get("config", {}),
        "iteration": state.get("iteration"),
        "scores": scores,
        "trained_with": state.get("code_version"),
        "exported_with": code_version(),
    }
    (folder / HUB_CONFIG).write_text(json.dumps(card, indent=2) + "\n")
    (folder / "README.md").write_text(model_card(card))
    return folder


def model_card(card: dict[str, Any]) -> str:
    """The ``README.md`` of a shared folder: the model, its data and classes, its scores, how to use it."""
    task, meta = get_task(card["task"]), DatasetMeta.from_dict(card["dataset_meta"])
    cfg = card["config"]
    data = cfg.get("data", {})
    scores = card["scores"]
    lines = [
        "---",
        "library_name: dla",
        "tags: [deep-layer-aggregation, " + card["task"] + "]",
        "---",
        "",
        f"# {card['model_name']} ({card['task']}, {meta.name})",
        "",
        f"A `{card['model_name']}` model of the `dla` library (Deep Layer Aggregation, Yu et al., CVPR 2018) trained for "
        f"{card['task']} on {data.get('dataset', meta.name)} ({len(meta.classes)} classes: {', '.join(meta.classes)}), "
        f"{card['iteration']} iterations.",
        "",
        "## Scores",
        "",
    ]
    if scores:
        lines += [
            f"{task.summary(scores)} on the `{data.get('val_split', 'val')}` split:",
            "",
            "```",
            task.table(scores, meta.classes),
            "```",
        ]
    else:
        lines += ["No evaluation was found next to the checkpoint; run `dla eval` on this folder."]
    lines += [
        "",
        "## Use",
        "",
        "```sh",
        "dla predict image.png --checkpoint THIS_FOLDER --out predictions/",
        "dla eval THIS_FOLDER --split val",
        "```",
        "",
        "```python",
        "import dla",
        f"model = dla.create_model({card['model_name']!r}, pretrained='THIS_FOLDER', **{card['model_kwargs']!r})",
        "```",
        "",
        "## Training",
        "",
        f"Trained with dla {card['trained_with']}, exported with {card['exported_with']}; the full training config is",
        "`config` in `config.json`.",
        "",
    ]
    return "\n".join(lines)


def _run_scores(checkpoint: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The run's evaluation at the checkpoint's epoch (``eval/epoch_<n>.json`` of the run folder), or nothing."""
    evaluation = checkpoint.parent.parent / "eval" / f"epoch_{state.get('epoch')}.json"
    if not evaluation.is_file():
        return {}
    try:
        return json.loads(evaluation.read_text())
    except ValueError:
        return {}


def _checkpoint_export(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, str], int | None]:
    """The checkpoint's model, its metadata, and the output stride to export it at."""
    model, meta, cfg, state = load_run(path)
    return model, export_metadata(state, meta, cfg, path), cfg.eval.output_stride


def _model_export(name: str, num_classes: int | None) -> tuple[nn.Module, dict[str, str], None]:
    """A registered model (``create_model(name)``, no trained weights) and its metadata."""
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    model = create_model(name, **kwargs).eval()
    metadata = {"dla.model_name": name, "dla.model_kwargs": json.dumps(kwargs), "dla.code_version": code_version()}
    return model, metadata, None
