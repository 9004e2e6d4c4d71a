"""Training: ``train(cfg)`` reads top to bottom as the recipe it runs: set-up, epochs, the end of each epoch.

Design choices (the "why" a reader may ask about):

- **One loop, any task.** Everything task-specific (transforms, model, loss, evaluation, pictures, the score
  that picks ``best.pt``) comes from the ``Task`` of ``cfg.task`` (``dla.tasks``); this file names none.
- **One step.** The training step (``step.TrainStep``: forward, loss, backward, optimizer update) is the object
  ``dla bench --train`` times. A model whose training ``forward`` returns ``dla.models.AuxOutput`` (the Ladder
  DenseNet) is scored ``(1 - optim.aux_weight) x main + optim.aux_weight x auxiliary``.
- **Reproducible data.** The order of an epoch and the augmentation of every sample are drawn from
  ``(seed, epoch)`` alone (``sampling.py``), so a run can restart at any iteration and see the batches it would
  have seen. The global generators, which the model may use (dropout), are saved in checkpoints.
- **Exact resume.** A checkpoint (``checkpoint.TrainState``) holds the model, optimizer, scheduler, scaler,
  generator states and the iteration count. ``last.pt`` is written after every epoch, before its evaluation;
  resuming from it continues the very same loss curve (bit for bit on the CPU; on CUDA up to its kernels'
  non-determinism, see ``deterministic``). Only ``config.RESUMABLE_CHANGES`` may differ on resume.
- **Ctrl-C and SIGTERM** save ``last.pt`` at the current iteration and raise ``KeyboardInterrupt``. An
  iteration is never cut in half (``signals.StopSignals``), so that checkpoint is consistent; resuming finishes
  the interrupted epoch with exactly the batches of its order that were left.
- **Several processes** (torchrun, ``dla.distributed``): ``data.batch_size`` is the global batch, which every
  process takes its share of (``optim.accumulate`` micro-batches each); DistributedDataParallel averages the
  gradients, BatchNorm is synchronised with ``model.sync_bn``, evaluation is sharded and its counts summed.
  Only rank 0 writes. The checkpoint is the same whatever the number of processes, so a run may resume
  with another number, as long as the global batch stays.
- **Failing early.** Everything that can be checked (config, out_dir, datasets, model name, class weights,
  device) is checked before the first iteration (``setup.py``); a non-finite loss stops training with a
  ``DLAError`` and never overwrites ``last.pt``, which keeps the last good weights.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import distributed
from ..config import Config, required
from ..data import TaskDataset
from ..distributed import Processes
from ..errors import DLAError
from ..tasks import Task, get_task
from .checkpoint import TrainState, save_checkpoint
from .class_weights import describe_weighting, run_class_weights
from .datasets import build_datasets
from .optimizer import build_optimizer, learning_rate, parameter_groups
from .results import write_json
from .rundir import MetricsLogger, RunDir, code_version, report_evaluation
from .runtime import autocast_dtype, seed_everything, select_device
from .sampling import SeededBatches, make_train_loader
from .schedules import build_scheduler, total_iterations
from .setup import check_input_channels, checkpoint_to_resume, describe_batch, distribute, loss_weights
from .signals import StopSignals
from .step import TrainStep, agree, groups_of


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
            run = set_up(cfg, resume, datasets, processes, device)
            return run_epochs(run, signals)


@dataclass
class Training:
    """A run being trained: what its epochs read, and the progress they make (``state``: what checkpoints hold)."""

    cfg: Config
    task: Task
    processes: Processes
    device: torch.device
    dir: RunDir
    state: TrainState
    step: TrainStep
    loader: DataLoader
    batches: SeededBatches
    train_set: TaskDataset
    val_set: TaskDataset
    total: int  # iterations of the whole run
    lr: float  # of the last iteration (the first parameter group's), as logged; the base lr before the first
    logger: MetricsLogger | None = None  # rank 0's
    progress: tqdm = field(init=False)
    loss_sum: float = 0.0  # of the iterations since the last record
    loss_count: int = 0
    scores: dict[str, Any] = field(default_factory=dict)  # of the last evaluation


def set_up(
    cfg: Config, resume: bool, datasets: tuple[TaskDataset, TaskDataset] | None, processes: Processes, device: torch.device
) -> Training:
    """Everything the first iteration needs, checked; nothing is written yet."""
    # The run directory: a new one, or the run to continue.
    rundir = RunDir(Path(required(cfg.out_dir, "out_dir")))
    resume_path = rundir.resume_from(resume)
    checkpoint = None if resume_path is None else checkpoint_to_resume(resume_path, cfg)

    # Seeds first, so that the model's initialisation is reproducible (and the same in every process).
    seed_everything(cfg.seed, cfg.deterministic)
    task = get_task(cfg.task)

    # Data: data.batch_size is the global batch of an iteration, cut into processes x optim.accumulate shares.
    train_set, val_set = datasets if datasets is not None else build_datasets(cfg, task)
    meta = train_set.meta
    loader, batches = make_train_loader(train_set, cfg, device, processes)
    per_epoch = batches.iterations

    # Model, optimizer, schedule, mixed precision, loss weights.
    optim = cfg.optim
    backbone_weights = cfg.model.pretrained_backbone if checkpoint is None else None  # resume: in the checkpoint
    model, model_kwargs = task.build_model(cfg, meta, backbone_weights)
    check_input_channels(model, train_set, cfg)
    model.to(device)
    lr = learning_rate(optim, cfg.data.batch_size)
    optimizer = build_optimizer(parameter_groups(model, task, lr, optim.backbone_lr_factor), optim)
    scheduler = build_scheduler(optimizer, cfg, per_epoch)
    amp_dtype = autocast_dtype(optim.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    # Class weights as listed, or computed once from the training labels (optim.class_weights: median_freq,
    # inverse_log) and kept in the run: a resumed run reads them back from its checkpoint.
    class_weights, weighting = run_class_weights(optim.class_weights, train_set, checkpoint)
    criterion = task.criterion(cfg, meta, loss_weights(class_weights, meta, device))

    # Where the run stands: at the start, or where the checkpoint left it (with any number of processes).
    state = TrainState(
        model,
        required(cfg.model.name, "model.name"),
        model_kwargs,
        task.name,
        meta,
        cfg,
        optimizer,
        scheduler,
        scaler,
        per_epoch,
        processes.world_size,
        code_version(),
        weighting,
    )
    if checkpoint is not None:
        state.restore(checkpoint, str(resume_path))

    # Several processes: BatchNorm over all of them (model.sync_bn), gradients averaged by DDP.
    state.model, net = distribute(model, processes, device, required(cfg.model.sync_bn, "model.sync_bn"))
    step = TrainStep(net, state.model, optimizer, criterion, scaler, amp_dtype, optim.aux_weight, optim.grad_clip, device)
    total = total_iterations(cfg, per_epoch)
    return Training(cfg, task, processes, device, rundir, state, step, loader, batches, train_set, val_set, total, lr)


def run_epochs(run: Training, signals: StopSignals) -> dict[str, Any]:
    """Train the run's remaining epochs (only rank 0 writes); the last evaluation's scores."""
    begin(run)
    state, per_epoch = run.state, run.state.iterations_per_epoch
    try:
        for epoch in range(state.iteration // per_epoch, math.ceil(run.total / per_epoch)):
            if state.iteration == run.total:  # a finished run, stopped by optim.max_iterations within this epoch
                break
            train_epoch(run, epoch, signals)
            end_epoch(run, epoch)
    except KeyboardInterrupt:
        save(run, run.dir.last)
        if run.processes.main:
            tqdm.write(
                f"dla: interrupted at iteration {state.iteration}; saved {run.dir.last}. Run again with --resume to continue."
            )
        raise
    finally:
        run.progress.close()
        if run.logger is not None:
            run.logger.close()
    if not run.scores:  # the run had already finished: nothing trained, so score what there is
        run.scores = run.task.evaluate(state.model, run.val_set, run.cfg, run.device)
    return run.scores


def begin(run: Training) -> None:
    """Rank 0 fills the run directory, opens the log and says what it trains; every process opens its progress bar."""
    cfg, state, world_size = run.cfg, run.state, run.processes.world_size
    distributed.wait_for_all()  # every process has checked out_dir before rank 0 fills it
    if run.processes.main:
        run.dir.create(cfg)
        run.logger = MetricsLogger(run.dir.root, cfg.log.tensorboard, start_iteration=state.iteration)
        if state.class_weights is not None:
            write_json(run.dir.root / "class_weights.json", state.class_weights)
            print(f"dla: {describe_weighting(state.class_weights)}")
        meta = state.dataset_meta
        print(
            f"dla: training {cfg.model.name} on {meta.name} ({len(run.train_set)} training images, {meta.num_classes} classes) "
            f"on {run.device}: {state.iterations_per_epoch} iterations per epoch, {run.total} in all, from iteration "
            f"{state.iteration}; {describe_batch(cfg.data.batch_size, cfg.optim.accumulate, world_size)}; lr {run.lr:g}; "
            f"run directory {run.dir.root}"
        )
    run.progress = tqdm(total=run.total, initial=state.iteration, unit="it", dynamic_ncols=True, disable=not run.processes.main)


def train_epoch(run: Training, epoch: int, signals: StopSignals) -> None:
    """The iterations of ``epoch`` (those left of it, when the run resumes within it), until the run's last one."""
    state = run.state
    # Resuming mid-epoch (after Ctrl-C) skips the iterations of this epoch's order already trained.
    run.batches.set_epoch(epoch, skip=state.iteration - epoch * state.iterations_per_epoch)
    run.step.net.train()
    # A signal (Ctrl-C, SIGTERM) takes effect between iterations, never inside one (the forward pass already
    # changes BatchNorm statistics), and on every process after the same iteration.
    with signals.deferred():
        for micro_batches in groups_of(run.loader, run.cfg.optim.accumulate):
            loss = run.step.backward(micro_batches)
            loss_value, stopping = agree(loss, signals.requested, run.processes)
            if not math.isfinite(loss_value):
                raise non_finite_error(
                    f"the loss is {loss_value} at iteration {state.iteration + 1} (epoch {epoch + 1})", run.dir
                )
            run.lr = state.optimizer.param_groups[0]["lr"]
            run.step.update()
            state.scheduler.step()
            state.iteration += 1

            run.progress.update()
            run.loss_sum, run.loss_count = run.loss_sum + loss_value, run.loss_count + 1
            if state.iteration % run.cfg.log.every_iterations == 0:
                log_loss(run, epoch + 1)
            if stopping:
                raise KeyboardInterrupt
            if state.iteration == run.total:
                break


