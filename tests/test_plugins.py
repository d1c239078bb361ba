"""Adding a component is one module and one registry line: here the module is this file.

A new attack, a new defence and a new model are registered below, in this test only, and flow through
params validation, training, evaluation and the report into a generated table without touching any
other file of the repository.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest
import yaml

from advrepro.attacks import ATTACKS, Attack
from advrepro.defences import DEFENCES, Defence
from advrepro.models import MODELS, Model
from advrepro.params import load_params
from advrepro.spec import experiment_spec

from .conftest import ROOT


def _noise_attack(logits_fn, ev):
    """A random-sign attack of size epsilon: needs the PRNG key every attack receives."""
    import jax

    def attack(weights, x, y, rng, eps):
        return jax.numpy.clip(x + eps * jax.random.rademacher(rng, x.shape, x.dtype), -1.0, 1.0)

    return attack


def _linear_model(spec, n_classes):
    import flax.linen as nn

    class Linear(nn.Module):
        n_classes: int

        @nn.compact
        def __call__(self, x, train=False):
            return nn.Dense(self.n_classes)(x.reshape(x.shape[0], -1))

    return Linear(n_classes)


def _noisy_inner(classifier, weights, x, y, spec, epsilon, n_classes, key):
    return x + 0.1 * epsilon  # a deterministic "attack": a constant shift of the batch


def _noisy_loss(train_logits, weights, x, y, attacked, spec):
    from advrepro.attacks.base import cross_entropy

    logits = train_logits(weights, x)
    return 0.5 * (cross_entropy(logits, y).mean() + cross_entropy(train_logits(weights, attacked), y).mean()), logits


@contextmanager
def registered(registry, component):
    registry.register(component)
    try:
        yield component
    finally:
        registry.unregister(component.name)


def test_an_attack_a_defence_and_a_model_registered_here_reach_a_table(project, monkeypatch):
    with registered(ATTACKS, Attack("noise", "Noise", _noise_attack)), \
            registered(MODELS, Model("linear", "Linear", _linear_model)), \
            registered(DEFENCES, Defence("shift", "Shift training", _noisy_inner, _noisy_loss)):
        params_file = project / "params.yaml"
        raw = yaml.safe_load(params_file.read_text())
        raw["mnist"]["models"] = ["ff", "linear"]
        raw["mnist"]["robust_small_step"]["algorithm"] = "shift"  # Table A.1's scenario trains with it
        params_file.write_text(yaml.safe_dump(raw))
        shutil.copytree(ROOT / "paper" / "thesis", project / "paper" / "thesis")
        monkeypatch.chdir(project)
        p = load_params(params_file)  # the schema knows the new model and defence

        from advrepro import data, evaluate, experiments, train
        from advrepro.report import tables

        table = experiments.get_table("A_1")
        arrays = data.load("mnist")
        for exp in experiments.table_experiments(p, table):
            assert experiments.defence(p, exp).name == "shift"
            spec = experiment_spec(p, exp)
            train.train(spec, arrays, progress=False)
            metrics = evaluate.evaluate(spec, arrays, progress=False)
            assert set(metrics["accuracy"]) >= {"plain", "noise_0.1", "noise_0.3", "spatial"}
            assert 0 <= metrics["accuracy"]["noise_0.3"] <= 1
        text = tables.render(p, "A_1")
    header = next(line for line in text.splitlines() if line.startswith("Model &"))
    assert "Noise0.1" in header and "Noise0.3" in header and "Spatial" not in header  # A.1 lists its attacks
    assert any(line.startswith("Linear robust &") for line in text.splitlines())
    assert "Shift training with $\\epsilon=" in text  # the caption names the defence the spec chose
    assert "noise" not in ATTACKS and "linear" not in MODELS and "shift" not in DEFENCES


def test_an_unknown_component_is_a_one_line_error():
    from advrepro.errors import UsageError

    known = "plain, pgd, fgsm, spatial, cw, pgd_l2, ilcm, missing, fgsm01"
    with pytest.raises(UsageError, match=f"unknown attack 'fab'; known: {known}$"):
        ATTACKS["fab"]
