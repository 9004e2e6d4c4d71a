"""Training: ``train(cfg)`` reads top to bottom as the recipe it runs, the step included.

Design choices (the "why" a reader may ask about):

- **One loop, any task.** Everything task-specific (transforms, model, loss, evaluation, pictures, the score
  that picks ``best.pt``) comes from the ``Task`` of ``cfg.task`` (``dla.tasks``); this file names none.
- **Reproducible data.** The order of an epoch and the augmentation of every sample are drawn from
  ``(seed, epoch)`` alone (``sampling.py``), so a run can restart at any iteration and see the batches it would
  have seen. The global generators, which the model may use (dropout), are saved in checkpoints.
- **Exact resume.** A checkpoint holds the model, optimizer, scheduler, scaler, generator states and the
  iteration count. ``last.pt`` is written after every epoch, before its evaluation; resuming from it continues the very same loss
  curve (bit for bit on the CPU; on CUDA up to its kernels' non-determinism, see ``deterministic``). Only the
  settings in ``config.RESUMABLE_CHANGES`` may differ on resume; anything else is refused.
- **Ctrl-C and SIGTERM** save ``last.pt`` at the current iteration and raise ``KeyboardInterrupt``. An
  iteration is never cut in half (``signals.StopSignals``), so that checkpoint is consistent; resuming finishes
  the interrupted epoch with exactly the batches of its order that were left.
- **Several processes** (torchrun, ``dla.distributed``): ``data.batch_size`` is the global batch, which every
  process takes its share of (``optim.accumulate`` micro-batches each); DistributedDataParallel averages the
  gradients, BatchNorm is synchronised with ``model.sync_bn``, evaluation is sharded and its counts summed.
  Only rank 0 writes. The checkpoint is the same whatever the number of processes, so a run may resume
  with another number, as long as the global batch stays.
- **Failing early.** Everything that can be checked (config, out_dir, datasets, model name, class weights,
  device) is checked before the first iteration; a non-finite loss stops training with a ``DLAError`` and
  never overwrites ``last.pt``, which keeps the last good weights.
- **Auxiliary outputs.** A model whose training ``forward`` returns ``dla.models.AuxOutput`` (the Ladder
  DenseNet) is scored ``(1 - optim.aux_weight) x main + optim.aux_weight x auxiliary``.
"""

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .. import distributed
from ..config import Config, OptimConfig, required
from ..data import TaskDataset
from ..data.meta import DatasetMeta
from ..distributed import Processes
from ..errors import DLAError
from ..layers import convert_sync_batchnorm
from ..models import AuxOutput
from ..tasks import Criterion, Task, plot_curves
from .checkpoint import load_checkpoint, load_weights, rng_state, run_config, save_checkpoint, set_rng_state
from .class_weights import describe_weighting, run_class_weights
from .config_loader import check_resumable, task_of
from .datasets import build_datasets
from .optimizer import build_optimizer, learning_rate, parameter_groups
from .results import write_json
from .rundir import MetricsLogger, RunDir, code_version
from .runtime import autocast_dtype, seed_everything, select_device
from .sampling import SeededItems, make_train_loader
from .schedules import build_scheduler, total_iterations
from .signals import StopSignals