def end_epoch(run: Training, epoch: int) -> None:
    """Save the last, then evaluate now and then (each process scores its share of the images, and the counts are
    summed), and keep the best (``last.pt`` then records the new best score)."""
    state = run.state
    save(run, run.dir.last)
    if (epoch + 1) % run.cfg.eval.every_epochs != 0 and state.iteration != run.total:
        return
    if run.loss_count:  # the iterations since the last record, so that the curves drawn next reach this one
        log_loss(run, epoch + 1)
    run.scores = run.task.evaluate(state.model, run.val_set, run.cfg, run.device)
    score = run.scores[run.task.score]
    if run.logger is not None:
        best = max(state.best_score, score)
        report_evaluation(run.dir, run.logger, run.task, state.dataset_meta, run.scores, epoch + 1, state.iteration, best)
    if score > state.best_score:
        state.best_score = score
        save(run, run.dir.best)
        save(run, run.dir.last)


def save(run: Training, path: Path) -> None:
    """Write the run's state to ``path`` (rank 0), refusing weights that are no longer finite."""
    state = run.state
    if not all(torch.isfinite(p).all() for p in state.model.state_dict().values() if p.is_floating_point()):
        raise non_finite_error(f"the weights became NaN or infinite by iteration {state.iteration}", run.dir)
    if run.processes.main:
        save_checkpoint(path, state.checkpoint())


def log_loss(run: Training, epoch: int) -> None:
    """A training record (the mean loss since the last one, and the lr) in the log (rank 0) and the progress bar."""
    loss = run.loss_sum / run.loss_count
    if run.logger is not None:
        run.logger.log({"epoch": epoch, "iteration": run.state.iteration, "loss": loss, "lr": run.lr})
    run.progress.set_postfix(epoch=epoch, loss=f"{loss:.4f}", lr=f"{run.lr:.2e}")
    run.loss_sum, run.loss_count = 0.0, 0


def non_finite_error(what: str, rundir: RunDir) -> DLAError:
    """The error that stops a run whose loss or weights are NaN or infinite (no checkpoint is written after it)."""
    kept = f"{rundir.last} keeps the last good weights" if rundir.last.exists() else "no checkpoint had been written yet"
    return DLAError(
        f"{what}; training stopped and {kept}. Lower optim.lr, set optim.grad_clip, or check the labels and optim.class_weights."
    )
