"""Training and evaluation. ``train(cfg)`` reads top to bottom as the recipe it runs.

Design choices (the "why" a reader may ask about):

- **Reproducible data.** The order of an epoch and the random augmentation of every sample are drawn
  from ``(seed, epoch)`` alone (``SeededOrder``, ``SeededItems``): each item is loaded with Python's,
  NumPy's and torch's global generators seeded for it. So the same config gives the same batches
  whatever ``data.workers`` is, and a run can restart at any iteration and see the batches it would
  have seen. The global generators of the training process, which the model may use (dropout), are
  saved in checkpoints and restored on resume.
- **Exact resume.** A checkpoint holds the model, optimizer, scheduler, scaler, generator states and
  the iteration count. ``last.pt`` is written after every epoch; resuming from it continues the very
  same loss curve (bit for bit on the CPU; on CUDA up to the non-determinism of its kernels, see
  ``deterministic``). Only the settings in ``RESUMABLE_CHANGES`` may differ on resume (train longer,
  evaluate more often, data moved); anything else is refused.
- **Ctrl-C** saves ``last.pt`` at the current iteration and re-raises ``KeyboardInterrupt``. An iteration
  is never cut in half (the interrupt waits for the running one to finish), so that checkpoint is
  consistent; resuming from it finishes the interrupted epoch with exactly the batches of its order
  that were left, then goes on as if never stopped. An evaluation cut short is not redone.
- **Failing early.** Everything that can be checked (config, out_dir, datasets, model name, class
  weights, device) is checked before the first iteration; a non-finite loss stops training with a
  ``DLAError`` and never overwrites ``last.pt``, which keeps the last good weights.
"""

import contextlib
import json
import math
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from ..data import build_dataset
from ..errors import DLAError
from ..tasks.curves import plot_curves
from .checkpoint import load_checkpoint, model_from_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import config_differences, lookup, resolve_data_root, with_eval_settings
from .rundir import MetricsLogger, RunDir, code_version
from .schedules import build_scheduler, total_iterations
from .tasks import get_task

# Config keys a resumed run may change (prefixes): how long it trains, how often it evaluates and logs,
# where its data and folder are, how many loader processes and which device it uses.
RESUMABLE_CHANGES = (
    "optim.epochs", "optim.max_iterations", "eval.", "log.", "data.root", "data.workers", "device", "deterministic", "out_dir",
)


