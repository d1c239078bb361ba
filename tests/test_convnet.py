"""Seed 004's networks (models/convnet.py) and part P4's training protocol: clean epochs, then PGD adversarial
training, with the per-epoch probe in the history and three seeds per network."""
from __future__ import annotations

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advrepro import paths
from advrepro.data import Arrays
from advrepro.experiments import P4_NETWORKS, P4_REPLICATES, SCENARIOS, Experiment
from advrepro.models import ModelSpec, build_model
from advrepro.models.classifier import classifier_for, init_weights
from advrepro.models.convnet import channels, feature_size
from advrepro.spec import experiment_spec

from .conftest import tiny_params


def _weights(convs: int, width_scale: float = 1.0, size: int = 10, hidden: int = 32, layer: int = 64):
    model = build_model("convnet", n_classes=10, layer=layer, hidden=hidden, convs=convs, width_scale=width_scale)
    x = jnp.zeros((1, size, size, 1))
    return model, model.init(jax.random.PRNGKey(0), x)["params"]


def _count(weights) -> int:
    return sum(int(v.size) for v in jax.tree_util.tree_leaves(weights))


def test_the_seeds_two_networks_by_hand():
    """Depth 2 (the seed's simple model) and 3 (its deeper one) at the offline sizes, counted by hand: 3x3 convs of
    16 and 32 channels, the pool, Dense 64, the logits. The deeper network has fewer parameters (its pooled map is
    smaller), so depth and parameter count are not confounded in the obvious direction."""
    shallow = (9 * 16 + 16) + (9 * 16 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (64 * 10 + 10)
    deep = (9 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 32 + 32) + (2 * 2 * 32 * 64 + 64) + (64 * 10 + 10)
    assert _count(_weights(2)[1]) == shallow == 23946
    assert _count(_weights(3)[1]) == deep == 22954
    assert channels(2, 32) == (16, 32) and channels(3, 64) == (32, 64, 64)
    assert [feature_size(10, c) for c in (1, 2, 3, 4)] == [4, 3, 2, 1]
    assert _count(_weights(2, 2.0)[1]) > shallow > _count(_weights(2, 0.5)[1])


def test_the_im2col_network_equals_xlas_convolutions_and_pooling():
    """The forward pass equals one written with XLA's convolution and reduce_window max-pool, same weights."""
    model, w = _weights(3)
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 10, 10, 1), minval=-1, maxval=1)
    h = x
    for i in range(3):
        h = jax.nn.relu(jax.lax.conv_general_dilated(h, w[f"conv{i}_kernel"], (1, 1), "VALID",
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + w[f"conv{i}_bias"])
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID").reshape(4, -1)
    h = jax.nn.relu(h @ w["Dense_0"]["kernel"] + w["Dense_0"]["bias"])
    ref = h @ w["Dense_1"]["kernel"] + w["Dense_1"]["bias"]
    np.testing.assert_allclose(model.apply({"params": w}, x), ref, rtol=1e-5, atol=1e-5)


def test_too_small_images_and_bad_specs_are_refused():
    with pytest.raises(ValueError, match="need images of at least 10 pixels"):
        _weights(4, size=8)
    with pytest.raises(ValueError, match="convs must be at least 1"):
        build_model("convnet", n_classes=10, layer=8, hidden=8, convs=0)
    assert ModelSpec(8, 8).convs == 2  # the seed's simple model is the default


def test_digits_too_small_for_the_deepest_network_are_refused_before_anything_runs(raw_params):
    from advrepro.errors import ParamsError
    from advrepro.params import validate

    raw = copy.deepcopy(raw_params)
    raw["profiles"]["tiny"]["seed_parts"] = ["P4"]  # the tiny digits are 8x8: depth 4 needs 10
    with pytest.raises(ParamsError, match=r"mnist.data.image_size: bad value 8: part P4's 4 3x3 convolutions"):
        validate(raw)
    raw["profiles"]["tiny"]["seed_parts"] = []
    validate(raw)


def test_part_p4s_scenarios_are_every_network_at_three_seeds(raw_params):
    p = tiny_params(raw_params)
    names = [s for s in SCENARIOS if s.startswith(("d1-", "d2-", "d3-", "d4-"))]
    assert len(names) == len(P4_NETWORKS) * P4_REPLICATES == 18
    seeds = {r: experiment_spec(p, Experiment("mnist-p4", "convnet", SCENARIOS[f"d2-s{r}"])).seed for r in range(3)}
    assert seeds == {0: p["seed"], 1: p["seed"] + 1, 2: p["seed"] + 2}
    spec = experiment_spec(p, Experiment("mnist-p4", "convnet", SCENARIOS["d2-double-s0"]))
    assert (spec.variant.convs, spec.variant.width_scale, spec.defence.algorithm) == (2, 2.0, "pgd_at")


def _digits(n: int, seed: int, size: int = 10):
    """Toy digits: the class is the row holding a bright bar."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int32)
    x = rng.uniform(-1, -0.8, (n, size, size, 1)).astype(np.float32)
    x[np.arange(n), y % size, :, 0] = 0.9
    return x, y


@pytest.mark.slow
def test_clean_epochs_then_adversarial_training_with_the_probe(tmp_path, raw_params, monkeypatch):
    """The first clean_epochs train exactly as plain training does (the same history as a run without the
    defence), the later ones on attacked batches; every epoch has the probe's statistics, the phase ends the
    longer attack's too; a replicate (another seed) starts from other weights."""
    from advrepro import train as train_mod

    monkeypatch.chdir(tmp_path)
    p = tiny_params(raw_params)
    p["mnist"]["data"]["image_size"] = 10
    p["mnist"]["p4"]["train"]["epochs"] = 3
    p["mnist"]["p4"]["pgd_at"]["clean_epochs"] = 2
    xtr, ytr = _digits(200, 0)
    xte, yte = _digits(60, 1)
    arrays = Arrays(xtr, ytr, xte, yte, 10)
    exp = Experiment("mnist-p4", "convnet", SCENARIOS["d2-s0"])
    history = train_mod.train(experiment_spec(p, exp), arrays, progress=False)["history"]
    assert [("phase_adversary_success" in h) for h in history] == [False, True, True]
    for h in history:
        assert {"train_clean_accuracy", "test_pgd_accuracy", "adversary_success"} <= set(h)
        assert 0 <= h["adversary_success"] <= 1
    p["mnist"]["p4"]["pgd_at"]["clean_epochs"] = 0
    p["mnist"]["p4"]["train"]["epochs"] = 2
    spec = experiment_spec(p, exp)
    plain = train_mod.train(dataclasses.replace(spec, defence=None), arrays, progress=False)["history"]
    for key in ("train_loss", "train_accuracy", "test_accuracy", "train_clean_accuracy", "test_pgd_accuracy"):
        assert plain[0][key] == history[0][key] and plain[1][key] == history[1][key], key
    assert history[2]["train_loss"] != plain[1]["train_loss"]
    other = classifier_for(experiment_spec(p, Experiment("mnist-p4", "convnet", SCENARIOS["d2-s1"])), 10)
    w0 = init_weights(classifier_for(spec, 10), spec.seed, xtr)
    w1 = init_weights(other, spec.seed + 1, xtr)
    assert not np.array_equal(w0["conv0_kernel"], w1["conv0_kernel"])
    assert (tmp_path / paths.history(exp.id)).exists()
