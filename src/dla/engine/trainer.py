"""Training: ``train(cfg)`` reads top to bottom as the recipe it runs, the step included.

Design choices (the "why" a reader may ask about):

- **One loop, any task.** Everything task-specific (transforms, model, loss, evaluation, pictures, the score
  that picks ``best.pt``) comes from the ``Task`` of ``cfg.task`` (``dla.tasks``); this file names none.
- **Reproducible data.** The order of an epoch and the augmentation of every sample are drawn from
  ``(seed, epoch)`` alone (``sampling.py``), so a run can restart at any iteration and see the batches it would
  have seen. The global generators, which the model may use (dropout), are saved in checkpoints.
- **Exact resume.** A checkpoint holds the model, optimizer, scheduler, scaler, generator states and the
  iteration count. ``last.pt`` is written after every epoch; resuming from it continues the very same loss
  curve (bit for bit on the CPU; on CUDA up to its kernels' non-determinism, see ``deterministic``). Only the
  settings in ``config.RESUMABLE_CHANGES`` may differ on resume; anything else is refused.
- **Ctrl-C** saves ``last.pt`` at the current iteration and re-raises ``KeyboardInterrupt``. An iteration is
  never cut in half (``signals.interrupts_deferred``), so that checkpoint is consistent; resuming finishes the
  interrupted epoch with exactly the batches of its order that were left.
- **Failing early.** Everything that can be checked (config, out_dir, datasets, model name, class weights,
  device) is checked before the first iteration; a non-finite loss stops training with a ``DLAError`` and
  never overwrites ``last.pt``, which keeps the last good weights.
- **Auxiliary outputs.** A model whose training ``forward`` returns ``dla.models.AuxOutput`` (the Ladder
  DenseNet) is scored ``(1 - optim.aux_weight) x main + optim.aux_weight x auxiliary``.
"""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..config import Config, required
from ..data import TaskDataset
from ..data.meta import DatasetMeta
from ..errors import DLAError
from ..models import AuxOutput
from ..tasks import Task, plot_curves
from .checkpoint import load_checkpoint, rng_state, run_config, save_checkpoint, set_rng_state
from .config import check_resumable, task_of
from .datasets import build_datasets
from .optimizer import build_optimizer, parameter_groups
from .results import write_json
from .rundir import MetricsLogger, RunDir, code_version
from .runtime import autocast_dtype, seed_everything, select_device
from .sampling import make_train_loader
from .schedules import build_scheduler, total_iterations
from .signals import interrupts_deferred


