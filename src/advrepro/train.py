"""Training: plain, Algorithm 1/2 robust, with or without regularizations.

One function reads one experiment's spec (`spec.ExperimentSpec`) and writes the trained checkpoint, a
per-epoch history (loss, accuracy) and the wall time of every epoch; a resumable state after every epoch.
Every random choice is derived from params.yaml's seed:
  init = fold(seed, 0); batch order of epoch e = fold(seed, 1, e); step s = fold(seed, 2, s).
Initialisation depends on the model only, so the scenarios of one model start alike.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from . import checkpoint, paths, runtime
from .attacks.base import cross_entropy
from .augment import augment_images
from .data import DATASETS, Arrays
from .defences import defence_for
from .errors import AdvreproError, CheckpointError, DataError, ParamsError
from .io import atomic_paths, refuse_directories, write_json
from .models import MODELS
from .models.classifier import Classifier, classifier_for, init_weights
from .spec import ExperimentSpec, TrainSpec

log = logging.getLogger(__name__)


class TrainingDiverged(AdvreproError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def optimizer(cfg: TrainSpec, weights, param_groups, steps: int,
              steps_per_epoch: int = 1) -> optax.GradientTransformation:
    """AdamW; the model's "ssm" parameter group (S4's state-space parameters) gets its own learning
    rate and no weight decay. Optional global-norm gradient clipping (grad_clip: null switches it off)."""
    warmup = round(cfg.warmup_epochs * steps_per_epoch)

    def schedule(lr):
        if cfg.schedule == "constant":
            return optax.constant_schedule(lr)
        if warmup == 0:
            return optax.cosine_decay_schedule(lr, steps)
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps)

    labels = param_groups(weights)
    tx = optax.multi_transform(
        {"regular": optax.adamw(schedule(cfg.lr), weight_decay=cfg.weight_decay),
         "ssm": optax.adam(schedule(cfg.ssm_lr))},
        labels)
    if cfg.grad_clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
    return tx


def make_train_step(clf: Classifier, tx, spec: ExperimentSpec, n_classes: int, steps_per_epoch: int,
                    mesh: jax.sharding.Mesh | None = None):
    """Jitted step(state, x, y, key, step_index) -> (state, loss, accuracy): the scenario's augmentation,
    then its defence (inner maximization, then the outer loss and its gradient). With a `mesh`
    (`data_parallel`), the same step runs data-parallel: x and y sharded over its devices along the batch
    axis, weights and optimizer state replicated; XLA inserts the cross-device sums of the batch means."""
    exp, reg, robust = spec.experiment, spec.regularization, spec.defence
    defence = defence_for(robust)
    aug = exp.scenario.augmentation
    # Images are augmented here, on the fly; audio arrives augmented (pre-drawn views, see `train`).
    regularize = aug.images and DATASETS[exp.dataset].kind == "image"
    warmup_steps = round(robust.epsilon_warmup * steps_per_epoch) if robust else 0

    def epsilon_at(step_index):
        """Robust epsilon, ramped up linearly over the warm-up (the full epsilon from the start
        drove the small offline models to the uniform prediction, a trivial min-max solution)."""
        if robust is None:
            return None
        if warmup_steps == 0:
            return robust.epsilon
        return robust.epsilon * jnp.minimum(1.0, (step_index + 1) / warmup_steps)

    def step(state, x, y, key, step_index):
        p, opt_state = state
        k_aug, k_drop = jax.random.split(key)
        k_inner = jax.random.fold_in(key, 2)  # the inner attack's keys (defences that draw, stochastic models)
        if regularize:
            x = augment_images(k_aug, x, noise_std=reg.noise_std, max_rotation=reg.max_rotation,
                               max_scale=reg.max_scale, crop=aug.crop)
        attacked = defence.inner(clf, p, x, y, robust, epsilon_at(step_index), n_classes, k_inner)
        trainable = clf.trainable(p)

        def loss_fn(t):
            return defence.loss(clf.training_logits(k_drop), clf.with_trainable(p, t), x, y,
                                attacked, robust)

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        weights = clf.with_trainable(clf.updated_stats(p, x, k_drop), optax.apply_updates(trainable, updates))
        return (weights, opt_state), loss, acc

    if mesh is None:
        return clf.jit(step)
    batch, replicated = batch_sharding(mesh), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return clf.jit(step, in_shardings=(replicated, batch, batch, replicated, replicated),
                   out_shardings=(replicated, replicated, replicated))


def batch_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))


def data_parallel(n_devices: int, batch_size: int, key: str) -> jax.sharding.Mesh | None:
    """The mesh a training step shards its batch over: the first `n_devices` devices JAX sees, along one axis
    named "batch"; None for one device (the plain jitted step, byte for byte as without this). The batch size
    must divide evenly (`key`: its params key, named in the error); fewer visible devices than asked for are
    used as they are, with a warning (a GPU job simulated on the CPU)."""
    if n_devices <= 1:
        return None
    if batch_size % n_devices:
        raise ParamsError(f"{key}: bad value {batch_size}: data-parallel training over {n_devices} devices needs a "
                          f"batch size divisible by {n_devices} (or hold fewer devices: --gpus)")
    visible = jax.devices()
    if len(visible) < n_devices:
        log.warning("asked for %d devices, JAX sees %d (%s): training on %d", n_devices, len(visible),
                    visible[0].platform, len(visible))
        return data_parallel(len(visible), batch_size, key)
    log.info("data-parallel: each batch of %d sharded over %d devices (%s), %d per device", batch_size, n_devices,
             ", ".join(str(d) for d in visible[:n_devices]), batch_size // n_devices)
    return jax.sharding.Mesh(np.array(visible[:n_devices]), ("batch",))


def clean_evaluator(clf: Classifier, batch_size: int, seed: int = 0):
    """fn(weights, x, y) -> (mean cross-entropy, accuracy) on clean data, jitted once per run; a stochastic
    model's noise for batch b is fold(seed, 5, b)."""
    @clf.jit
    def batch_sums(w, xx, yy, key):
        logits = clf.logits(w, xx, key)
        return cross_entropy(logits, yy).sum(), jnp.sum(jnp.argmax(logits, -1) == yy)

    root = jax.random.fold_in(jax.random.PRNGKey(seed), 5)

    def evaluate(weights, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        loss = correct = 0.0
        for b, i in enumerate(range(0, len(y), batch_size)):
            batch_loss, c = batch_sums(weights, jnp.asarray(x[i:i + batch_size]), jnp.asarray(y[i:i + batch_size]),
                                       jax.random.fold_in(root, b))
            loss, correct = loss + float(batch_loss), correct + float(c)
        return loss / len(y), correct / len(y)

    def ms_per_image(weights, x: np.ndarray, y: np.ndarray, repeats: int = 3) -> float:
        """Wall time of the test-mode forward pass per image, in ms: the median of `repeats` passes over the first
        evaluation batch (compiled already; one untimed pass first). A wall-clock figure, like the epoch times."""
        xb, yb = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            jax.block_until_ready(batch_sums(weights, xb, yb, root))
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times[1:]) / len(yb)

    evaluate.ms_per_image = ms_per_image
    return evaluate


