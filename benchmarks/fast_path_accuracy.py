"""The fast path's accuracy on real data: does ``dla.optimize`` (and the other backends) predict what eager fp32 does?

On CamVid's validation images, with a trained DLA-34 2s: per backend, the share of pixels whose argmax equals
eager fp32's, and the mIoU of each next to eager's. Without ``--checkpoint`` the script first trains the model
briefly (``configs/camvid_cpu.yaml`` for ``--epochs`` epochs, into ``runs/fast_path_accuracy``): a short run's
predictions are less confident than a converged model's, so more of its pixels sit near a tie between two
classes, where bf16 rounding can flip the argmax; the check is, if anything, harder than on a finished model.

Run: ``DLA_DATA_ROOT=../shared/data python benchmarks/fast_path_accuracy.py [--checkpoint CKPT]
[--backends fast,compile,onnxruntime] [--json docs/results/fast_path_accuracy.json]``.
"""

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor
from trained import trained_model

from dla.engine.config_loader import load_config
from dla.engine.trainer import train
from dla.inference import get_backend
from dla.metrics.segmentation import ConfusionMatrix
from dla.tasks.segmentation import infer

REPO = Path(__file__).resolve().parents[1]


def train_briefly(epochs: int, out_dir: Path) -> Path:
    """DLA-34 2s on CamVid for ``epochs`` epochs of the CPU recipe; returns its last checkpoint (reused if present)."""
    last = out_dir / "checkpoints" / "last.pt"
    if not last.exists():
        overrides = [f"out_dir={out_dir}", f"optim.epochs={epochs}", f"eval.every_epochs={epochs}", "log.tensorboard=false"]
        train(load_config(str(REPO / "configs" / "camvid_cpu.yaml"), overrides))
    return last


def compare(checkpoint: Path, backends: list[str]) -> dict:
    """Pixel agreement with eager fp32 and the mIoU of every backend, over the whole validation split."""
    model, meta, cfg, data = trained_model(checkpoint)
    image, _ = data[0]
    prepared = {name: get_backend(name)(model, image[None]) for name in ["eager", *backends]}
    matrices = {name: ConfusionMatrix(meta.num_classes, meta.ignore_index) for name in prepared}
    agree = dict.fromkeys(prepared, 0)
    pixels = 0
    for image, label in data:
        predictions: dict[str, Tensor] = {}
        for name, module in prepared.items():
            predictions[name] = infer(module, image[None], meta.num_classes, cfg.eval.scales).argmax(1)[0]
            matrices[name].update(predictions[name][None], label[None])
            agree[name] += int((predictions[name] == predictions["eager"]).sum())
        pixels += label.numel()
    scores = {name: matrix.compute() for name, matrix in matrices.items()}
    return {
        "checkpoint": str(checkpoint),
        "images": len(data),
        "scales": list(cfg.eval.scales),
        "pixels": pixels,
        "backends": {
            name: {
                "agreement": agree[name] / pixels,
                "miou": scores[name]["miou"],
                "miou_difference_points": 100 * (scores[name]["miou"] - scores["eager"]["miou"]),
            }
            for name in prepared
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained CamVid checkpoint (default: train one briefly)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the brief training run")
    parser.add_argument("--out-dir", type=Path, default=REPO / "runs" / "fast_path_accuracy")
    parser.add_argument("--backends", default="fast", help="comma-separated backends to compare with eager")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or train_briefly(args.epochs, args.out_dir)
    result = compare(checkpoint, args.backends.split(","))
    print("| backend | pixels agreeing with eager fp32 | val mIoU | difference (points) |")
    print("| --- | --- | --- | --- |")
    for name, row in result["backends"].items():
        print(f"| {name} | {100 * row['agreement']:.3f} % | {100 * row['miou']:.2f} % | {row['miou_difference_points']:+.3f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
