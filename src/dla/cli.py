"""The ``dla`` command line: argument parsing and one function per subcommand."""

import argparse
import os
import sys
from typing import Any

from . import distributed
from .app import DEFAULT_HOST, DEFAULT_PORT, serve_app
from .bench import bench, tables
from .bench.workload import parse_model_args
from .commands.baselines import draw_pr_curves, evaluate_baseline
from .commands.browse import DEFAULT_SAMPLES, browse
from .commands.demo import run_demo
from .commands.evaluate import evaluate_checkpoint
from .commands.export import FORMATS, export_model
from .commands.loading import DEFAULT_SIZE
from .commands.predict import DEFAULT_MAX_PIXELS, predict_files
from .data.cityscapes import prepare_cityscapes
from .distributed import launched_as_main
from .engine.config_loader import load_config
from .engine.trainer import train
from .errors import DLAError
from .inference import BACKENDS
from .inference.onnx import DEFAULT_OPSET
from .model_facts import FactsCache, size_key
from .models import list_models, paper_figures
from .tasks import get_task


def cmd_models(args: argparse.Namespace) -> None:
    """Print the registered models: name, the paper's name, block, parameters, multiply-adds, and the paper's
    own figures (``dla.models.paper_figures``) next to ours at the paper's input size where the paper gives them. The counts
    come from the cache of this code version where they were counted before (``dla.model_facts``)."""
    names = list_models(args.pattern)
    if not names:
        raise DLAError(f"no model matches {args.pattern!r}; known models: {', '.join(list_models())}")
    size = (args.input_size, args.input_size)
    header = [
        "name",
        "paper name",
        "block",
        "params (M)",
        f"MACs at {size_key(size)} (G)",
        "paper params (M)",
        "paper MACs (G)",
        "MACs at the paper's size (G)",
    ]
    rows, cache = [], FactsCache()
    for name in names:
        paper = paper_figures(name)
        paper_size = paper.input_size
        facts = cache.facts(name, [size] if paper_size is None else [size, paper_size])
        rows.append(
            [
                name,
                facts.paper_name,
                facts.block,
                f"{facts.params / 1e6:.2f}",
                f"{facts.macs[size_key(size)] / 1e9:.3f}",
                "" if paper.params is None else f"{paper.params:g}",
                "" if paper.macs is None or paper_size is None else f"{paper.macs:g} at {paper_size[0]}x{paper_size[1]}",
                "" if paper_size is None else f"{facts.macs[size_key(paper_size)] / 1e9:.3f}",
            ]
        )
    cache.save()
    print(_table(header, rows, args.format))


def cmd_train(args: argparse.Namespace) -> None:
    """Train from a YAML config (``configs/``), with ``--set key=value`` overrides; ``--nproc N``: in N processes."""
    if args.nproc is not None:
        launch_processes(args)
        return
    train(load_config(args.config, args.set), resume=args.resume)


def cmd_eval(args: argparse.Namespace) -> None:
    """Score a checkpoint on a dataset split; print the per-class table, write JSON with ``--output``."""
    if args.nproc is not None:
        launch_processes(args)
        return
    result = evaluate_checkpoint(
        args.checkpoint,
        args.dataset,
        args.split,
        root=args.root,
        device=args.device,
        output=args.output,
        backend=args.backend,
        **_inference_settings(args),
    )
    if launched_as_main():  # under torchrun, every process has the scores; rank 0 prints them
        print(get_task(result["task"]).table(result, result["classes"]))


def cmd_predict(args: argparse.Namespace) -> None:
    """Write class-index masks and overlays (and probabilities), boundary maps, or the most probable classes of images,
    and summary.json."""
    written = predict_files(
        args.checkpoint,
        args.images,
        args.out,
        args.probs,
        args.device,
        args.top_k,
        backend=args.backend,
        max_pixels=args.max_pixels,
        recursive=args.recursive,
        batch_size=args.batch_size,
        progress=not args.quiet,
        **_inference_settings(args),
    )
    print(f"wrote {len(written)} files to {args.out}")


