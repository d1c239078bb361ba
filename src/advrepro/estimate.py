"""Cost before a run: `advrepro estimate` measures the training step and the evaluation's unit passes of every
experiment of a profile, at the profile's sizes, on the device JAX runs on here, and prints the estimated wall
time per experiment, per table and in total for a number of devices.

What is measured, per experiment (or, by default, per group of experiments with the same cost, see `train_key`):
- the training step (`train.make_train_step`: the scenario's augmentation, defence, loss and AdamW), compiled
  ahead of time (its compile time is reported apart), then timed over a few calls with fresh keys;
- the evaluation's units at its batch size: a test-mode forward pass (the score of an attack's output, the
  per-epoch test pass of training) and an input gradient (one step of a gradient attack), plus the compile time
  of one attack program (the thesis's PGD).
What is computed from them: training = epochs x (steps per epoch x step + test batches x forward); evaluation =
per batch, the passes every attack of the evaluation spec makes (`attack_passes`: PGD's steps, APGD's iterations,
Square's queries, the spatial grid ...), the strong cascade on an assumed fraction of the samples (it runs only
on those every attack before it left correct); per job, the process start-up measured here and the compile
times, measured with an empty cache and charged to the first job of each compiled program: the pipeline's jobs
share JAX's persistent compilation cache (.cache/jax), so a later job with the same program (the evaluation of
another scenario of the same model, the noise variants) loads it instead.

Sizes come from data/processed/<dataset>.npz where it is there and matches the profile's input size, else from
params.yaml (image size, n_train, n_test, the corpus's speakers and takes, clip duration and sample rates) or
the real dataset's known size (`KNOWN_SIZES`); every line says which.

Devices: the jobs of one experiment (training, then its evaluation) run one after the other; experiments are
spread over the devices longest first (as `snakemake --resources gpu=N` lets N jobs run at once). On a 2-core
CPU, single-threaded jobs, --devices 2 is the reference run's setting.
"""
from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .errors import UsageError

log = logging.getLogger(__name__)

# The real datasets' sizes, where params.yaml does not state them (the thesis profile's downloads).
KNOWN_SIZES = {
    # torchvision.datasets.GTSRB: GTSRB-Training_fixed.zip and the final test set
    "gtsrb": (26640, 12630),
    # Speech Commands v0.02, the ten digits zero..nine (4052 + 3890 + 3880 + 3727 + 3728 + 4052 + 3860 + 3998
    # + 3787 + 3934 clips)
    "speech": 38908,
    # UrbanSound8K: 8,732 slices, per official fold
    "urban": {1: 873, 2: 888, 3: 925, 4: 990, 5: 936, 6: 823, 7: 838, 8: 806, 9: 816, 10: 837},
}
SPEECH_WORDS = 10


@dataclass(frozen=True)
class Shape:
    """What one dataset gives a job: one input's shape, the split sizes, the classes, and where they came from."""
    sample: tuple[int, ...]
    n_train: int
    n_test: int
    n_classes: int
    origin: str


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{array name: shape} of an npz file, from the arrays' headers only."""
    shapes = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".npy"):
                continue
            with z.open(name) as fh:
                version = np.lib.format.read_magic(fh)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shapes[name.removesuffix(".npy")] = tuple(read(fh)[0])
    return shapes


def _n_test(fraction: float, n: int) -> int:  # as data/speech.py splits
    return min(max(int(round(fraction * n)), 1), n - 1)