def epoch_probe(clf: Classifier, spec: ExperimentSpec, data: Arrays, evaluate_clean):
    """fn(weights, phase_end) -> the history's per-epoch attack statistics (the spec's `probe`, seed 004), or None
    without one: the clean accuracy on the whole training set; on the first `samples` test images, the accuracy
    under PGD (a random start, `steps` steps of 2.5 epsilon / steps; per sample: correct clean and attacked) and the
    adversary's success rate, the fraction of the correctly classified images it flips; at a phase end also both
    under the seed's `phase_steps`-step attacker. Keys fold(seed, 6, steps): the same attack after every epoch."""
    probe = spec.probe
    if probe is None:
        return None
    from .attacks.pgd import pgd_restarts

    n = min(probe.samples, len(data.y_test))
    x, y = jnp.asarray(data.x_test[:n]), jnp.asarray(data.y_test[:n])
    root = jax.random.fold_in(jax.random.PRNGKey(spec.seed), 6)

    @functools.partial(clf.jit, static_argnames="steps")
    def attacked(weights, key, steps: int):
        adv = pgd_restarts(clf.logits, weights, x, y, key, probe.epsilon, steps, 1)
        clean = jnp.argmax(clf.logits(weights, x, jax.random.fold_in(key, 1)), -1) == y
        return clean, clean & (jnp.argmax(clf.logits(weights, adv, jax.random.fold_in(key, 2)), -1) == y)

    def statistics_of(weights, steps: int) -> tuple[float, float | None]:
        clean, robust = (np.asarray(a) for a in attacked(weights, jax.random.fold_in(root, steps), steps=steps))
        success = None if not clean.any() else round(1 - robust.sum() / clean.sum(), 6)
        return round(float(robust.mean()), 6), success

    def run(weights, phase_end: bool) -> dict:
        out = {"train_clean_accuracy": round(evaluate_clean(weights, data.x_train, data.y_train)[1], 6)}
        out["test_pgd_accuracy"], out["adversary_success"] = statistics_of(weights, probe.steps)
        if phase_end:
            out["phase_test_pgd_accuracy"], out["phase_adversary_success"] = statistics_of(weights, probe.phase_steps)
        return out

    return run