def train(
    cfg: Dict[str, Any], resume: bool = False, datasets: Optional[Tuple[Dataset, Dataset]] = None
) -> Dict[str, Any]:
    """Train ``cfg['model']`` on ``cfg['data']`` with ``cfg['optim']`` for ``cfg['task']``; return the last
    validation metrics.

    Args:
        cfg: a configuration from ``load_config``.
        resume: continue the run in ``cfg['out_dir']`` from its ``checkpoints/last.pt``.
        datasets: ``(train, val)`` datasets to use instead of those ``cfg['data']`` names (a seam for
            tests and notebooks): each has ``meta`` and gives ``(image tensor, target)`` pairs
            (segmentation: ``float32 3xHxW, int64 HxW``; classification: ``float32 3xHxW, int``), the
            training one already augmented.

    Returns:
        the task's scores of the last evaluation: ``miou``, ``iou``, ... (segmentation); ``top1``,
        ``accuracy``, ... (classification).
    """
    # The run directory: a new one, or the run to continue. Nothing is written before training can start.
    run = RunDir(Path(cfg["out_dir"]))
    resume_path = run.resume_from(resume)
    checkpoint = load_checkpoint(resume_path) if resume_path is not None else None
    if checkpoint is not None:
        check_resumable(checkpoint["config"], cfg, resume_path)

    # Seeds first, so that the model's initialisation is reproducible too.
    seed_everything(cfg["seed"], cfg["deterministic"])
    device = select_device(cfg["device"])
    task = get_task(cfg["task"])

    # Data.
    train_set, val_set = datasets if datasets is not None else build_datasets(cfg, task)
    meta = train_set.meta
    loader, order = make_train_loader(train_set, cfg, device)
    iterations_per_epoch = len(loader)
    total = total_iterations(cfg, iterations_per_epoch)
    batch_size = cfg["data"]["batch_size"]

    # Model, optimizer, schedule, mixed precision, loss weights.
    model_name = cfg["model"]["name"]
    backbone_weights = cfg["model"]["pretrained_backbone"] if checkpoint is None else None  # resume: in the checkpoint
    model, model_kwargs = task.create_model(cfg, meta, backbone_weights)
    model.to(device)
    optim = cfg["optim"]
    optimizer = build_optimizer(parameter_groups(model, task, optim["lr"], optim["backbone_lr_factor"]), optim)
    scheduler = build_scheduler(optimizer, cfg, iterations_per_epoch)
    amp_dtype = autocast_dtype(optim["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    class_weights = loss_weights(optim["class_weights"], meta, device)

    # Where the run stands: at the start, or where the checkpoint left it.
    iteration, best_score = 0, -1.0
    if checkpoint is not None:
        if checkpoint["iterations_per_epoch"] != iterations_per_epoch:
            raise DLAError(
                f"cannot resume {resume_path}: an epoch had {checkpoint['iterations_per_epoch']} iterations and now has "
                f"{iterations_per_epoch} (the training set or batch size changed); start a new out_dir"
            )
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler.is_enabled():
            scaler.load_state_dict(checkpoint["scaler"])
        set_rng_state(checkpoint["rng"])
        iteration, best_score = checkpoint["iteration"], checkpoint["best_score"]

    version = code_version()

    def validate() -> Dict[str, Any]:
        return task.evaluate(model, val_set, cfg, device)

    def save(path: Path) -> None:
        """Write the whole state of the run to ``path``, refusing weights that are no longer finite."""
        if not all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()):
            raise non_finite_error(f"the weights became NaN or infinite by iteration {iteration}", run)
        state = {
            "model": model.state_dict(),
            "model_name": model_name,
            "model_kwargs": model_kwargs,
            "task": cfg["task"],
            "dataset_meta": meta.to_dict(),
            "config": cfg,
            "epoch": iteration // iterations_per_epoch,
            "iteration": iteration,
            "iterations_per_epoch": iterations_per_epoch,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "best_score": best_score,
            "code_version": version,
        }
        if scaler.is_enabled():
            state["scaler"] = scaler.state_dict()
        save_checkpoint(path, state)

    run.create(cfg)
    logger = MetricsLogger(run.root, cfg["log"]["tensorboard"], start_iteration=iteration)
    print(
        f"dla: training {model_name} on {meta.name} ({len(train_set)} training images, {meta.num_classes} classes) on {device}: "
        f"{iterations_per_epoch} iterations per epoch, {total} in all, from iteration {iteration}; run directory {run.root}"
    )

    metrics: Dict[str, Any] = {}
    progress = tqdm(total=total, initial=iteration, unit="it", dynamic_ncols=True)
    loss_sum, loss_count = 0.0, 0
    try:
        for epoch in range(iteration // iterations_per_epoch, math.ceil(total / iterations_per_epoch)):
            if iteration == total:  # a finished run, stopped by optim.max_iterations within this epoch
                break
            # Resuming mid-epoch (after Ctrl-C) skips the batches of this epoch's order already trained on.
            order.set_epoch(epoch, skip=(iteration - epoch * iterations_per_epoch) * batch_size)
            model.train()
            for images, labels in loader:
                # One iteration, logged. Ctrl-C takes effect between iterations, never inside one (the forward
                # pass already changes BatchNorm statistics), so that the checkpoint it saves is consistent.
                with interrupts_deferred():
                    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        loss = weighted_loss(task, model(images), labels, meta, class_weights, optim["aux_weight"])
                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        raise non_finite_error(f"the loss is {loss_value} at iteration {iteration + 1} (epoch {epoch + 1})", run)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if optim["grad_clip"] is not None:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), optim["grad_clip"])
                    lr = optimizer.param_groups[0]["lr"]
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    iteration += 1

                    progress.update()
                    loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
                    if iteration % cfg["log"]["every_iterations"] == 0:
                        logger.log({"epoch": epoch + 1, "iteration": iteration, "loss": loss_sum / loss_count, "lr": lr})
                        progress.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / loss_count:.4f}", lr=f"{lr:.2e}")
                        loss_sum, loss_count = 0.0, 0
                if iteration == total:
                    break

            # End of an epoch: evaluate now and then, keep the best, always save the last.
            finished = iteration == total
            if (epoch + 1) % cfg["eval"]["every_epochs"] == 0 or finished:
                metrics = validate()
                at = {"epoch": epoch + 1, "iteration": iteration}
                write_json(run.eval / f"epoch_{epoch + 1}.json", {**at, "classes": list(meta.classes), **metrics})
                logger.log({**at, **{f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)}})  # the scalars
                for name, picture in task.draw(metrics, meta.classes).items():
                    picture.save(run.plots / f"{name}.png")
                plot_curves(run.root / "metrics.jsonl", run.plots / "curves.png", task.score)
                tqdm.write(f"epoch {epoch + 1}: {task.summary(metrics)} (best {max(best_score, metrics[task.score]):.4f})")
                if metrics[task.score] > best_score:
                    best_score = metrics[task.score]
                    save(run.best)
            save(run.last)
    except KeyboardInterrupt:
        save(run.last)
        tqdm.write(f"dla: interrupted at iteration {iteration}; saved {run.last}. Run again with --resume to continue.")
        raise
    finally:
        progress.close()
        logger.close()

    if not metrics:  # the run had already finished: nothing trained, so score what there is
        metrics = validate()
    return metrics