def _audio_sample(kind: str, n_samples: int, rate: int, feat: dict) -> tuple[int, int]:
    """[T, F] of a clip of n_samples at rate: raw resampled to raw_rate; Mel frames of torchaudio (centred)."""
    if kind == "waveform":
        return (n_samples * feat["raw_rate"] // rate, 1)
    return (n_samples // feat["hop_length"] + 1, feat["n_mels"])


def params_shape(params: dict, dataset: str) -> Shape:
    """A dataset's shape and sizes as params.yaml (and the real dataset's known size) state them."""
    from .data import DATASETS, SOURCES

    d = DATASETS[dataset]
    sec = params[d.source]
    data = sec["data"]
    n_classes = SOURCES[d.source].n_classes
    if d.source in ("mnist", "fmnist"):
        s = data["image_size"]
        cap = (60000, 10000) if data["source"] == "torchvision" else (10**9, 10**9)
        return Shape((s, s, 1), min(data["n_train"], cap[0]), min(data["n_test"], cap[1]), n_classes,
                     f"params ({d.source}.data.n_train, n_test, image_size)")
    if d.source == "gtsrb":
        s = data["image_size"]
        if data["source"] == "synthetic":
            return Shape((s, s, 3), data["train_per_class"] * n_classes, data["test_per_class"] * n_classes,
                         n_classes, "params (gtsrb.data.train_per_class, test_per_class)")
        n_train, n_test = KNOWN_SIZES["gtsrb"]
        return Shape((s, s, 3), n_train, n_test, n_classes, "GTSRB's known size (torchvision)")
    feat = params[d.source]["features"]
    if d.source == "speech":
        rate = data["sample_rate"]
        sample = _audio_sample(d.kind, rate, rate, feat)  # one-second clips
        if data["source"] == "espeak":
            c = data["corpus"]
            per_speaker = SPEECH_WORDS * c["takes"]
            if data["split"] == "speaker":
                n_test = _n_test(data["test_fraction"], c["speakers"]) * per_speaker
            else:
                n_test = _n_test(data["test_fraction"], c["speakers"] * per_speaker)
            return Shape(sample, c["speakers"] * per_speaker - n_test, n_test, n_classes,
                         "params (speech.data.corpus: speakers x 10 digits x takes, test_fraction)")
        n = KNOWN_SIZES["speech"]
        n_test = _n_test(data["test_fraction"], n)
        return Shape(sample, n - n_test, n_test, n_classes,
                     "Speech Commands v0.02's known digit count, split by test_fraction")
    # urban
    rate = data["sample_rate"]
    sample = _audio_sample(d.kind, int(round(data["duration"] * rate)), rate, feat)
    folds = data["test_folds"]
    if data["source"] == "synthetic":
        total = data["corpus"]["clips_per_class"] * 10
        n_test = total * len(folds) // 10
        return Shape(sample, total - n_test, n_test, n_classes,
                     "params (urban.data.corpus.clips_per_class, spread over 10 folds; test_folds)")
    per_fold = KNOWN_SIZES["urban"]
    n_test = sum(per_fold[f] for f in folds)
    return Shape(sample, sum(per_fold.values()) - n_test, n_test, n_classes,
                 "UrbanSound8K's known fold sizes (a few unreadable files fewer in a real run)")


def dataset_shape(params: dict, dataset: str, root: Path = Path(".")) -> Shape:
    """The processed file's shapes when it is there and holds inputs of the profile's shape, else params'."""
    stated = params_shape(params, dataset)
    path = root / paths.processed(dataset)
    if path.is_file():
        try:
            shapes = _npz_shapes(path)
            train, test = shapes["x_train"], shapes["x_test"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return stated
        if tuple(train[1:]) == stated.sample:
            return dataclasses.replace(stated, n_train=train[0], n_test=test[0], origin=str(path))
    return stated


# ---- what an evaluation does, in passes ----------------------------------------------------------------------


def attack_passes(name: str, ev, n_classes: int) -> tuple[int, int]:
    """(input gradients, forward passes) one batch of an attack costs, besides scoring its output."""
    st = ev.strong
    if name in ("plain", "missing"):
        return 0, 0
    if name in ("fgsm", "fgsm01"):
        return 1, 0
    if name in ("pgd", "pgd_l2", "ilcm"):
        steps = ev.ilcm_steps if name == "ilcm" else ev.pgd_steps
        return steps, 1
    if name == "spatial":
        return 0, len(ev.spatial_rotations) * len(ev.spatial_translations) ** 2
    if name == "cw":
        return ev.cw_search_steps * ev.cw_steps, ev.cw_search_steps
    if name == "pgd_rs":
        return st.pgd_restarts * st.pgd_steps, st.pgd_restarts
    if name == "pgd_2x":
        return st.pgd_restarts * 2 * st.pgd_steps, st.pgd_restarts
    if name == "apgd_ce":
        return st.apgd_steps + 1, 0
    if name == "apgd_dlr":
        runs = 1 if n_classes < 4 else min(st.apgd_targets, n_classes - 1)
        return runs * (st.apgd_steps + 1), 1
    if name == "eot_pgd":
        return (st.pgd_steps + 1) * ev.eot_draws, 0
    if name == "square":
        return 0, st.square_queries + 1
    raise KeyError(f"no pass count for attack {name!r}")


@dataclass(frozen=True)
class EvalPlan:
    """An evaluation's work in batches of its batch size: gradients, forward passes and compiled programs,
    the strong cascade's share at the assumed robust fraction and at its bounds (none / every sample)."""
    grads: float
    fwds: float
    programs: int
    strong_grads: tuple[float, float, float]   # (at the fraction, none, all)
    strong_fwds: tuple[float, float, float]


def eval_plan(clf_stochastic: bool, ev, kind: str, n_classes: int, n: int, robust_fraction: float) -> EvalPlan:
    """The passes `evaluate.evaluate` makes on n test samples (batches of ev.batch_size)."""
    from .attacks import STRONG, chosen, columns

    bs = min(ev.batch_size, n)
    batches = math.ceil(n / bs)
    grads = fwds = 0.0
    attacks = chosen(ev, kind)
    for col in columns(ev, kind):
        g, f = attack_passes(col.attack, ev, n_classes)
        grads, fwds = grads + batches * g, fwds + batches * (f + 1)   # + the score of its output
    for a in attacks:  # the examples: one batch per attack that keeps them, and its prediction
        if a.examples:
            g, f = attack_passes(a.name, ev, n_classes)
            grads, fwds = grads + g, fwds + f + 1
    fwds += 1 + (batches if ev.confidence else 0)
    grads += batches  # the zero-gradient check
    strong = [a for a in STRONG.values() if clf_stochastic or not a.stochastic]
    per_cascade = [attack_passes(a.name, ev, n_classes) for a in strong]
    sg, sf = [], []
    for fraction in (robust_fraction, 0.0, 1.0):
        runs = math.ceil(fraction * n / bs)  # batches of the samples still robust, padded to bs
        box = min(runs, 1)                   # the box check, on what survives the cascade
        g = len(ev.strong_at) * runs * sum(p[0] for p in per_cascade) + box * per_cascade[0][0]
        f = (len(ev.strong_at) * runs * sum(p[1] + 1 for p in per_cascade) + box * (per_cascade[0][1] + 1))
        sg.append(g)
        sf.append(f)
    programs = sum(1 for a in attacks if a.name != "plain") + len(strong) + 2  # + score, gradient check
    return EvalPlan(grads, fwds, programs, tuple(sg), tuple(sf))


# ---- measurements --------------------------------------------------------------------------------------------


@dataclass
class StepCost:
    compile_s: float
    step_s: float
    timed: int
    batch: int       # the batch measured (scaled to the real one when smaller: --max-copies)


@dataclass
class EvalCost:
    compile_fwd_s: float
    compile_attack_s: float
    fwd_s: float     # one forward pass (score) of a batch of `batch`
    grad_s: float    # one input gradient of a batch of `batch`
    batch: int


def _timed(fn, n: int, budget: float) -> tuple[float, int]:
    """(seconds of a call, calls made): a first call, then up to n more while within budget; the fastest of
    those after the first (which may carry one-off costs), as the least disturbed by other processes on a
    shared machine; a first call longer than the budget is the measurement."""
    import jax

    times = []
    start = time.perf_counter()
    for i in range(max(n, 1) + 1):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(i))
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return min(times[1:] or times), len(times)


def copies_per_sample(spec, n_classes: int) -> int:
    """Copies of a sample a training step pushes through the model: Algorithm 1/2's C - 1 wrong classes (or
    targets), clean + FGSM 2, else 1."""
    d = spec.defence
    if d is None:
        return 1
    if d.algorithm in ("alg1", "alg2"):
        return d.targets if d.targets is not None else n_classes - 1
    if d.algorithm == "fgsm_mix":
        return 2
    return 1


def measure_step(spec, shape: Shape, *, steps: int, budget: float, max_copies: int | None) -> StepCost:
    import jax
    import jax.numpy as jnp

    from . import train
    from .models import MODELS
    from .models.classifier import classifier_for, init_weights

    bs = spec.train.batch_size
    copies = copies_per_sample(spec, shape.n_classes)
    b = bs if max_copies is None else max(1, min(bs, max_copies // copies))
    n_batches = max(shape.n_train // bs, 1)
    clf = classifier_for(spec, shape.n_classes)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (b,) + shape.sample).astype(np.float32))
    y = jnp.asarray((np.arange(b) % shape.n_classes).astype(np.int32))
    weights = init_weights(clf, spec.seed, np.asarray(x))
    trainable = clf.trainable(weights)
    tx = train.optimizer(spec.train, trainable, MODELS[spec.experiment.model].param_groups,
                         n_batches * spec.train.epochs, n_batches)
    step = train.make_train_step(clf, tx, spec, shape.n_classes, n_batches)
    state = (weights, tx.init(trainable))
    root = jax.random.PRNGKey(spec.seed)
    index = jnp.int32(n_batches)  # past a one-epoch ramp: the full epsilon
    t0 = time.perf_counter()
    compiled = step.lower(state, x, y, root, index).compile()
    compile_s = time.perf_counter() - t0
    step_s, timed = _timed(lambda i: compiled(state, x, y, jax.random.fold_in(root, i), index)[1], steps, budget)
    return StepCost(compile_s, step_s * bs / b, timed, b)


def measure_eval(spec, shape: Shape, *, steps: int, budget: float, max_copies: int | None) -> EvalCost:
    import jax
    import jax.numpy as jnp

    from .attacks import ATTACKS
    from .attacks.base import cross_entropy
    from .models.classifier import classifier_for, init_weights

    ev = spec.evaluation
    n = min(ev.n_samples, shape.n_test)
    bs = min(ev.batch_size, n)
    b = bs if max_copies is None else max(1, min(bs, max_copies))
    clf = classifier_for(spec, shape.n_classes)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(-1, 1, (b,) + shape.sample).astype(np.float32))
    y = jnp.asarray((np.arange(b) % shape.n_classes).astype(np.int32))
    w = init_weights(clf, spec.seed, np.asarray(x))
    key = jax.random.PRNGKey(0)

    def score(w_, xx, yy, k):
        logits = clf.logits(w_, xx, k)
        return cross_entropy(logits, yy), jnp.argmax(logits, -1)

    grad = jax.grad(lambda w_, xx, yy, k: jnp.sum(cross_entropy(clf.logits(w_, xx, k), yy)), argnums=1)
    t0 = time.perf_counter()
    score_c = clf.jit(score).lower(w, x, y, key).compile()
    compile_fwd = time.perf_counter() - t0
    grad_c = clf.jit(grad).lower(w, x, y, key).compile()
    t0 = time.perf_counter()
    clf.jit(ATTACKS["pgd"].make(clf.logits, ev)).lower(w, x, y, key, jnp.float32(0.1)).compile()
    compile_attack = time.perf_counter() - t0
    fwd_s, _ = _timed(lambda i: score_c(w, x, y, jax.random.fold_in(key, i)), steps + 2, budget / 2)
    grad_s, _ = _timed(lambda i: grad_c(w, x, y, jax.random.fold_in(key, i)), steps + 2, budget / 2)
    return EvalCost(compile_fwd, compile_attack, fwd_s * bs / b, grad_s * bs / b, b)


def probe_seconds(probe, n_test: int, n_train: int, eval_batch: int, cost: EvalCost) -> tuple[float, float]:
    """(after every epoch, on top at a phase end) seconds of the per-epoch probe (train.epoch_probe, seed 004):
    the clean accuracy on the whole training set and, on the first `samples` test images, a `steps`-step PGD
    attack (one input gradient per step) scored clean and attacked; at a phase end the same with `phase_steps`."""
    batches = math.ceil(min(probe.samples, n_test) / eval_batch)

    def attack(steps):
        return batches * (steps * cost.grad_s + 2 * cost.fwd_s)

    return math.ceil(n_train / eval_batch) * cost.fwd_s + attack(probe.steps), attack(probe.phase_steps)


def train_seconds(epochs: int, steps_per_epoch: int, step_s: float, test_pass_s: float, *, clean_epochs: int = 0,
                  clean_step_s: float = 0.0, probe_s: float = 0.0, phase_probe_s: float = 0.0) -> float:
    """Training's time past start-up and compilation: every epoch its steps and the clean test pass; the first
    `clean_epochs` with the plain step (seed 004: clean training first); a per-epoch probe after every epoch and
    the phase-end attack after the clean phase and the last epoch (train.epoch_probe)."""
    robust_epochs = epochs - clean_epochs
    phase_ends = (clean_epochs > 0) + 1 if phase_probe_s else 0
    return (steps_per_epoch * (clean_epochs * clean_step_s + robust_epochs * step_s) + epochs * test_pass_s
            + epochs * probe_s + phase_ends * phase_probe_s)


def startup_seconds() -> float:
    """A job's start: the interpreter, JAX, Flax, Optax and this package imported (measured once, here)."""
    code = "import jax, flax, optax, jax.numpy as jnp; jnp.zeros(1).block_until_ready(); import advrepro.train"
    t0 = time.perf_counter()
    # the same platform as this process; on a GPU without grabbing the memory this process holds
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    return time.perf_counter() - t0


# ---- grouping: which experiments cost the same --------------------------------------------------------------


def _variant_class(variant) -> tuple:
    """The noise variants share one program (their kind, mode and scale are runtime constants); seed 004's depth
    and width variants are different networks."""
    return (variant.batch_norm, variant.activation, variant.noise != "none", variant.pni, variant.lwta_units,
            variant.convs, variant.width_scale)


def _defence_class(spec) -> tuple | None:
    d = spec.defence
    if d is None or d.algorithm == "smooth":  # label smoothing: plain training's work
        return None
    if d.algorithm in ("alg1", "alg2"):       # the same inner maximization; the losses differ by one mean
        return ("minmax", d.K, d.targets)
    return (d.algorithm, d.K, d.pool, d.cw_steps if "cw" in d.pool else 0)


def _arch(spec) -> tuple:
    a = dataclasses.replace(spec.architecture, frame_norm=())  # a per-frame LayerNorm: a small share
    return dataclasses.astuple(a)


def train_key(spec, shape: Shape, exact: bool) -> tuple:
    """Experiments with equal keys get one measurement of their training step: same input shape, classes,
    batch, model and sizes, variant class, defence class (algorithm kind, K, targets) and on-the-fly image
    augmentation. Not in the key: epsilon, step sizes, learning rates, dropout and frame norm (no or little
    cost). exact: one key per experiment (and per phase: its clean epochs' plain step apart)."""
    if exact:
        return (spec.id, _defence_class(spec))
    from .data import DATASETS

    exp = spec.experiment
    aug = exp.scenario.augmentation
    images = (aug.images, aug.crop) if DATASETS[exp.dataset].kind == "image" else None
    return (shape.sample, shape.n_classes, spec.train.batch_size, exp.model, _arch(spec),
            _variant_class(spec.variant), _defence_class(spec), images)


def eval_key(spec, shape: Shape, exact: bool) -> tuple:
    """Experiments with equal keys share the measured forward and gradient passes of their evaluation."""
    if exact:
        return (spec.id,)
    ev = spec.evaluation
    return (shape.sample, shape.n_classes, min(ev.batch_size, ev.n_samples, shape.n_test), spec.experiment.model,
            _arch(spec), _variant_class(spec.variant))


def _frame_norm(spec) -> bool:
    return spec.experiment.dataset.rsplit("-", 1)[-1] in spec.architecture.frame_norm


def train_program(spec, shape: Shape) -> tuple:
    """What makes a training step's compiled program: experiments with equal keys share one compilation through
    JAX's persistent cache (reg and specaug on audio, whose views are data; the noise variants, whose noise is a
    runtime constant), the others compile their own (epsilon, step sizes and the schedule are constants in it)."""
    from .data import DATASETS

    exp = spec.experiment
    aug = exp.scenario.augmentation
    images = DATASETS[exp.dataset].kind == "image" and aug.images
    dropout = spec.regularization.dropout if aug.dropout else 0.0
    return (shape.sample, shape.n_classes, shape.n_train // spec.train.batch_size, _frame_norm(spec), exp.model,
            dataclasses.astuple(spec.architecture), _variant_class(spec.variant), dropout,
            None if spec.defence is None else dataclasses.astuple(spec.defence), dataclasses.astuple(spec.train),
            (aug.crop, dataclasses.astuple(spec.regularization)) if images else None, spec.seed)


def eval_program(spec, shape: Shape) -> tuple:
    """What makes an evaluation's compiled programs: the model (not the scenario: test mode has no dropout),
    its input, and the evaluation spec."""
    return (shape.sample, shape.n_classes, _frame_norm(spec), spec.experiment.model,
            dataclasses.astuple(spec.architecture), _variant_class(spec.variant), dataclasses.astuple(spec.evaluation))


# ---- the estimate --------------------------------------------------------------------------------------------


@dataclass
class ExperimentEstimate:
    id: str
    dataset: str
    batch: int
    epochs: int
    steps_per_epoch: int
    step: StepCost
    eval: EvalCost
    train_s: float
    train_compile_s: float
    eval_s: float
    eval_compile_s: float
    eval_bounds: tuple[float, float]   # evaluation seconds if no / every sample reaches the strong cascade
    startup_s: float
    measured_as: str
    eval_measured_as: str

    @property
    def total_s(self) -> float:
        return self.train_s + self.eval_s


def _schedule(durations: Iterable[float], devices: int) -> float:
    """Makespan of jobs spread longest first over `devices` (list scheduling)."""
    loads = [0.0] * devices
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + d)
    return max(loads)


def fmt_s(seconds: float) -> str:
    """7.3 s, 12 min 4 s, 3 h 20 min, 2 d 4 h."""
    s = float(seconds)
    if s < 59.95:
        return f"{s:.1f} s"
    if round(s) < 3600:
        n = round(s)
        return f"{n // 60} min {n % 60} s"
    if round(s / 60) < 1440:
        n = round(s / 60)
        return f"{n // 60} h {n % 60} min"
    n = round(s / 3600)
    return f"{n // 24} d {n % 24} h"


def estimate(params: dict, *, devices: int = 1, steps: int = 3, budget: float = 5.0, exact: bool = False,
             robust_fraction: float = 0.5, max_copies: int | None = None, datasets: tuple[str, ...] = (),
             root: Path = Path("."), out=print) -> dict:
    """Measure, estimate and print; returns {"experiments": [...], "tables": {...}, "total": {...}}."""
    import jax

    from . import runtime
    from .data import DATASETS
    from .experiments import SEED_TABLES, TABLES, active, all_experiments, table_experiments
    from .spec import experiment_spec

    if devices < 1:
        raise UsageError(f"--devices: bad value {devices}: at least 1")
    if steps < 1:
        raise UsageError(f"--steps: bad value {steps}: at least 1")
    if not 0 <= robust_fraction <= 1:
        raise UsageError(f"--robust-fraction: bad value {robust_fraction}: between 0 and 1")
    if max_copies is not None and max_copies < 1:
        raise UsageError(f"--max-copies: bad value {max_copies}: at least 1")
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise UsageError(f"--datasets: unknown dataset {unknown[0]!r}; known: {', '.join(DATASETS)}")
    experiments = [e for e in all_experiments(params) if not datasets or e.dataset in datasets]
    if not experiments:
        raise UsageError(f"no experiment of profile {params['profile']!r} on the datasets {', '.join(datasets)}")

    started = time.perf_counter()
    machine = runtime.machine()
    device = jax.devices()[0]
    where = (f"GPU {device.device_kind}" if device.platform == "gpu"
             else f"CPU {machine['cpu']}, {machine['cores']} cores, one thread per job")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load >= 1.0:
        where += f" (load average {load:.1f} at the start: other processes may slow the measurements)"
    out(f"advrepro estimate: profile {params['profile']!r}, {len(experiments)} experiments, on {where}; "
        f"{devices} device{'s' if devices > 1 else ''} "
        f"({'every experiment measured' if exact else 'one measurement per group of equal cost'})")
    shapes = {d: dataset_shape(params, d, root) for d in dict.fromkeys(e.dataset for e in experiments)}
    for d, s in shapes.items():
        out(f"  sizes {d}: input {list(s.sample)}, {s.n_train} train / {s.n_test} test, {s.n_classes} classes "
            f"- from {s.origin}")
    startup = startup_seconds()
    out(f"  job start-up (interpreter, JAX, Flax, Optax imported): {startup:.1f} s, measured here")

    compiled_train: set[tuple] = set()   # programs an earlier job compiled: JAX's persistent cache has them
    compiled_eval: set[tuple] = set()
    step_costs: dict[tuple, tuple[str, StepCost]] = {}
    eval_costs: dict[tuple, tuple[str, EvalCost]] = {}
    results: list[ExperimentEstimate] = []
    for exp in experiments:
        spec = experiment_spec(params, exp)
        shape = shapes[exp.dataset]
        tk, ek = train_key(spec, shape, exact), eval_key(spec, shape, exact)
        if tk not in step_costs:
            step_costs[tk] = (exp.id, measure_step(spec, shape, steps=steps, budget=budget, max_copies=max_copies))
        if ek not in eval_costs:
            eval_costs[ek] = (exp.id, measure_eval(spec, shape, steps=steps, budget=budget, max_copies=max_copies))
        (step_as, step), (eval_as, ev_cost) = step_costs[tk], eval_costs[ek]
        ev = spec.evaluation
        bs = spec.train.batch_size
        steps_per_epoch = shape.n_train // bs
        eval_batch = min(ev.batch_size, shape.n_test)
        test_batches = math.ceil(shape.n_test / eval_batch)
        tp, ep = train_program(spec, shape), eval_program(spec, shape)
        train_compile = 0.0 if tp in compiled_train else step.compile_s + ev_cost.compile_fwd_s
        compiled_train.add(tp)
        clean_epochs = spec.defence.clean_epochs if spec.defence is not None else 0
        clean_step_s = 0.0
        if clean_epochs:  # the clean phase's plain step: its own program, measured and compiled apart
            plain = dataclasses.replace(spec, defence=None)
            pk, pp = train_key(plain, shape, exact), train_program(plain, shape)
            if pk not in step_costs:
                step_costs[pk] = (exp.id, measure_step(plain, shape, steps=steps, budget=budget,
                                                       max_copies=max_copies))
            clean_step_s = step_costs[pk][1].step_s
            train_compile += 0.0 if pp in compiled_train else step_costs[pk][1].compile_s
            compiled_train.add(pp)
        probe_s, phase_probe_s = ((0.0, 0.0) if spec.probe is None else
                                  probe_seconds(spec.probe, shape.n_test, shape.n_train, eval_batch, ev_cost))
        train_s = startup + train_compile + train_seconds(
            spec.train.epochs, steps_per_epoch, step.step_s, test_batches * ev_cost.fwd_s, clean_epochs=clean_epochs,
            clean_step_s=clean_step_s, probe_s=probe_s, phase_probe_s=phase_probe_s)
        n = min(ev.n_samples, shape.n_test)
        plan = eval_plan(spec.variant.stochastic, ev, DATASETS[exp.dataset].kind, shape.n_classes, n,
                         robust_fraction)
        eval_compile = 0.0 if ep in compiled_eval else plan.programs * ev_cost.compile_attack_s
        compiled_eval.add(ep)

        def eval_seconds(i, plan=plan, ev_cost=ev_cost, eval_compile=eval_compile):
            return (startup + eval_compile + (plan.grads + plan.strong_grads[i]) * ev_cost.grad_s
                    + (plan.fwds + plan.strong_fwds[i]) * ev_cost.fwd_s)

        est = ExperimentEstimate(exp.id, exp.dataset, bs, spec.train.epochs, steps_per_epoch, step, ev_cost, train_s,
                                 train_compile, eval_seconds(0), eval_compile, (eval_seconds(1), eval_seconds(2)),
                                 startup, step_as, eval_as)
        results.append(est)
        log.info("%s: train %.1f s, evaluate %.1f s", exp.id, est.train_s, est.eval_s)

    by_id = {e.id: e for e in results}
    out("")
    out(f"{'experiment':34} {'steps':>7} {'ms/step':>9} {'train s':>9} {'compile s':>9} {'eval s':>9} "
        f"{'compile s':>9} {'total s':>9}  measured as")
    for e in results:
        same = "" if e.measured_as == e.id else e.measured_as
        scaled = f" (measured at batch {e.step.batch}, scaled)" if e.step.batch < e.batch else ""
        ms = 1e3 * e.step.step_s
        out(f"{e.id:34} {e.epochs * e.steps_per_epoch:7d} {ms:9.{2 if ms < 1000 else 0}f} {e.train_s:9.1f} "
            f"{e.train_compile_s:9.1f} {e.eval_s:9.1f} {e.eval_compile_s:9.1f} {e.total_s:9.1f}  {same}{scaled}")

    tables = {}
    out("")
    for table in TABLES + active(params, SEED_TABLES):
        ids = [x.id for x in table_experiments(params, table) if x.id in by_id]
        if not ids:
            continue
        jobs = [by_id[i].total_s for i in ids]
        tables[table.id] = {"experiments": len(ids), "job_s": sum(jobs), "wall_s": _schedule(jobs, devices)}
        out(f"table {table.id:10} {len(ids):3d} experiments: jobs {fmt_s(sum(jobs)):>14}, "
            f"on {devices} device{'s' if devices > 1 else ''} {fmt_s(tables[table.id]['wall_s']):>14}")
    in_tables = {x.id for t in TABLES + active(params, SEED_TABLES) for x in table_experiments(params, t)}
    figures_only = [e for e in results if e.id not in in_tables]
    if figures_only:
        out(f"figures only   {len(figures_only):3d} experiments: jobs {fmt_s(sum(e.total_s for e in figures_only))}")
    train_total = sum(e.train_s for e in results)
    eval_total = sum(e.eval_s for e in results)
    compile_total = sum(e.train_compile_s + e.eval_compile_s for e in results)
    lo = sum(e.train_s + e.eval_bounds[0] for e in results)
    hi = sum(e.train_s + e.eval_bounds[1] for e in results)
    wall = _schedule([e.total_s for e in results], devices)
    total = {"experiments": len(results), "train_s": train_total, "eval_s": eval_total, "compile_s": compile_total,
             "job_s": train_total + eval_total, "wall_s": wall, "devices": devices,
             "job_s_bounds": (lo, hi), "measure_s": time.perf_counter() - started}
    out(f"total: {len(results)} experiments, training {fmt_s(train_total)} + evaluation {fmt_s(eval_total)} "
        f"= {fmt_s(train_total + eval_total)} of jobs (of it compilation {fmt_s(compile_total)}, start-up "
        f"{fmt_s(2 * startup * len(results))}); wall time on {devices} device{'s' if devices > 1 else ''}: "
        f"{fmt_s(wall)}")
    counts = sorted({1, 2, 4, 8, 16, devices})
    out("  wall time by devices: " + ", ".join(f"{n}: {fmt_s(_schedule([e.total_s for e in results], n))}"
                                              for n in counts))
    out(f"  strong evaluation on {robust_fraction:.0%} of the samples; bounds: none {fmt_s(lo)}, all {fmt_s(hi)} "
        f"of jobs. Not included: fetch and prepare of the data, tables, figures, the paper, part M2's model runs.")
    out(f"  measured {len(step_costs)} training steps and {len(eval_costs)} evaluation models in "
        f"{fmt_s(total['measure_s'])}")
    return {"experiments": results, "tables": tables, "total": total}


# ---- against a real run --------------------------------------------------------------------------------------

_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) ")