def cmd_app(args: argparse.Namespace) -> None:
    """Serve a local page to try a checkpoint in a browser (Gradio): upload an image, see the prediction."""
    serve_app(
        args.checkpoint,
        host=args.host,
        port=args.port,
        examples=args.examples,
        device=args.device,
        backend=args.backend,
        **_inference_settings(args),
    )


def cmd_export(args: argparse.Namespace) -> None:
    """Export a checkpoint or a registered model to ONNX (dynamic batch, height and width; BatchNorm folded)."""
    height, width = args.size
    written = export_model(
        args.source, args.out, fmt=args.format, input_size=(height, width), opset=args.opset, num_classes=args.num_classes
    )
    print(f"wrote {written}")


def cmd_baseline(args: argparse.Namespace) -> None:
    """Score the gradient-magnitude boundary baseline with the BSDS benchmark."""
    result = evaluate_baseline(
        args.dataset, args.split, root=args.root, sigma=args.sigma, thresholds=args.thresholds, output=args.output
    )
    print(get_task(result["task"]).table(result, []))


def cmd_pr_curve(args: argparse.Namespace) -> None:
    """Draw the precision-recall curves of several boundary results (``dla eval`` / ``dla baseline`` JSON) together."""
    print(f"wrote {draw_pr_curves(args.results, args.out)}")


def cmd_browse(args: argparse.Namespace) -> None:
    """Draw augmented training samples with their labels, as the training transform of the config makes them."""
    print(f"wrote {browse(load_config(args.config, args.set), args.split, args.n, args.out)}")


def cmd_demo(args: argparse.Namespace) -> None:
    """Train and evaluate a compact model on synthetic shapes; draw predictions and curves."""
    run_demo(args.out, args.set)


def cmd_prepare(args: argparse.Namespace) -> None:
    """Convert a dataset's labels once, ahead of training (Cityscapes: labelIds to train ids)."""
    print(f"wrote {prepare_cityscapes(args.root)} train-id label files under {args.root}")


def cmd_bench(args: argparse.Namespace) -> None:
    """Time models: latency, throughput, GFLOP/s against the machine's matmul peaks, speed-up over eager, memory."""
    model_kwargs = parse_model_args(args.model_arg)
    if args.num_classes is not None:
        model_kwargs["num_classes"] = args.num_classes
    result = bench(
        args.models,
        args.size,
        args.batch,
        backends=args.backend.split(","),
        device=args.device,
        threads=args.threads,
        model_kwargs=model_kwargs,
        repeats=args.repeats,
        memory=args.memory,
        train=args.train,
        sweep=args.sweep,
        window=args.window,
    )
    print("\n\n".join(f"{title}\n\n{_table(header, rows, args.format)}" for title, header, rows in tables(result)))
    if args.json:
        print(f"wrote {result.save(args.json)}")


def launch_processes(args: argparse.Namespace) -> None:
    """Run this very command in ``--nproc`` processes under torchrun's elastic agent (``dla.distributed.launch``)."""
    if "WORLD_SIZE" in os.environ:
        raise DLAError("--nproc starts torchrun itself; under torchrun, leave --nproc out")
    distributed.launch(args.nproc, without_option(args.argv, "--nproc"))


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == option:
            skip = True
        elif not token.startswith(option + "="):
            kept.append(token)
    return kept