def training_views(exp, data: Arrays) -> np.ndarray | None:
    """The pre-drawn augmented training inputs [V, N, ...] an audio regularization trains on."""
    aug = exp.scenario.augmentation
    if aug.views is None or DATASETS[exp.dataset].kind == "image":
        return None
    if aug.name not in data.views:
        raise AdvreproError(f"{exp.id}: the processed data holds no {aug.name!r} augmentation views; "
                            f"run `advrepro prepare {DATASETS[exp.dataset].source}` again")
    return data.views[aug.name]


def fingerprint(spec: ExperimentSpec, data: Arrays) -> str:
    """What an interrupted run's state must match to be continued: the experiment, its training
    spec, the seed and the data (a changed parameter or dataset starts afresh)."""
    h = hashlib.sha256(json.dumps(spec.training_dict(), sort_keys=True).encode())
    arrays = [data.x_train, data.y_train, data.x_test, data.y_test] + [data.views[k] for k in sorted(data.views)]
    for a in arrays:
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _state_problem(header: dict, fp: str, epochs: int, n_batches: int) -> str | None:
    """Why a state's header cannot be continued from, or None. Its checksum holds, but it may come from
    another configuration or version, or be written by hand."""
    if header.get("fingerprint") != fp:
        return "saved by another configuration or dataset"
    epoch, history, seconds = header["epoch"], header.get("history"), header.get("epoch_seconds")
    if not 1 <= epoch <= epochs or header.get("next_step") != epoch * n_batches:
        return f"epoch {epoch} (next step {header.get('next_step')!r}) does not fit {epochs} epochs of {n_batches}"
    if not (isinstance(history, list) and len(history) == epoch and all(isinstance(h, dict) for h in history)):
        return "its history is not a list of one entry per epoch"
    if not (isinstance(seconds, list) and len(seconds) == epoch
            and all(isinstance(t, int | float) and not isinstance(t, bool) for t in seconds)):
        return "its epoch_seconds is not a list of one number per epoch"
    return None


def resume_point(exp, template: dict, fp: str, epochs: int, n_batches: int):
    """(state, header) saved after the last complete epoch of an interrupted run of this very
    configuration, or None. A state of another configuration, or a damaged one, is not used (logged)."""
    path = Path(paths.state(exp.id))
    if not path.exists():
        return None
    try:
        header, _ = checkpoint.read_header(path)
        problem = _state_problem(header, fp, epochs, n_batches)
        if problem is not None:
            log.warning("%s: %s; not resumed, training from epoch 1", path, problem)
            return None
        return checkpoint.load(path, template, experiment=exp.id)
    except CheckpointError as exc:
        log.warning("%s; not resumed, training from epoch 1", exc)
        return None