def log_span(path: Path) -> float | None:
    """Seconds from a job log's first timestamp to its last (HH:MM:SS; a run past midnight wraps)."""
    stamps = []
    for line in path.read_text(errors="replace").splitlines():
        m = _STAMP.match(line)
        if m:
            h, mi, s = map(int, m.groups())
            stamps.append(3600 * h + 60 * mi + s)
    if len(stamps) < 2:
        return None
    span, prev = 0, stamps[0]
    for t in stamps[1:]:
        span += (t - prev) % 86400
        prev = t
    return float(span)


def compare(results: list[ExperimentEstimate], results_dir: Path, out=print) -> dict:
    """Estimated against real job times: results/logs/{train,evaluate}/<id>.log spans (first to last
    timestamp: the interpreter and JAX's import are before the first line) and results/timing/<id>.json
    (training's epoch seconds, the machine that ran them)."""
    import json

    rows = {}
    for e in results:
        train_log = results_dir / "logs" / "train" / f"{e.id}.log"
        eval_log = results_dir / "logs" / "evaluate" / f"{e.id}.log"
        timing = results_dir / "timing" / f"{e.id}.json"
        row = {}
        if train_log.is_file():
            row["train_log_s"] = log_span(train_log)
        if eval_log.is_file():
            row["eval_log_s"] = log_span(eval_log)
        if timing.is_file():
            t = json.loads(timing.read_text())
            row["epochs_s"] = sum(t["epoch_seconds"])
            row["cpu"] = t.get("machine", {}).get("cpu", "?")
        if row:
            rows[e.id] = row
    if not rows:
        out(f"compare: no job logs or timing files under {results_dir}")
        return {}
    out("")
    out(f"against the run in {results_dir} (logs: first to last line; timing: the epochs' seconds)")
    out(f"{'experiment':34} {'train est':>9} {'log':>7} {'epochs est':>10} {'timing':>7} {'eval est':>9} "
        f"{'log':>7}  machine of the timing")
    sums = {k: 0.0 for k in ("train_est", "train_log", "epochs_est", "epochs", "eval_est", "eval_log")}
    for e in results:
        r = rows.get(e.id)
        if r is None:
            continue
        epochs_est = e.train_s - e.startup_s  # the first epoch compiles the step
        cells = [f"{e.id:34}", f"{e.train_s:9.1f}", _cell(r.get("train_log_s"), 7), f"{epochs_est:10.1f}",
                 _cell(r.get("epochs_s"), 7), f"{e.eval_s:9.1f}", _cell(r.get("eval_log_s"), 7), r.get("cpu", "")]
        out(" ".join(cells[:-1]) + "  " + cells[-1])
        if r.get("train_log_s") is not None:
            sums["train_est"] += e.train_s
            sums["train_log"] += r["train_log_s"]
        if r.get("epochs_s") is not None:
            sums["epochs_est"] += epochs_est
            sums["epochs"] += r["epochs_s"]
        if r.get("eval_log_s") is not None:
            sums["eval_est"] += e.eval_s
            sums["eval_log"] += r["eval_log_s"]
    for what, est, real in (("training jobs", "train_est", "train_log"), ("training epochs", "epochs_est", "epochs"),
                            ("evaluation jobs", "eval_est", "eval_log")):
        if sums[real]:
            out(f"sum of {what}: estimated {fmt_s(sums[est])}, real {fmt_s(sums[real])} "
                f"(estimate / real {sums[est] / sums[real]:.2f})")
    return {"rows": rows, "sums": sums}


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.1f}"