def _table(header: list[str], rows: list[list[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = [header, ["---"] * len(header)] + rows
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header] + rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dla", description="Deep Layer Aggregation networks (Yu et al., CVPR 2018).")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the models with their size and cost")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'dla*x*'")
    models.add_argument("--input-size", type=int, default=224, help="square input side for multiply-adds")
    models.add_argument("--format", choices=("text", "markdown"), default="text")
    models.set_defaults(func=cmd_models)

    train_ = commands.add_parser("train", help="train a model from a YAML config")
    train_.add_argument("config", help="a YAML file, e.g. configs/camvid_dla34_2s.yaml")
    _add_overrides(train_)
    train_.add_argument("--resume", action="store_true", help="continue the run in out_dir from its last checkpoint")
    _add_nproc(train_)
    train_.set_defaults(func=cmd_train)

    evaluate = commands.add_parser("eval", help="score a checkpoint: mIoU, top-1/top-5 accuracy, or ODS/OIS/AP")
    evaluate.add_argument(
        "checkpoint", help="a dla checkpoint, a folder dla export --format hub wrote (or its hf-hub: name), or an .onnx export"
    )
    evaluate.add_argument("--dataset", help="dataset name (default: the one the checkpoint was trained on)")
    evaluate.add_argument("--root", help="dataset folder (default: the run's, or $DLA_DATA_ROOT/<dataset>)")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--out", "--output", dest="output", help="write the scores as JSON here")
    _add_nproc(evaluate)
    _add_inference_options(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    predict = commands.add_parser(
        "predict", help="class-index masks and overlays, boundary maps, or classes of images, and summary.json"
    )
    predict.add_argument("images", nargs="+", help="image files, folders of images, or glob patterns ('*.png')")
    predict.add_argument(
        "--checkpoint",
        required=True,
        help="a dla checkpoint, a folder dla export --format hub wrote (or its hf-hub: name), or an .onnx export",
    )
    predict.add_argument(
        "--out", required=True, help="output folder; outputs keep the images' paths relative to their common folder"
    )
    predict.add_argument("--recursive", action="store_true", help="a folder given: also the images of its subfolders")
    predict.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"pixel budget of whole-image inference (default {DEFAULT_MAX_PIXELS}): a larger image runs in windows "
        "(segmentation) or is refused (boundaries)",
    )
    predict.add_argument("--probs", action="store_true", help="segmentation, boundaries: also write probabilities (.npy)")
    predict.add_argument("--top-k", type=int, default=5, help="classification: how many classes to list per image")
    predict.add_argument(
        "--batch-size", type=int, default=1, metavar="N", help="run up to N consecutive images of one size together (default 1)"
    )
    predict.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    _add_inference_options(predict)
    predict.set_defaults(func=cmd_predict)

    app = commands.add_parser("app", help="a local web page to try a checkpoint: upload an image, see the prediction")
    app.add_argument(
        "--checkpoint",
        required=True,
        help="a dla checkpoint, a folder dla export --format hub wrote (or its hf-hub: name), or an .onnx export",
    )
    app.add_argument("--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST}: this machine only)")
    app.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    app.add_argument("--examples", nargs="+", default=[], help="images (files, folders, glob patterns) offered on the page")
    _add_inference_options(app)
    app.set_defaults(func=cmd_app)

    export = commands.add_parser("export", help="a checkpoint or a model to ONNX, or a checkpoint to a folder to share (hub)")
    export.add_argument("source", metavar="CHECKPOINT_OR_MODEL", help="a dla checkpoint file, or a model name (dla models)")
    export.add_argument("--format", choices=FORMATS, default="onnx")
    export.add_argument("--out", required=True, help="the file (onnx: model.onnx) or folder (hub) to write")
    export.add_argument("--size", type=int, nargs=2, default=DEFAULT_SIZE, metavar=("H", "W"), help="example size traced")
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    export.add_argument("--num-classes", type=int, help="model name only: its number of classes")
    export.set_defaults(func=cmd_export)

    baseline = commands.add_parser("baseline", help="score the gradient-magnitude boundary baseline (ODS/OIS/AP)")
    baseline.add_argument("--dataset", default="bsds500", help="a boundary dataset (bsds500, boundary_folder)")
    baseline.add_argument("--root", help="dataset folder (default: $DLA_DATA_ROOT/<dataset>)")
    baseline.add_argument("--split", default="val")
    baseline.add_argument("--sigma", type=float, default=1.0, help="Gaussian smoothing of the gradient, in pixels")
    baseline.add_argument("--thresholds", type=int, default=99, help="thresholds of the benchmark")
    baseline.add_argument("--out", "--output", dest="output", help="write the scores as JSON here (and the PR curve beside it)")
    baseline.set_defaults(func=cmd_baseline)

    pr_curve = commands.add_parser("pr-curve", help="draw boundary results' precision-recall curves together (Fig. 7)")
    pr_curve.add_argument("results", nargs="+", help="JSON files written by dla eval --output or dla baseline --output")
    pr_curve.add_argument("--out", required=True, help="the PNG to write")
    pr_curve.set_defaults(func=cmd_pr_curve)

    browse_ = commands.add_parser("browse", help="draw augmented training samples with their labels, before training")
    browse_.add_argument("config", help="a YAML file, e.g. configs/camvid_cpu.yaml")
    _add_overrides(browse_)
    browse_.add_argument("--split", help="the split to draw (default: the config's data.train_split)")
    browse_.add_argument("--n", type=int, default=DEFAULT_SAMPLES, help=f"how many samples (default {DEFAULT_SAMPLES})")
    browse_.add_argument("--out", help="the PNG to write (default: browse_<dataset>_<split>.png)")
    browse_.set_defaults(func=cmd_browse)

    demo = commands.add_parser("demo", help="train and evaluate a compact model on synthetic shapes (CPU, minutes)")
    demo.add_argument("--out", default="runs/demo", help="run directory (a finished demo is not retrained)")
    _add_overrides(demo)
    demo.set_defaults(func=cmd_demo)

    bench_ = commands.add_parser("bench", help="time models: latency, throughput, distance to the matmul peak, memory")
    bench_.add_argument("models", nargs="+", help="registered model names, e.g. dla34 dla34up")
    bench_.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"), help="input height and width")
    bench_.add_argument("--batch", type=int, default=1, help="batch of the throughput (and memory, training) runs")
    bench_.add_argument("--threads", type=int, help="CPU threads (default: the cores available)")
    bench_.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    bench_.add_argument("--backend", default="eager,fast", help="comma-separated, from dla.inference.BACKENDS; eager always runs")
    bench_.add_argument("--num-classes", type=int, help="the model's classes (default: its own)")
    bench_.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="e.g. backbone=dla46_c")
    bench_.add_argument("--repeats", type=int, default=20, help="timed runs per backend, after 3 warm-up runs")
    bench_.add_argument("--no-memory", dest="memory", action="store_false", help="skip peak memory (a child process each)")
    bench_.add_argument("--train", action="store_true", help="also time training steps, eager vs fast, and their memory")
    bench_.add_argument("--sweep", action="store_true", help="also latency and memory from 256x256 to 1024x2048, batch 1, 2, 4")
    bench_.add_argument(
        "--window", type=int, nargs=2, metavar=("H", "W"), help="dense models: tiled inference on overlapping windows"
    )
    bench_.add_argument("--json", help="write every number, the samples and the machine here")
    bench_.add_argument("--format", choices=("text", "markdown"), default="text")
    bench_.set_defaults(func=cmd_bench)

    prepare = commands.add_parser("prepare", help="convert Cityscapes labelIds to train ids once")
    prepare.add_argument("dataset", choices=("cityscapes",))
    prepare.add_argument("root", help="the dataset folder (with gtFine/)")
    prepare.set_defaults(func=cmd_prepare)
    return parser


