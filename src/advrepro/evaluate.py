"""Evaluation: clean accuracy and every registered attack (attacks.ATTACKS) at each epsilon.

Writes results/metrics/<exp>.json (accuracy and mean loss per attack, the worst case over the strong
attacks per epsilon, the per-sample correctness bits of each) and
results/examples/<exp>.npz (the first test input of every class, attacked at the figures'
epsilon: original / adversarial pairs for the example figures).
"""
from __future__ import annotations

import dataclasses
import logging
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from . import paths
from .attacks import ATTACKS, BOX, STRONG, chosen, columns, epsilon_attacks, worst_key
from .attacks.base import cross_entropy
from .data import DATASETS, Arrays
from .errors import CheckpointError, DataError
from .io import atomic_paths, pack, refuse_directories, unpack, write_json, write_npz  # noqa: F401 (unpack: tests)
from .models.classifier import load_trained
from .spec import EvaluationSpec, ExperimentSpec

log = logging.getLogger(__name__)


def compiled_attacks(clf, ev: EvaluationSpec, kind: str) -> dict:
    """{attack name: jitted fn(weights, x, y, rng, eps) -> adversarial x} for every registered attack that
    applies to this kind of data; epsilon is traced, so each attack compiles once per batch shape and
    serves every epsilon, the metrics and the examples alike."""
    return {a.name: clf.jit(a.make(clf.logits, ev)) for a in chosen(ev, kind)}


def attack_key(seed: int, column: str, batch: int):
    """The PRNG key an attack gets: fold(seed, 4, crc32(column), batch). A column's stream does not
    depend on which other attacks are registered."""
    root = jax.random.fold_in(jax.random.PRNGKey(seed), 4)
    return jax.random.fold_in(jax.random.fold_in(root, zlib.crc32(column.encode())), batch)


SCORE_STREAM = 0x73636F72  # "scor"


def score_key(key):
    """The model-noise key of the forward pass that scores an attack's output (stochastic models), apart from
    the attack's own draws."""
    return jax.random.fold_in(key, SCORE_STREAM)



def attack_suite(compiled: dict, ev: EvaluationSpec, kind: str) -> dict:
    """{metric key: fn(weights, x, y, rng) -> adversarial x}, in the metrics files' order."""
    suite = {}
    for col in columns(ev, kind):
        eps = jnp.float32(0 if col.epsilon is None else col.epsilon)
        suite[col.key] = lambda w, x, y, rng, f=compiled[col.attack], e=eps: f(w, x, y, rng, e)
    return suite


def example_indices(y: np.ndarray) -> np.ndarray:
    """The first test sample of every class, in class order (the figures show e.g. the digit four)."""
    classes, first = np.unique(y, return_index=True)
    return first[np.argsort(classes)]


def examples(compiled: dict, predict, weights, ev: EvaluationSpec, data: Arrays, batch: int, seed: int) -> dict:
    """Original and adversarial example inputs and predictions at `example_epsilon`, for the first
    test input of every class (of every fine class where the labels group classes, UrbanSound8K).

    The examples are padded to the evaluation batch shape so they run through the attacks
    already compiled for the metrics (attacks act per sample, so padding changes nothing)."""
    idx = example_indices(data.y_test if data.fine_test is None else data.fine_test)
    k = len(idx)
    pad = np.arange(max(batch, k)) % k
    x, y = jnp.asarray(data.x_test[idx][pad]), jnp.asarray(data.y_test[idx][pad])
    clean_key = score_key(attack_key(seed, "examples/plain", 0))
    out = {"x": np.asarray(x[:k]), "y": np.asarray(y[:k]), "index": idx, "epsilon": np.float32(ev.example_epsilon),
           "pred": np.asarray(predict(weights, x, clean_key)[:k])}
    if data.fine_test is not None:
        out["fine"] = data.fine_test[idx]
    for name, attack in compiled.items():
        if not ATTACKS[name].examples:
            continue
        key = attack_key(seed, f"examples/{name}", 0)
        x_adv = attack(weights, x, y, key, jnp.float32(ATTACKS[name].example_value(ev)))
        out[f"{name}_x"] = np.asarray(x_adv[:k])
        if ATTACKS[name].grid != "epsilons":  # its own grid: say which of its values the examples use
            out[f"{name}_epsilon"] = np.float32(ATTACKS[name].example_value(ev))
        out[f"{name}_pred"] = np.asarray(predict(weights, x_adv, score_key(key))[:k])
    return out