def train(spec: ExperimentSpec, data: Arrays, *, progress: bool = True, devices: int = 1) -> dict:
    """Train one experiment; writes checkpoint, history and timing; returns the history.

    After every epoch the whole training state (parameters, optimizer state, epoch; the PRNG keys and
    the data order derive from the seed and the epoch) is saved atomically to results/state/. A run
    started again after a crash continues after the last complete epoch and ends with the same bytes.
    `devices` > 1: every step data-parallel over that many devices (`data_parallel`); the same number of
    devices gives the same bytes, another number the same parameters up to float rounding."""
    exp, cfg, seed = spec.experiment, spec.train, spec.seed
    bs = cfg.batch_size
    n_batches = len(data.y_train) // bs
    if len(data.y_train) == 0:
        raise DataError(f"{paths.processed(exp.dataset)}: the training set is empty; run `advrepro prepare "
                        f"{DATASETS[exp.dataset].source}` again")
    if n_batches == 0:
        raise ParamsError(f"{DATASETS[exp.dataset].section}.train.batch_size: bad value {bs}: "
                          f"exceeds the {len(data.y_train)} training samples")
    mesh = data_parallel(devices, bs, f"{DATASETS[exp.dataset].section}.train.batch_size")
    refuse_directories(paths.checkpoint(exp.id), paths.history(exp.id), paths.timing(exp.id), paths.state(exp.id))
    clf = classifier_for(spec, data.n_classes)
    weights = init_weights(clf, seed, data.x_train)
    trainable = clf.trainable(weights)
    tx = optimizer(cfg, trainable, MODELS[exp.model].param_groups, n_batches * cfg.epochs, n_batches)
    state = (weights, tx.init(trainable))
    # Plain epochs first when the defence asks for them (seed 004: clean training, then adversarial training; one
    # optimizer state across both): a second step function without the defence, chosen per epoch.
    clean_epochs = spec.defence.clean_epochs if spec.defence is not None else 0
    steps = {"robust": make_train_step(clf, tx, spec, data.n_classes, n_batches, mesh)}
    if clean_epochs:
        steps["clean"] = make_train_step(clf, tx, dataclasses.replace(spec, defence=None), data.n_classes, n_batches,
                                         mesh)
    root = jax.random.PRNGKey(seed)
    history, epoch_seconds, first_epoch = [], [], 1
    fp = fingerprint(spec, data)
    resumed = resume_point(exp, {"params": state[0], "opt_state": state[1]}, fp, cfg.epochs, n_batches)
    if resumed is not None:
        saved, header = resumed
        state = (saved["params"], saved["opt_state"])
        history, epoch_seconds, first_epoch = header["history"], header["epoch_seconds"], header["epoch"] + 1
        log.info("%s: resuming after epoch %d of %d (%s)", exp.id, header["epoch"], cfg.epochs,
                 paths.state(exp.id))
    if mesh is not None:  # weights and optimizer state: one copy on every device of the mesh
        state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    evaluate_clean = clean_evaluator(clf, spec.evaluation.batch_size, seed)
    probe = epoch_probe(clf, spec, data, evaluate_clean)
    views = training_views(exp, data)
    log.info("training %s: %d epochs x %d batches of %d", exp.id, cfg.epochs, n_batches, bs)
    for epoch in range(first_epoch, cfg.epochs + 1):
        start = time.perf_counter()
        order = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.fold_in(root, 1), epoch),
                                                  len(data.y_train)))
        losses, accs = [], []
        step = steps["clean" if epoch <= clean_epochs else "robust"]
        bar = tqdm(range(n_batches), desc=f"{exp.id} epoch {epoch}/{cfg.epochs}", disable=not progress,
                   leave=False, mininterval=2.0)
        for b in bar:
            idx = order[b * bs:(b + 1) * bs]
            step_index = (epoch - 1) * n_batches + b
            key = jax.random.fold_in(jax.random.fold_in(root, 2), step_index)
            if views is None:
                x = data.x_train[idx]
            else:  # each sample one of its augmented copies: view index = fold(seed, 3, step)
                pick = jax.random.randint(jax.random.fold_in(jax.random.fold_in(root, 3), step_index), (len(idx),),
                                          0, len(views))
                x = views[np.asarray(pick), idx]
            state, loss, acc = step(state, jnp.asarray(x), jnp.asarray(data.y_train[idx]), key, jnp.int32(step_index))
            losses.append(loss)
            accs.append(acc)
        train_loss = float(jnp.mean(jnp.stack(losses)))
        if not np.isfinite(train_loss):
            kept = (f"the state after epoch {epoch - 1} is kept in {paths.state(exp.id)}" if epoch > 1
                    else "no epoch had completed")
            raise TrainingDiverged(f"{exp.id}: training loss became {train_loss} in epoch {epoch}; {kept}")
        test_loss, test_acc = evaluate_clean(state[0], data.x_test, data.y_test)
        history.append({"epoch": epoch, "train_loss": round(train_loss, 6),
                        "train_accuracy": round(float(jnp.mean(jnp.stack(accs))), 6),
                        "test_loss": round(test_loss, 6), "test_accuracy": round(test_acc, 6)})
        if probe is not None:
            history[-1].update(probe(state[0], epoch in (clean_epochs, cfg.epochs)))
        epoch_seconds.append(time.perf_counter() - start)
        checkpoint.save(paths.state(exp.id), {"params": state[0], "opt_state": state[1]}, experiment=exp.id,
                        epoch=epoch, meta={"fingerprint": fp, "seed": seed, "next_step": epoch * n_batches,
                                           "history": history, "epoch_seconds": epoch_seconds})
        log.info("%s epoch %d/%d: train loss %.4f acc %.3f | test loss %.4f acc %.3f | %.1f s", exp.id, epoch,
                 cfg.epochs, train_loss, history[-1]["train_accuracy"], test_loss, test_acc,
                 epoch_seconds[-1])
    timing = {"experiment": exp.id, "epoch_seconds": [round(s, 3) for s in epoch_seconds],
              "inference_ms_per_image": round(evaluate_clean.ms_per_image(state[0], data.x_test, data.y_test), 4),
              "backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "machine": runtime.machine()}
    # All three outputs or none: a failure leaves the earlier ones as they were.
    with atomic_paths(paths.checkpoint(exp.id), paths.history(exp.id), paths.timing(exp.id)) as (ckpt, hist, tim):
        checkpoint.save(ckpt, {"params": state[0], "opt_state": state[1]}, experiment=exp.id, epoch=cfg.epochs)
        write_json(hist, {"experiment": exp.id, "epochs": history})
        write_json(tim, timing)
    Path(paths.state(exp.id)).unlink()  # the outputs are complete: nothing left to resume
    return {"history": history, "epoch_seconds": epoch_seconds}