def train(cfg: Config, resume: bool = False, datasets: tuple[TaskDataset, TaskDataset] | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` with ``cfg.optim`` for ``cfg.task``; return the last validation scores.

    Args:
        cfg: a configuration from ``load_config``.
        resume: continue the run in ``cfg.out_dir`` from its ``checkpoints/last.pt``.
        datasets: ``(train, val)`` datasets to use instead of those ``cfg.data`` names (a seam for tests and
            notebooks): each has ``meta`` and gives ``(image tensor, target)`` pairs, the training one augmented.

    Returns:
        the task's scores of the last evaluation: ``miou``, ``iou``, ... (segmentation); ``top1``, ... (classification).
    """
    # The run directory: a new one, or the run to continue. Nothing is written before training can start.
    run = RunDir(Path(required(cfg.out_dir, "out_dir")))
    resume_path = run.resume_from(resume)
    checkpoint = None
    if resume_path is not None:
        checkpoint = load_checkpoint(resume_path)
        check_resumable(run_config(checkpoint, resume_path), cfg, resume_path)

    # Seeds first, so that the model's initialisation is reproducible too.
    seed_everything(cfg.seed, cfg.deterministic)
    device = select_device(cfg.device)
    task = task_of(cfg)

    # Data.
    train_set, val_set = datasets if datasets is not None else build_datasets(cfg, task)
    meta = train_set.meta
    loader, order = make_train_loader(train_set, cfg, device)
    iterations_per_epoch = len(loader)
    total = total_iterations(cfg, iterations_per_epoch)

    # Model, optimizer, schedule, mixed precision, loss weights.
    optim = cfg.optim
    backbone_weights = cfg.model.pretrained_backbone if checkpoint is None else None  # resume: in the checkpoint
    model, model_kwargs = task.build_model(cfg, meta, backbone_weights)
    model.to(device)
    optimizer = build_optimizer(parameter_groups(model, task, optim.lr, optim.backbone_lr_factor), optim)
    scheduler = build_scheduler(optimizer, cfg, iterations_per_epoch)
    amp_dtype = autocast_dtype(optim.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    class_weights = loss_weights(optim.class_weights, meta, device)

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

    def save(path: Path) -> None:
        """Write the whole state of the run to ``path``, refusing weights that are no longer finite."""
        if not all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()):
            raise non_finite_error(f"the weights became NaN or infinite by iteration {iteration}", run)
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
    logger = MetricsLogger(run.root, cfg.log.tensorboard, start_iteration=iteration)
    print(
        f"dla: training {cfg.model.name} on {meta.name} ({len(train_set)} training images, {meta.num_classes} classes) on "
        f"{device}: {iterations_per_epoch} iterations per epoch, {total} in all, from iteration {iteration}; "
        f"run directory {run.root}"
    )

    scores: dict[str, Any] = {}
    progress = tqdm(total=total, initial=iteration, unit="it", dynamic_ncols=True)
    loss_sum, loss_count = 0.0, 0
    try:
        for epoch in range(iteration // iterations_per_epoch, math.ceil(total / iterations_per_epoch)):
            if iteration == total:  # a finished run, stopped by optim.max_iterations within this epoch
                break
            # Resuming mid-epoch (after Ctrl-C) skips the batches of this epoch's order already trained on.
            order.set_epoch(epoch, skip=(iteration - epoch * iterations_per_epoch) * cfg.data.batch_size)
            model.train()
            for images, targets in loader:
                # One iteration. Ctrl-C takes effect between iterations, never inside one (the forward pass
                # already changes BatchNorm statistics), so that the checkpoint it saves is consistent.
                with interrupts_deferred():
                    images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        loss = weighted_loss(task, model(images), targets, meta, class_weights, optim.aux_weight)
                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        raise non_finite_error(f"the loss is {loss_value} at iteration {iteration + 1} (epoch {epoch + 1})", run)
                    lr = optimizer.param_groups[0]["lr"]
                    step(loss, model, optimizer, scaler, optim.grad_clip)
                    scheduler.step()
                    iteration += 1

                    progress.update()
                    loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
                    if iteration % cfg.log.every_iterations == 0:
                        logger.log({"epoch": epoch + 1, "iteration": iteration, "loss": loss_sum / loss_count, "lr": lr})
                        progress.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / loss_count:.4f}", lr=f"{lr:.2e}")
                        loss_sum, loss_count = 0.0, 0
                if iteration == total:
                    break

            # End of an epoch: evaluate now and then, keep the best, always save the last.
            if (epoch + 1) % cfg.eval.every_epochs == 0 or iteration == total:
                scores = task.evaluate(model, val_set, cfg, device)
                at = {"epoch": epoch + 1, "iteration": iteration}
                write_json(run.eval / f"epoch_{epoch + 1}.json", {**at, "classes": list(meta.classes), **scores})
                logger.log({**at, **{f"val_{k}": v for k, v in scores.items() if isinstance(v, float)}})  # the scalars
                for name, picture in task.draw(scores, meta.classes).items():
                    picture.save(run.plots / f"{name}.png")
                plot_curves(run.root / "metrics.jsonl", run.plots / "curves.png", task.score)
                tqdm.write(f"epoch {epoch + 1}: {task.summary(scores)} (best {max(best_score, scores[task.score]):.4f})")
                if scores[task.score] > best_score:
                    best_score = scores[task.score]
                    save(run.best)
            save(run.last)
    except KeyboardInterrupt:
        save(run.last)
        tqdm.write(f"dla: interrupted at iteration {iteration}; saved {run.last}. Run again with --resume to continue.")
        raise
    finally:
        progress.close()
        logger.close()

    if not scores:  # the run had already finished: nothing trained, so score what there is
        scores = task.evaluate(model, val_set, cfg, device)
    return scores


def step(
    loss: Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float | None
) -> None:
    """One optimizer step on ``loss``: gradients (scaled for fp16), optionally clipped to ``grad_clip``."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def weighted_loss(
    task: Task, outputs: Tensor | AuxOutput, targets: Tensor, meta: DatasetMeta, class_weights: Tensor | None, aux_weight: float
) -> Tensor:
    """The task's loss of the model's outputs; an ``AuxOutput`` (Ladder DenseNet's context-layer logits beside the
    main ones) is scored ``(1 - aux_weight) x main + aux_weight x auxiliary``."""
    if isinstance(outputs, AuxOutput):
        main = task.loss(outputs.logits, targets, meta, class_weights)
        return (1 - aux_weight) * main + aux_weight * task.loss(outputs.aux_logits, targets, meta, class_weights)
    return task.loss(outputs, targets, meta, class_weights)


# --- the set-up of `train`, in the order it takes it --------------------------------------------------------


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