def _add_nproc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nproc",
        type=int,
        help="run in N processes on this machine (torchrun's elastic agent; one per GPU, or CPU processes with Gloo)",
    )


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=0.02"
    )


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Test-time options; each one not given keeps the run's own ``eval`` setting."""
    parser.add_argument("--scales", type=float, nargs="+", help="segmentation: e.g. 0.5 0.75 1 1.25 1.5 (summed)")
    parser.add_argument("--flip", action="store_true", default=None, help="segmentation: also predict the mirrored image")
    parser.add_argument("--window", type=int, nargs=2, metavar=("H", "W"), help="segmentation: sliding-window inference")
    parser.add_argument(
        "--output-stride",
        type=int,
        choices=(8, 16, 32),
        help="segmentation: run the model at this output stride (DeepLabv3: trained at 16, evaluated at 8)",
    )
    parser.add_argument("--ten-crop", action="store_true", default=None, help="classification: average 10 crops")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--backend", choices=tuple(BACKENDS), help="what runs the model (default: eager; onnxruntime for an .onnx file)"
    )


def _inference_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``eval`` keys given on the command line (``--scales`` ... ``--ten-crop``)."""
    given = {
        "scales": args.scales,
        "flip": args.flip,
        "window": args.window,
        "output_stride": args.output_stride,
        "ten_crop": args.ten_crop,
    }
    return {key: value for key, value in given.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args.func(args)
    except DLAError as e:
        print(f"dla: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dla: interrupted", file=sys.stderr)
        return 130
    return 0