def feature_arrays(clf, weights, x_examples, x_all, y_all, bs: int, seed: int) -> dict:
    """What seed 003's analyses read from a model's blocks (`Classifier.intermediates`): for the example images,
    `heat_<block>`, the L2 norm over channels of every block output that is still a map (Figure 4.4), and
    `heat_probs`, their softmax; for the attacked samples, `features`, the output of the first block that is one
    vector per image (14x14 stack: the conv to 48 channels; 28x28: the third pooling conv, the seed's "block 8"),
    for the 2-D embedding (Figure 5.9). Noise keys: the clean forward passes' (examples, plain column)."""
    forward = clf.jit(clf.intermediates)
    logits, blocks = forward(weights, jnp.asarray(x_examples), score_key(attack_key(seed, "examples/plain", 0)))
    if not blocks:
        raise ValueError("evaluation.features: this model keeps no block outputs (only the CNN does)")
    names = sorted(blocks, key=lambda name: int(name.removeprefix("block")))
    out = {f"heat_{name}": np.asarray(jnp.sqrt(jnp.sum(blocks[name] ** 2, axis=-1)))
           for name in names if blocks[name].ndim == 4 and blocks[name].shape[1] * blocks[name].shape[2] > 1}
    out["heat_probs"] = np.asarray(jax.nn.softmax(logits, -1))
    feature = next(name for name in names if blocks[name].ndim == 2 or blocks[name].shape[1:3] == (1, 1))
    chunks = []
    for b, i in enumerate(range(0, len(x_all), bs)):
        _, bl = forward(weights, jnp.asarray(x_all[i:i + bs]), score_key(attack_key(seed, ATTACKS["plain"].key(), b)))
        chunks.append(np.asarray(bl[feature]).reshape(len(x_all[i:i + bs]), -1))
    out["features"], out["features_y"] = np.concatenate(chunks), np.asarray(y_all)
    out["feature_block"] = np.array(feature)
    return out


def run_on(attack, score, weights, x_all, y_all, idx: np.ndarray, bs: int, seed: int, column: str, eps):
    """Attack the samples `idx` in batches of bs (the last padded by repetition: the shape the attacks
    were compiled for); returns, per sample of idx, whether it is still classified correctly."""
    ok = np.ones(len(idx), bool)
    for b, i in enumerate(range(0, len(idx), bs)):
        chunk = idx[i:i + bs]
        padded = np.resize(chunk, bs)
        x, y = jnp.asarray(x_all[padded]), jnp.asarray(y_all[padded])
        key = attack_key(seed, column, b)
        _, pred = score(weights, attack(weights, x, y, key, eps), y, score_key(key))
        ok[i:i + bs] = np.asarray(pred == y)[:len(chunk)]
    return ok


def strong_attacks(clf) -> list:
    """The strong cascade for this classifier: the attacks for stochastic models only (EOT) join it when the
    model draws noise."""
    return [a for a in STRONG.values() if clf.stochastic or not a.stochastic]


def strong_worst_case(clf, weights, ev: EvaluationSpec, kind: str, x_all, y_all, correct: dict, score,
                      seed: int, bar) -> tuple[dict, dict]:
    """The worst case per sample over every attack, at each epsilon (ascending): a sample is robust at
    epsilon if it is correct clean, under the thesis's attacks at epsilon, at every smaller epsilon (an
    adversarial example of a smaller ball lies in the larger one) and under each strong attack, run in
    STRONG's order on the samples still robust. Returns {worst_<eps>, box: correctness} and the strong
    section of the metrics (which attack broke how many samples, the sanity figures)."""
    bs = min(ev.batch_size, len(y_all))
    strong = strong_attacks(clf)
    compiled = {a.name: clf.jit(a.make(clf.logits, ev)) for a in strong}
    robust = correct[ATTACKS["plain"].key()].copy()
    out, found = {}, {}
    for eps in ev.strong_at:
        for attack in epsilon_attacks(kind, ev):
            for e in ev.epsilons:
                if e <= eps:  # an adversarial example of a smaller ball lies in this one
                    robust &= correct[attack.key(e)]
        found[f"{eps:g}"] = counts = {"thesis": int(correct["plain"].sum() - robust.sum())}
        for a in strong:
            idx = np.flatnonzero(robust)
            if len(idx):
                ok = run_on(compiled[a.name], score, weights, x_all, y_all, idx, bs, seed, f"{a.name}_{eps:g}",
                            jnp.float32(eps))
                robust[idx[~ok]] = False
                counts[a.name] = int((~ok).sum())
            else:
                counts[a.name] = 0
            bar.update()
        out[worst_key(eps)] = robust.copy()
        log.info("worst case at %g: %d of %d robust; broken by %s", eps, robust.sum(), len(robust), counts)
    # Sanity: at box_epsilon (2: the whole [-1, 1] box) PGD with restarts should leave nothing correct.
    box = robust.copy()
    idx = np.flatnonzero(box)
    if len(idx):
        box[idx] = run_on(compiled[strong[0].name], score, weights, x_all, y_all, idx, bs, seed, BOX,
                          jnp.float32(ev.strong.box_epsilon))
    bar.update()
    out[BOX] = box
    grad = clf.jit(jax.grad(lambda w, x, y, k: jnp.sum(cross_entropy(clf.logits(w, x, k), y)), argnums=1))
    zero = 0
    for b, i in enumerate(range(0, len(y_all), bs)):
        g = np.asarray(grad(weights, jnp.asarray(x_all[i:i + bs]), jnp.asarray(y_all[i:i + bs]),
                            score_key(attack_key(seed, "gradient", b))))
        zero += int(np.sum(np.max(np.abs(g.reshape(len(g), -1)), -1) == 0))
    summary = {"found": found, "box_epsilon": ev.strong.box_epsilon,
               "zero_gradient": round(zero / len(y_all), 6), "sizes": dataclasses.asdict(ev.strong)}
    return out, summary