def train(cfg: Config, resume: bool = False, datasets: tuple[TaskDataset, TaskDataset] | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` with ``cfg.optim`` for ``cfg.task``; return the last validation scores.

    Under torchrun every process calls this; they train one model together (``dla.distributed``).

    Args:
        cfg: a configuration from ``load_config``.
        resume: continue the run in ``cfg.out_dir`` from its ``checkpoints/last.pt``.
        datasets: ``(train, val)`` datasets to use instead of those ``cfg.data`` names (a seam for tests and
            notebooks): each has ``meta`` and gives ``(image tensor, target)`` pairs, the training one augmented.

    Returns:
        the task's scores of the last evaluation: ``miou``, ``iou``, ... (segmentation); ``top1``, ... (classification).
    """
    with distributed.process_group(select_device(cfg.device)) as (processes, device), StopSignals() as signals:
        with RunDir(Path(required(cfg.out_dir, "out_dir"))).locked(enabled=processes.main):  # one run per out_dir
            return _train(cfg, resume, datasets, processes, device, signals)


def _train(
    cfg: Config,
    resume: bool,
    datasets: tuple[TaskDataset, TaskDataset] | None,
    processes: Processes,
    device: torch.device,
    signals: StopSignals,
) -> dict[str, Any]:
    # The run directory: a new one, or the run to continue. Nothing is written before training can start.
    run = RunDir(Path(required(cfg.out_dir, "out_dir")))
    resume_path = run.resume_from(resume)
    checkpoint = None
    if resume_path is not None:
        checkpoint = load_checkpoint(resume_path)
        check_global_batch(checkpoint, cfg.data.batch_size, resume_path)
        check_resumable(run_config(checkpoint, resume_path), cfg, resume_path)

    # Seeds first, so that the model's initialisation is reproducible (and the same in every process).
    seed_everything(cfg.seed, cfg.deterministic)
    task = task_of(cfg)

    # Data: data.batch_size is the global batch of an iteration, cut into processes x optim.accumulate shares.
    train_set, val_set = datasets if datasets is not None else build_datasets(cfg, task)
    meta = train_set.meta
    loader, batches = make_train_loader(train_set, cfg, device, processes)
    iterations_per_epoch = batches.iterations
    total = total_iterations(cfg, iterations_per_epoch)

    # Model, optimizer, schedule, mixed precision, loss weights.
    optim = cfg.optim
    backbone_weights = cfg.model.pretrained_backbone if checkpoint is None else None  # resume: in the checkpoint
    model, model_kwargs = task.build_model(cfg, meta, backbone_weights)
    check_input_channels(model, train_set, cfg)
    model.to(device)
    lr = learning_rate(optim, cfg.data.batch_size)
    optimizer = build_optimizer(parameter_groups(model, task, lr, optim.backbone_lr_factor), optim)
    scheduler = build_scheduler(optimizer, cfg, iterations_per_epoch)
    amp_dtype = autocast_dtype(optim.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    # Class weights as listed, or computed once from the training labels (optim.class_weights: median_freq,
    # inverse_log) and kept in the run: a resumed run reads them back from its checkpoint.
    class_weights, weighting = run_class_weights(optim.class_weights, train_set, checkpoint)
    criterion = task.criterion(cfg, meta, loss_weights(class_weights, meta, device))

    # Where the run stands: at the start, or where the checkpoint left it (with any number of processes).
    iteration, best_score = 0, -1.0
    if checkpoint is not None:
        if checkpoint["iterations_per_epoch"] != iterations_per_epoch:
            raise DLAError(
                f"cannot resume {resume_path}: an epoch had {checkpoint['iterations_per_epoch']} iterations and now has "
                f"{iterations_per_epoch} (the training set or batch size changed); start a new out_dir"
            )
        load_weights(model, checkpoint["model"], str(resume_path))
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler.is_enabled():
            scaler.load_state_dict(checkpoint["scaler"])
        set_rng_state(checkpoint["rng"])
        iteration, best_score = checkpoint["iteration"], checkpoint["best_score"]

    # Several processes: BatchNorm over all of them (model.sync_bn), gradients averaged by DDP.
    model, net = distribute(model, processes, device, required(cfg.model.sync_bn, "model.sync_bn"))
    version = code_version()

    def save(path: Path) -> None:
        """Write the whole state of the run to ``path`` (rank 0), refusing weights that are no longer finite."""
        if not all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()):
            raise non_finite_error(f"the weights became NaN or infinite by iteration {iteration}", run)
        if not processes.main:
            return
        state = {
            "model": model.state_dict(),
            "model_name": cfg.model.name,
            "model_kwargs": model_kwargs,
            "task": task.name,
            "dataset_meta": meta.to_dict(),
            "config": cfg.to_dict(),
            "epoch": iteration // iterations_per_epoch,
            "iteration": iteration,
            "iterations_per_epoch": iterations_per_epoch,
            "global_batch": cfg.data.batch_size,
            "processes": processes.world_size,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "best_score": best_score,
            "code_version": version,
        }
        if weighting is not None:
            state["class_weights"] = weighting
        if scaler.is_enabled():
            state["scaler"] = scaler.state_dict()
        save_checkpoint(path, state)

    # Only rank 0 writes: the run directory, logs, pictures and checkpoints; the others only compute.
    distributed.wait_for_all()  # every process has checked out_dir before rank 0 fills it
    logger = None
    if processes.main:
        run.create(cfg)
        logger = MetricsLogger(run.root, cfg.log.tensorboard, start_iteration=iteration)
        if weighting is not None:
            write_json(run.root / "class_weights.json", weighting)
            print(f"dla: {describe_weighting(weighting)}")
        print(
            f"dla: training {cfg.model.name} on {meta.name} ({len(train_set)} training images, {meta.num_classes} classes) "
            f"on {device}: {iterations_per_epoch} iterations per epoch, {total} in all, from iteration {iteration}; "
            f"{describe_batch(cfg.data.batch_size, optim.accumulate, processes.world_size)}; lr {lr:g}; "
            f"run directory {run.root}"
        )

    scores: dict[str, Any] = {}
    progress = tqdm(total=total, initial=iteration, unit="it", dynamic_ncols=True, disable=not processes.main)
    loss_sum, loss_count = 0.0, 0
    try:
        for epoch in range(iteration // iterations_per_epoch, math.ceil(total / iterations_per_epoch)):
            if iteration == total:  # a finished run, stopped by optim.max_iterations within this epoch
                break
            # Resuming mid-epoch (after Ctrl-C) skips the iterations of this epoch's order already trained.
            batches.set_epoch(epoch, skip=iteration - epoch * iterations_per_epoch)
            net.train()
            # A signal (Ctrl-C, SIGTERM) takes effect between iterations, never inside one (the forward pass
            # already changes BatchNorm statistics), and on every process after the same iteration.
            with signals.deferred():
                for micro_batches in groups_of(loader, optim.accumulate):
                    optimizer.zero_grad(set_to_none=True)
                    loss = accumulate_gradients(net, micro_batches, criterion, optim, amp_dtype, scaler, device)
                    loss_value, stopping = agree(loss, signals.requested, processes)
                    if not math.isfinite(loss_value):
                        raise non_finite_error(f"the loss is {loss_value} at iteration {iteration + 1} (epoch {epoch + 1})", run)
                    lr = optimizer.param_groups[0]["lr"]
                    apply_gradients(model, optimizer, scaler, optim.grad_clip)
                    scheduler.step()
                    iteration += 1

                    progress.update()
                    loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
                    if iteration % cfg.log.every_iterations == 0:
                        log_loss(logger, progress, epoch + 1, iteration, loss_sum / loss_count, lr)
                        loss_sum, loss_count = 0.0, 0
                    if stopping:
                        raise KeyboardInterrupt
                    if iteration == total:
                        break

            # End of an epoch: save the last, then evaluate now and then (each process scores its share of the
            # images, and the counts are summed), and keep the best (last.pt then records the new best score).
            save(run.last)
            if (epoch + 1) % cfg.eval.every_epochs == 0 or iteration == total:
                if loss_count:  # the iterations since the last record, so that the curves drawn next reach this one
                    log_loss(logger, progress, epoch + 1, iteration, loss_sum / loss_count, lr)
                    loss_sum, loss_count = 0.0, 0
                scores = task.evaluate(model, val_set, cfg, device)
                if logger is not None:
                    report_evaluation(run, logger, task, meta, scores, epoch + 1, iteration, max(best_score, scores[task.score]))
                if scores[task.score] > best_score:
                    best_score = scores[task.score]
                    save(run.best)
                    save(run.last)
    except KeyboardInterrupt:
        save(run.last)
        if processes.main:
            tqdm.write(f"dla: interrupted at iteration {iteration}; saved {run.last}. Run again with --resume to continue.")
        raise
    finally:
        progress.close()
        if logger is not None:
            logger.close()

    if not scores:  # the run had already finished: nothing trained, so score what there is
        scores = task.evaluate(model, val_set, cfg, device)
    return scores


def log_loss(logger: MetricsLogger | None, progress: tqdm, epoch: int, iteration: int, loss: float, lr: float) -> None:
    """A training record (the mean loss since the last one, and the lr) in the log (rank 0) and the progress bar."""
    if logger is not None:
        logger.log({"epoch": epoch, "iteration": iteration, "loss": loss, "lr": lr})
    progress.set_postfix(epoch=epoch, loss=f"{loss:.4f}", lr=f"{lr:.2e}")


def accumulate_gradients(
    net: nn.Module,
    micro_batches: Sequence[tuple[Tensor, Tensor]],
    criterion: Criterion,
    optim: OptimConfig,
    amp_dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> Tensor:
    """Forward and backward passes over this process's share of a batch, one micro-batch at a time; returns the
    share's mean loss (detached). The gradients are those of that mean, and DistributedDataParallel averages
    them over the processes during the last backward pass only (``no_sync`` before it)."""
    total = torch.zeros((), device=device)
    for step, (images, targets) in enumerate(micro_batches):
        last = step == len(micro_batches) - 1
        with contextlib.nullcontext() if last or not isinstance(net, DistributedDataParallel) else net.no_sync():
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = forward(net, images)
                loss = weighted_loss(criterion, outputs, targets, optim.aux_weight) / len(micro_batches)
            scaler.scale(loss).backward()
        total += loss.detach()
    return total


def forward(net: nn.Module, images: Tensor) -> Tensor | AuxOutput:
    """The training forward pass; BatchNorm's refusal of one value per channel (a batch of one image whose
    feature maps shrink to 1x1) becomes a DLAError that says which settings to raise."""
    try:
        return net(images)
    except ValueError as e:
        if "Expected more than 1 value per channel" not in str(e):
            raise
        size = "x".join(str(side) for side in images.shape[-2:])
        raise DLAError(
            f"at {images.shape[0]} image(s) of {size} per step, the model's feature maps shrink to one value per channel, "
            "where BatchNorm cannot train; raise data.crop_size (the smallest sides per model are in docs/reliability.md) "
            "or the images per step (data.batch_size / processes / optim.accumulate) to 2 or more"
        ) from None


def apply_gradients(
    model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float | None
) -> None:
    """The optimizer step on the accumulated gradients (unscaled for fp16), optionally clipped to ``grad_clip``."""
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def agree(loss: Tensor, stop: bool, processes: Processes) -> tuple[float, bool]:
    """The loss averaged over the processes, and whether any of them was asked to stop: one small collective per
    iteration, so that every process logs the same loss and stops (on a signal or a non-finite loss) together."""
    values = torch.stack([loss.float(), loss.new_tensor(float(stop), dtype=torch.float32)])
    distributed.all_reduce_sum(values)
    return values[0].item() / processes.world_size, values[1].item() > 0


def weighted_loss(criterion: Criterion, outputs: Tensor | AuxOutput, targets: Tensor, aux_weight: float) -> Tensor:
    """The task's loss (``criterion``) of the model's outputs; an ``AuxOutput`` (Ladder DenseNet's context-layer
    logits beside the main ones) is scored ``(1 - aux_weight) x main + aux_weight x auxiliary``."""
    if isinstance(outputs, AuxOutput):
        return (1 - aux_weight) * criterion(outputs.logits, targets) + aux_weight * criterion(outputs.aux_logits, targets)
    return criterion(outputs, targets)


# --- the set-up of `train`, in the order it takes it --------------------------------------------------------


def check_input_channels(model: nn.Module, train_set: TaskDataset, cfg: Config) -> None:
    """Refuse, before the run directory is made, a model whose first convolution takes another number of channels
    than the training images have (``model.kwargs.in_chans: 1`` with RGB data)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or len(train_set) == 0:
        return
    image = SeededItems(train_set)[(0, 0)][0]  # one sample, drawn without touching the global generators
    channels = image.shape[-3]
    if channels != first.in_channels:
        raise DLAError(
            f"{cfg.model.name} takes {first.in_channels}-channel images but {train_set.meta.name} gives {channels}-channel "
            f"images; set model.kwargs.in_chans={channels} (or use data with {first.in_channels} channels)"
        )


def check_global_batch(checkpoint: dict[str, Any], batch_size: int, path: Path) -> None:
    """Refuse to resume a run with another global batch; any number of processes and accumulation steps that
    split the same global batch may continue it."""
    saved = checkpoint.get("global_batch", batch_size)
    if saved != batch_size:
        raise DLAError(
            f"cannot resume {path}: it trained with a global batch of {saved} (data.batch_size) and would continue with "
            f"{batch_size}; keep data.batch_size={saved}, with any number of processes and optim.accumulate that divide it"
        )


def describe_batch(batch_size: int, accumulate: int, world_size: int) -> str:
    """``global batch 16 = 2 processes x 2 accumulation steps x 4 images``, as printed at the start of a run."""
    share = batch_size // (accumulate * world_size)
    parts = [f"{world_size} process{'es' if world_size > 1 else ''}"]
    if accumulate > 1:
        parts.append(f"{accumulate} accumulation steps")
    return f"global batch {batch_size} = {' x '.join(parts)} x {share} samples (per process {batch_size // world_size})"


def distribute(model: nn.Module, processes: Processes, device: torch.device, sync_bn: bool) -> tuple[nn.Module, nn.Module]:
    """The model, and the module that trains it: DistributedDataParallel over several processes (BatchNorm
    synchronised with ``sync_bn``), the model itself in one process.

    DDP looks for unused parameters (``find_unused_parameters``) because the DLA backbones keep the authors'
    unused ``project`` layers, whose keys the published checkpoints hold; it costs one graph traversal per
    iteration, and PyTorch warns once, for models without unused parameters, that it found none.
    """
    if processes.world_size == 1:
        return model, model
    if sync_bn:
        model = convert_sync_batchnorm(model)
    net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=True)
    return model, net


def groups_of(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """Consecutive groups of ``size`` items (an iteration's micro-batches); an incomplete last group is dropped."""
    iterator = iter(items)
    return zip(*[iterator] * size, strict=False)


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


def loss_weights(weights: Sequence[float] | None, meta: DatasetMeta, device: torch.device) -> Tensor | None:
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
