"""The demo (``dla demo``): train a compact DLA segmentation model on synthetic shapes, score it, draw it.

Everything comes from the packaged ``demo.yaml`` (overridable with ``--set``); no file or download is
needed. The run directory gets, besides what every run has, ``predictions/`` (colour masks and overlays
of the first validation images), ``plots/predictions.png`` (those images, their ground truth and the predictions
side by side) and ``plots/curves.png`` (training loss and validation mIoU).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import required
from ..data import build_dataset
from ..engine.checkpoint import model_from_checkpoint
from ..engine.config_loader import load_config
from ..engine.rundir import RunDir
from ..engine.trainer import train
from ..tasks import get_task

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")  # packaged, so that dla demo runs from any installation
PREDICTIONS = 4  # validation images drawn
NEXT_STEPS = """next, your own data (the folder layout of configs/my_data.yaml: images/, masks/, classes.txt):
  dla browse configs/my_data.yaml --set data.root=/path/to/data    # the training samples with their labels
  dla train configs/my_data.yaml --set data.root=/path/to/data     # a run folder in runs/my_data/
  dla predict photos/ --checkpoint runs/my_data/checkpoints/best.pt --out predictions/   # masks, overlays, summary.json"""


def run_demo(out_dir: str = "runs/demo", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train, evaluate and draw; return the final validation scores. A finished demo run is not retrained."""
    cfg = load_config(str(DEMO_CONFIG), [f"out_dir={out_dir}", *overrides])
    run = RunDir(Path(required(cfg.out_dir, "out_dir")))
    scores = train(cfg, resume=run.config.exists())

    task = get_task(cfg.task)
    model, meta = model_from_checkpoint(run.last)
    data = cfg.data
    val_set = build_dataset(data.dataset, data.root, data.val_split, **data.split_options(data.val_split))  # raw images
    rows = []
    for i in range(min(PREDICTIONS, len(val_set))):
        image, truth = val_set.read(i)
        (output,) = task.predict(model, [image], cfg, meta, torch.device("cpu"))
        task.write(run.root / "predictions", Path(f"val_{i:03d}"), image, output.arrays, meta)
        rows.append((f"val {i}", image, truth, output))
    task.draw_predictions(rows, meta).save(run.plots / "predictions.png")

    if data.dataset == "synthetic":  # the packaged demo's data, unless --set chose other
        print("synthetic: generated shapes, a check that training learns, not a benchmark; real data: docs/results.md")
    print(task.table(scores, meta.classes))
    for description, baseline in (method(val_set) for method in task.baselines.values()):
        print(f"baseline, {description}: {task.summary(baseline)}")
    print(f"run directory: {run.root} (predictions/, plots/predictions.png, plots/curves.png, metrics.jsonl)")
    print(NEXT_STEPS)
    return scores
