"""Evaluation: clean accuracy and every registered attack (attacks.ATTACKS) at each epsilon.

Writes results/metrics/<exp>.json (accuracy and mean loss per attack) and
results/examples/<exp>.npz (the first test input of every class, attacked at the figures'
epsilon: original / adversarial pairs for the example figures).
"""
from __future__ import annotations

import logging
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from . import paths
from .attacks import ATTACKS, columns
from .attacks.base import cross_entropy
from .data import DATASETS, Arrays
from .io import write_json, write_npz
from .models.classifier import load_trained
from .spec import EvaluationSpec, ExperimentSpec

log = logging.getLogger(__name__)


def compiled_attacks(clf, ev: EvaluationSpec, kind: str) -> dict:
    """{attack name: jitted fn(weights, x, y, rng, eps) -> adversarial x} for every registered attack that
    applies to this kind of data; epsilon is traced, so each attack compiles once per batch shape and
    serves every epsilon, the metrics and the examples alike."""
    return {a.name: jax.jit(a.make(clf.logits, ev)) for a in ATTACKS.values() if kind in a.kinds}


def attack_key(seed: int, column: str, batch: int):
    """The PRNG key an attack gets: fold(seed, 4, crc32(column), batch). A column's stream does not
    depend on which other attacks are registered."""
    root = jax.random.fold_in(jax.random.PRNGKey(seed), 4)
    return jax.random.fold_in(jax.random.fold_in(root, zlib.crc32(column.encode())), batch)


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
    eps = jnp.float32(ev.example_epsilon)
    out = {"x": np.asarray(x[:k]), "y": np.asarray(y[:k]), "index": idx, "epsilon": np.float32(ev.example_epsilon),
           "pred": np.asarray(predict(weights, x)[:k])}
    if data.fine_test is not None:
        out["fine"] = data.fine_test[idx]
    for name, attack in compiled.items():
        if not ATTACKS[name].examples:
            continue
        x_adv = attack(weights, x, y, attack_key(seed, f"examples/{name}", 0), eps)
        out[f"{name}_x"] = np.asarray(x_adv[:k])
        out[f"{name}_pred"] = np.asarray(predict(weights, x_adv)[:k])
    return out


def evaluate(spec: ExperimentSpec, data: Arrays, *, progress: bool = True) -> dict:
    exp, ev = spec.experiment, spec.evaluation
    kind = DATASETS[exp.dataset].kind
    clf, weights = load_trained(spec, data)
    n = min(ev.n_samples, len(data.y_test))
    x_all, y_all = data.x_test[:n], data.y_test[:n]
    bs = ev.batch_size
    score = jax.jit(lambda w, x, y: (cross_entropy(clf.logits(w, x), y), jnp.argmax(clf.logits(w, x), -1)))
    compiled = compiled_attacks(clf, ev, kind)
    suite = attack_suite(compiled, ev, kind)
    accuracy, loss = {}, {}
    batches = range(0, n, bs)
    with tqdm(total=len(suite) * len(batches), desc=f"evaluate {exp.id}", disable=not progress,
              mininterval=2.0) as bar:
        for key, attack in suite.items():
            correct = total_loss = 0.0
            for b, i in enumerate(batches):
                x, y = jnp.asarray(x_all[i:i + bs]), jnp.asarray(y_all[i:i + bs])
                x_adv = attack(weights, x, y, attack_key(spec.seed, key, b))
                ce, pred = score(weights, x_adv, y)
                correct += float(jnp.sum(pred == y))
                total_loss += float(jnp.sum(ce))
                bar.update()
            accuracy[key] = round(correct / n, 6)
            loss[key] = round(total_loss / n, 6)
            log.info("%s %-10s accuracy %.3f loss %.4f", exp.id, key, accuracy[key], loss[key])
    metrics = {"experiment": exp.id, "dataset": exp.dataset, "model": exp.model, "scenario": exp.scenario.name,
               "n_samples": n, "accuracy": accuracy, "loss": loss}
    write_json(paths.metrics(exp.id), metrics)
    predict = lambda w, x: score(w, x, jnp.zeros(x.shape[0], jnp.int32))[1]  # noqa: E731 (same compiled fn)
    write_npz(paths.examples(exp.id), **examples(compiled, predict, weights, ev, data, min(bs, n), spec.seed))
    return metrics