def evaluate_checkpoint(
    checkpoint: str,
    dataset: Optional[str] = None,
    split: str = "val",
    *,
    root: Optional[str] = None,
    options: Optional[Dict[str, Any]] = None,
    device: str = "auto",
    workers: int = 2,
    output: Optional[str] = None,
    **settings: Any,
) -> Dict[str, Any]:
    """Evaluate a checkpoint on a dataset split (the ``dla eval`` command); return and optionally save the scores.

    The model, its normalisation and its evaluation transform come from the checkpoint alone. ``dataset``
    defaults to the one the checkpoint was trained on, with that run's ``data.root`` and ``data.options``
    unless ``root`` / ``options`` are given; another dataset takes ``root`` or ``$DLA_DATA_ROOT/<dataset>``.
    ``settings`` replace the run's ``eval`` keys: ``scales``, ``flip``, ``window``, ``output_stride`` (segmentation) or
    ``ten_crop`` (classification); a key of the other task is an error.

    Returns:
        the task's scores plus ``checkpoint``, ``dataset``, ``split``, ``classes`` and the ``eval`` settings
        used; written as JSON to ``output`` when given, with the confusion matrix drawn next to it
        (``<output stem>_confusion.png``, or ``_pr_curve.png`` for boundaries).
    """
    state = load_checkpoint(checkpoint)
    model, meta = model_from_checkpoint(state)
    cfg = with_eval_settings(state["config"], settings)
    task = get_task(cfg["task"])
    trained_on = cfg["data"]
    dataset = dataset or trained_on["dataset"]
    if dataset == trained_on["dataset"]:  # the run's own data, unless told otherwise
        root = root if root is not None else trained_on["root"]
        options = options if options is not None else trained_on["options"]
    root = resolve_data_root(dataset, root)
    data = build_dataset(dataset, root, split, transform=task.eval_transform(cfg, meta), **(options or {}))
    check_dataset_task(data, task.name, dataset)
    if data.meta.num_classes != meta.num_classes:
        raise DLAError(
            f"{checkpoint} predicts {meta.num_classes} classes ({meta.name}) but {dataset} has {data.meta.num_classes}; "
            "evaluate it on a dataset with the same classes"
        )
    device = select_device(device)
    cfg["data"] = {**cfg["data"], "workers": workers}
    scores = task.evaluate(model.to(device), data, cfg, device)
    result = {
        "checkpoint": str(checkpoint), "model": state["model_name"], "task": task.name, "dataset": dataset, "split": split,
        "classes": list(meta.classes),
        "eval": {key: value for key, value in cfg["eval"].items() if key != "every_epochs"}, **scores,
    }
    if output is not None:
        write_result(Path(output), result, task.draw(result, meta.classes))
    return result


# --- the steps of `train`, in the order it takes them ------------------------------------------------------


