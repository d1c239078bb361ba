"""Evaluation: clean accuracy, FGSM and PGD at each epsilon, the spatial attack.

Writes results/metrics/<exp>.json (accuracy and mean loss per attack) and
results/examples/<exp>.npz (the first test input of every class, attacked at the figures'
epsilon: original / adversarial pairs for the example figures).
"""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from . import attacks, paths
from .data import Arrays
from .experiments import DATASETS, Experiment, config
from .io import write_json, write_npz
from .train import load_trained

log = logging.getLogger(__name__)


def attack_suite(clf, ev: dict, image: bool):
    """{metric key: jitted fn(params, x, y) -> adversarial x}; epsilon is traced, so one compile per attack."""
    pgd = jax.jit(lambda p, x, y, eps: attacks.pgd(clf.logits, p, x, y, eps, ev["pgd_steps"], ev["pgd_stepsize"]))
    fgsm = jax.jit(lambda p, x, y, eps: attacks.fgsm(clf.logits, p, x, y, eps))
    suite = {"plain": lambda p, x, y: x}
    for e in ev["epsilons"]:
        suite[f"pgd_{e:g}"] = lambda p, x, y, e=e: pgd(p, x, y, jnp.float32(e))
    for e in ev["epsilons"]:
        suite[f"fgsm_{e:g}"] = lambda p, x, y, e=e: fgsm(p, x, y, jnp.float32(e))
    if image:
        grid = attacks.spatial_grid(ev["spatial_rotations"], ev["spatial_translations"])
        spatial = jax.jit(lambda p, x, y: attacks.spatial(clf.logits, p, x, y, grid))
        suite["spatial"] = spatial
    return suite


def example_indices(y: np.ndarray) -> np.ndarray:
    """The first test sample of every class, in class order (the figures show e.g. the digit four)."""
    classes, first = np.unique(y, return_index=True)
    return first[np.argsort(classes)]


def examples(clf, weights, ev: dict, data: Arrays, image: bool) -> dict:
    """Original and adversarial example inputs and predictions at `example_epsilon`."""
    idx = example_indices(data.y_test)
    x, y = jnp.asarray(data.x_test[idx]), jnp.asarray(data.y_test[idx])
    eps = jnp.float32(ev["example_epsilon"])
    adversarial = {"pgd": attacks.pgd(clf.logits, weights, x, y, eps, ev["pgd_steps"], ev["pgd_stepsize"]),
                   "fgsm": attacks.fgsm(clf.logits, weights, x, y, eps)}
    if image:
        grid = attacks.spatial_grid(ev["spatial_rotations"], ev["spatial_translations"])
        adversarial["spatial"] = attacks.spatial(clf.logits, weights, x, y, grid)
    out = {"x": np.asarray(x), "y": np.asarray(y), "index": idx, "epsilon": np.float32(ev["example_epsilon"]),
           "pred": np.asarray(jnp.argmax(clf.logits(weights, x), -1))}
    for name, x_adv in adversarial.items():
        out[f"{name}_x"] = np.asarray(x_adv)
        out[f"{name}_pred"] = np.asarray(jnp.argmax(clf.logits(weights, x_adv), -1))
    return out


def evaluate(params: dict, exp: Experiment, data: Arrays, *, progress: bool = True) -> dict:
    ev = config(params, exp.dataset)["evaluation"]
    image = DATASETS[exp.dataset].kind == "image"
    clf, weights = load_trained(params, exp, data)
    n = min(ev["n_samples"], len(data.y_test))
    x_all, y_all = data.x_test[:n], data.y_test[:n]
    bs = ev["batch_size"]
    score = jax.jit(lambda p, x, y: (attacks.cross_entropy(clf.logits(p, x), y), jnp.argmax(clf.logits(p, x), -1)))
    suite = attack_suite(clf, ev, image=image)
    accuracy, loss = {}, {}
    batches = range(0, n, bs)
    with tqdm(total=len(suite) * len(batches), desc=f"evaluate {exp.id}", disable=not progress,
              mininterval=2.0) as bar:
        for key, attack in suite.items():
            correct = total_loss = 0.0
            for i in batches:
                x, y = jnp.asarray(x_all[i:i + bs]), jnp.asarray(y_all[i:i + bs])
                x_adv = attack(weights, x, y)
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
    write_npz(paths.examples(exp.id), **examples(clf, weights, ev, data, image))
    return metrics