def evaluate(spec: ExperimentSpec, data: Arrays, *, progress: bool = True) -> dict:
    """Every registered attack at every epsilon, then the strong worst case; metrics and examples are
    computed in full before either file is written. Accuracy under attack counts a sample robust only if it
    is also classified correctly clean (delta = 0 is in the ball): robust accuracy <= natural accuracy."""
    exp, ev = spec.experiment, spec.evaluation
    kind = DATASETS[exp.dataset].kind
    if len(data.y_test) == 0:
        raise DataError(f"{paths.processed(exp.dataset)}: the test set is empty; nothing to evaluate")
    outputs = (paths.metrics(exp.id), paths.examples(exp.id))
    refuse_directories(*outputs)  # before the work, not after it
    clf, weights = load_trained(spec, data)
    n = min(ev.n_samples, len(data.y_test))
    x_all, y_all = data.x_test[:n], data.y_test[:n]
    bs = ev.batch_size
    score = clf.jit(lambda w, x, y, k: (cross_entropy(clf.logits(w, x, k), y), jnp.argmax(clf.logits(w, x, k), -1)))
    compiled = compiled_attacks(clf, ev, kind)
    suite = attack_suite(compiled, ev, kind)
    correct, loss = {}, {}
    batches = range(0, n, bs)
    strong_steps = len(ev.strong_at) * len(strong_attacks(clf)) + 1
    with tqdm(total=len(suite) * len(batches) + strong_steps, desc=f"evaluate {exp.id}", disable=not progress,
              mininterval=2.0) as bar:
        for key, attack in suite.items():
            ok, total_loss = np.zeros(n, bool), 0.0
            for b, i in enumerate(batches):
                x, y = jnp.asarray(x_all[i:i + bs]), jnp.asarray(y_all[i:i + bs])
                k = attack_key(spec.seed, key, b)
                x_adv = attack(weights, x, y, k)
                ce, pred = score(weights, x_adv, y, score_key(k))
                ok[i:i + bs] = np.asarray(pred == y)
                total_loss += float(jnp.sum(ce))
                bar.update()
            if not np.isfinite(total_loss):  # NaN/inf logits would otherwise pass as numbers
                raise CheckpointError(f"{paths.checkpoint(exp.id)}: the model gives NaN or infinite logits on the "
                                      f"{'clean' if key == ATTACKS['plain'].key() else key} test inputs of "
                                      f"{paths.processed(exp.dataset)}; retrain it")
            correct[key] = ok
            loss[key] = round(total_loss / n, 6)
        clean = correct[ATTACKS["plain"].key()]
        for key in correct:
            correct[key] = correct[key] & clean       # robust: correct clean and under the attack
        worst, strong = strong_worst_case(clf, weights, ev, kind, x_all, y_all, correct, score, spec.seed, bar)
        correct.update(worst)
    accuracy = {key: round(float(ok.mean()), 6) for key, ok in correct.items()}
    for key, ok in correct.items():
        if np.any(ok & ~clean):
            raise AssertionError(f"{exp.id}: {key}: a sample counted robust is misclassified clean")
        log.info("%s %-10s accuracy %.3f%s", exp.id, key, accuracy[key], f" loss {loss[key]:.4f}" if key in loss
                 else "")
    metrics = {"experiment": exp.id, "dataset": exp.dataset, "model": exp.model, "scenario": exp.scenario.name,
               "n_samples": n, "accuracy": accuracy, "loss": loss, "strong": strong,
               "correct": {key: pack(ok) for key, ok in correct.items()}}
    predict = lambda w, x, k: score(w, x, jnp.zeros(x.shape[0], jnp.int32), k)[1]  # noqa: E731 (same compiled fn)
    example_arrays = examples(compiled, predict, weights, ev, data, min(bs, n), spec.seed)
    if ev.confidence:  # the clean softmax of every attacked sample, drawn as the plain column's forward passes
        probs = clf.jit(lambda w, x, k: jax.nn.softmax(clf.logits(w, x, k), -1))
        example_arrays["probabilities"] = np.concatenate([
            np.asarray(probs(weights, jnp.asarray(x_all[i:i + bs]),
                             score_key(attack_key(spec.seed, ATTACKS["plain"].key(), b))))
            for b, i in enumerate(range(0, n, bs))])
    if ev.features:
        example_arrays.update(feature_arrays(clf, weights, example_arrays["x"], x_all, y_all, bs, spec.seed))
    with atomic_paths(*outputs) as (metrics_tmp, examples_tmp):  # both or neither
        write_json(metrics_tmp, metrics)
        write_npz(examples_tmp, **example_arrays)
    return metrics