def check_resumable(saved: Dict[str, Any], cfg: Dict[str, Any], path: Path) -> None:
    """Refuse to resume with settings that would make a different run than the one saved at ``path``."""
    changed = [key for key in config_differences(saved, cfg) if not key.startswith(RESUMABLE_CHANGES)]
    if changed:
        details = "; ".join(f"{key}: {lookup(saved, key)!r} in the run, {lookup(cfg, key)!r} now" for key in changed)
        raise DLAError(
            f"cannot resume {path} with a different config ({details}). Resume with the run's own "
            f"config ({path.parent.parent / 'config.yaml'}) or train into a new out_dir."
        )


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's generators; choose deterministic or fast algorithms.

    ``deterministic`` turns on ``torch.use_deterministic_algorithms`` (warning, not failing, for operations
    that have no deterministic version, such as bilinear upsampling's backward on CUDA) and cuDNN's
    deterministic mode; otherwise cuDNN benchmarks kernels for speed.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def select_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DLAError("device is cuda but no CUDA device is available; set device: cpu (or auto)")
    return torch.device(name)


def build_datasets(cfg: Dict[str, Any], task: Any) -> Tuple[Dataset, Dataset]:
    """The training split with the task's augmentation of ``cfg['data']``, the validation split with its
    evaluation transform (segmentation: whole images; classification: resize and centre crop)."""
    data = cfg["data"]
    train_set = build_dataset(data["dataset"], data["root"], data["train_split"], **data["options"])
    check_dataset_task(train_set, task.name, data["dataset"])
    val_set = build_dataset(data["dataset"], data["root"], data["val_split"], **data["options"])
    meta = train_set.meta  # both splits are normalised as the model will be trained
    train_set.transform = task.train_transform(cfg, meta)
    val_set.transform = task.eval_transform(cfg, meta)
    return train_set, val_set


def check_dataset_task(dataset: Dataset, task: str, name: str) -> None:
    """Refuse a dataset made for another task (a segmentation set for classification, ...)."""
    if dataset.task != task:
        raise DLAError(f"dataset {name!r} is a {dataset.task} dataset but the task is {task}; set data.dataset to a {task} dataset")


def parameter_groups(model: nn.Module, task: Any, lr: float, backbone_lr_factor: float) -> List[Dict[str, Any]]:
    """The model's parameters for the optimizer: one group, or, when ``backbone_lr_factor`` is not 1, the new
    layers at ``lr`` (first, so that the logged lr is theirs) and the task's backbone at ``lr * backbone_lr_factor``.
    """
    if backbone_lr_factor == 1.0:
        return [{"params": list(model.parameters()), "lr": lr}]
    backbone = {id(p): p for p in task.backbone(model)}
    rest = [p for p in model.parameters() if id(p) not in backbone]
    return [{"params": rest, "lr": lr}, {"params": list(backbone.values()), "lr": lr * backbone_lr_factor}]


def build_optimizer(groups: List[Dict[str, Any]], optim: Dict[str, Any]) -> torch.optim.Optimizer:
    """SGD with momentum, or Adam (the Ladder DenseNet recipe), with ``optim.weight_decay``."""
    if optim["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=optim["lr"], weight_decay=optim["weight_decay"])
    return torch.optim.SGD(groups, lr=optim["lr"], momentum=optim["momentum"], weight_decay=optim["weight_decay"])


def weighted_loss(task: Any, outputs: Union[Tensor, Tuple[Tensor, Tensor]], targets: Tensor, meta: Any,
                  class_weights: Optional[Tensor], aux_weight: float) -> Tensor:
    """The task's loss of the model's outputs; a model that returns ``(logits, aux_logits)`` in training (Ladder
    DenseNet's context-layer logits) is scored ``(1 - aux_weight) x main + aux_weight x auxiliary``."""
    if isinstance(outputs, tuple):
        main, aux = outputs
        return (1 - aux_weight) * task.loss(main, targets, meta, class_weights) + aux_weight * task.loss(
            aux, targets, meta, class_weights)
    return task.loss(outputs, targets, meta, class_weights)


def make_train_loader(dataset: Dataset, cfg: Dict[str, Any], device: torch.device) -> Tuple[DataLoader, "SeededOrder"]:
    """Shuffled batches in the order of ``SeededOrder``; the last partial batch is dropped when there are
    several batches (BatchNorm dislikes a batch of one), kept when the whole set fits in one batch."""
    batch_size = cfg["data"]["batch_size"]
    if len(dataset) == 0:
        raise DLAError(f"the training set ({cfg['data']['dataset']}, split {cfg['data']['train_split']}) is empty")
    order = SeededOrder(len(dataset), cfg["seed"])
    loader = DataLoader(
        SeededItems(dataset),
        batch_size=batch_size,
        sampler=order,
        num_workers=cfg["data"]["workers"],
        drop_last=len(dataset) > batch_size,
        pin_memory=device.type == "cuda",
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(cfg["seed"]),
    )
    return loader, order


def autocast_dtype(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of ``optim.amp`` (None: full precision). fp16 needs CUDA (and a GradScaler)."""
    if amp == "fp16" and device.type != "cuda":
        raise DLAError(f"optim.amp: fp16 needs a CUDA device, the device is {device}; use bf16 or none")
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def loss_weights(weights: Optional[Sequence[float]], meta: Any, device: torch.device) -> Optional[torch.Tensor]:
    """``optim.class_weights`` as a tensor, checked against the dataset's classes."""
    if weights is None:
        return None
    if len(weights) != meta.num_classes:
        raise DLAError(
            f"optim.class_weights has {len(weights)} values but {meta.name} has {meta.num_classes} classes "
            f"({', '.join(meta.classes)}); give one weight per class"
        )
    return torch.tensor(weights, dtype=torch.float32, device=device)


def non_finite_error(what: str, run: RunDir) -> DLAError:
    """The error that stops a run whose loss or weights are NaN or infinite (no checkpoint is written after it)."""
    kept = f"{run.last} keeps the last good weights" if run.last.exists() else "no checkpoint had been written yet"
    return DLAError(
        f"{what}; training stopped and {kept}. Lower optim.lr, set optim.grad_clip, or check the labels and optim.class_weights."
    )


def write_result(path: Path, result: Dict[str, Any], pictures: Dict[str, Any]) -> None:
    """Scores as JSON at ``path``, and each of their ``pictures`` (name: PIL image) beside it as
    ``<path stem>_<name>.png``."""
    write_json(path, result)
    for name, picture in pictures.items():
        picture.save(path.with_name(f"{path.stem}_{name}.png"))


def write_json(path: Path, data: Dict[str, Any]) -> None:
    """``data`` as indented JSON; NaN scores (classes absent from the split) become null, as JSON has no NaN."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_nan_to_none(data), indent=2) + "\n")


# --- reproducible data ---------------------------------------------------------------------------------------


class SeededOrder(Sampler):
    """The order of an epoch's samples, each with the seed of its augmentation; both from ``(seed, epoch)``.

    Yields ``(index, item_seed)`` pairs, which ``SeededItems`` understands. ``set_epoch(epoch, skip)``
    selects the epoch and leaves out its first ``skip`` samples (to resume mid-epoch).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch, self.skip = size, seed, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch_seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(epoch_seed)
        indices = torch.randperm(self.size, generator=generator).tolist()
        item_seeds = torch.randint(2**31, (self.size,), generator=generator).tolist()
        return iter(list(zip(indices, item_seeds))[self.skip :])

    def __len__(self) -> int:
        return self.size - self.skip


class SeededItems(Dataset):
    """``dataset[index]`` computed with Python's, NumPy's and torch's global generators seeded by ``item_seed``
    (and restored afterwards), so that random augmentation depends on the seed alone: not on the worker
    process, on what was loaded before, or on the training process's own use of the generators."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Tuple[int, int]) -> Any:
        index, item_seed = key
        with _seeded_generators(item_seed):
            return self.dataset[index]


@contextlib.contextmanager
def _seeded_generators(seed: int) -> Iterator[None]:
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def seed_worker(worker_id: int) -> None:
    """Seed a loader process's NumPy and Python generators from its torch seed (itself from the loader's
    generator), for any randomness outside ``SeededItems`` (e.g. in a collate function)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# --- small helpers -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until the block has finished, then raise it.

    Only in the main thread (where Python delivers signals); elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
        previous(signal.SIGINT, received[0])  # Python's default handler raises KeyboardInterrupt


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
