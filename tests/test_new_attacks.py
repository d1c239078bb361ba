"""The seeds' attacks (CW-L2, PGD-L2, ILCM, missing features, EOT-PGD) on toy MLPs: a deterministic one and
one that draws Gaussian noise in its hidden layer from the key its logits get (a stochastic model)."""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advrepro.attacks import ATTACKS, columns, epsilon_attacks
from advrepro.attacks.base import cross_entropy
from advrepro.attacks.cw import cw, cw_rounds
from advrepro.attacks.eot import eot_pgd
from advrepro.attacks.ilcm import ilcm
from advrepro.attacks.missing import missing_features
from advrepro.attacks.pgd import pgd_restarts
from advrepro.attacks.pgd_l2 import pgd_l2
from advrepro.errors import UsageError
from advrepro.spec import EvaluationSpec, StrongSpec

NEW = ("cw", "pgd_l2", "ilcm", "missing")
NOISE = 0.5   # the stochastic model's hidden-layer noise std


def _forward(w, x, key, noise):
    h = x.reshape(x.shape[0], -1) @ w["w1"] + w["b1"]
    if noise:
        h = h + NOISE * jax.random.normal(key, h.shape, h.dtype)
    return jax.nn.relu(h) @ w["w2"] + w["b2"]


def deterministic(w, x, key):
    return _forward(w, x, key, False)


def stochastic(w, x, key):
    return _forward(w, x, key, True)


@pytest.fixture(scope="module")
def toy():
    """A 16-32-4 MLP trained on 4x4x1 images whose class is the bright 2x2 quadrant (clean accuracy ~1)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 512).astype(np.int32)
    x = rng.uniform(-1, -0.4, (512, 4, 4, 1)).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 2 * r:2 * r + 2, 2 * q:2 * q + 2] += 1.0
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    w = {"w1": 0.3 * jax.random.normal(k1, (16, 32)), "b1": jnp.zeros(32),
         "w2": 0.3 * jax.random.normal(k2, (32, 4)), "b2": jnp.zeros(4)}
    tx = optax.adam(1e-2)
    state = tx.init(w)
    xs, ys = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def step(w, s):
        g = jax.grad(lambda p: cross_entropy(deterministic(p, xs, None), ys).mean())(w)
        u, s = tx.update(g, s)
        return optax.apply_updates(w, u), s

    for _ in range(300):
        w, state = step(w, state)
    return w, xs[:64], ys[:64]


def _spec(**kw):
    strong = StrongSpec(pgd_steps=10, pgd_restarts=1, apgd_steps=10, apgd_targets=3, square_queries=10,
                        box_epsilon=2.0)
    base = dict(n_samples=64, batch_size=64, epsilons=(0.1, 0.3), pgd_steps=10, pgd_stepsize=0.01,
                example_epsilon=0.3, strong=strong, spatial_rotations=(0.0,), spatial_translations=(0.0,),
                cw_steps=30, cw_lr=0.05, cw_c=1e-2, cw_search_steps=4, l2_epsilons=(0.5, 1.0),
                missing_fractions=(0.1, 0.5), eot_draws=3)
    return EvaluationSpec(**{**base, **kw})


def _acc(logits_fn, w, x, y, key=None):
    return float(jnp.mean(jnp.argmax(logits_fn(w, x, key), -1) == y))


def _l2(d):
    return np.sqrt(np.sum(np.square(np.asarray(d)).reshape(d.shape[0], -1), -1))


def _in_range(x_adv):
    return bool(jnp.all((x_adv >= -1) & (x_adv <= 1)))


EPS = {"cw": 0.0, "pgd_l2": 1.0, "ilcm": 0.3, "missing": 0.3, "eot": 0.3}   # eps: fraction p for missing


@functools.cache
def _compiled(name, logits_fn):
    """The jitted fn(weights, x, y, rng, eps) of an attack, built through its `make` (eps traced, as the
    evaluation runs it); cached, so that each compiles once per model."""
    from advrepro.attacks import eot

    make = eot.make if name == "eot" else ATTACKS[name].make
    return jax.jit(make(logits_fn, _spec()))


def test_toy_model_is_accurate(toy):
    w, x, y = toy
    assert _acc(deterministic, w, x, y) > 0.95
    assert _acc(stochastic, w, x, y, jax.random.PRNGKey(1)) > 0.8


def test_every_attack_stays_in_its_ball_and_the_valid_range(toy):
    """On the stochastic model (the deterministic one: the attacks' own tests below)."""
    w, x, y = toy
    key = jax.random.PRNGKey(2)
    for name, eps in EPS.items():
        x_adv = _compiled(name, stochastic)(w, x, y, key, jnp.float32(eps))
        assert x_adv.shape == x.shape and x_adv.dtype == x.dtype, name
        assert _in_range(x_adv), name
        if name == "pgd_l2":
            assert np.all(_l2(x_adv - x) <= eps * (1 + 1e-5)), name
            assert np.max(_l2(x_adv - x)) > 0.5 * eps, name          # it did move
        elif name in ("ilcm", "eot"):
            assert bool(jnp.all(jnp.abs(x_adv - x) <= eps + 1e-6)), name
            assert float(jnp.max(jnp.abs(x_adv - x))) > 0.5 * eps, name
        elif name == "missing":  # every feature is dropped (0) or rescaled by 1 / (1 - p), clipped
            rescaled = jnp.clip(x / (1 - eps), -1, 1)
            assert bool(jnp.all((x_adv == 0) | jnp.isclose(x_adv, rescaled, atol=1e-6))), name


def test_missing_features_drops_about_p_and_keeps_the_author_variant_unclipped(toy):
    _, x, _ = toy
    key = jax.random.PRNGKey(3)
    for p in (0.1, 0.5):
        out = missing_features(x, key, p)
        dropped = float(jnp.mean(out == 0))
        assert abs(dropped - p) < 0.06
        raw = missing_features(x, key, p, clip=False)     # the author's: no clip, the same mask
        np.testing.assert_array_equal(raw == 0, out == 0)
        np.testing.assert_allclose(jnp.where(raw == 0, 0, raw), jnp.where(raw == 0, 0, x / (1 - p)), rtol=1e-6)
    # a larger p drops a superset of the features (one key)
    assert bool(jnp.all((missing_features(x, key, 0.1) != 0) | (missing_features(x, key, 0.5) == 0)))
    np.testing.assert_array_equal(missing_features(x, key, 0.0), x)


def test_cw_returns_the_smallest_successful_candidate_it_tried(toy):
    w, x, y = toy
    ev = _spec()
    args = ev.cw_steps, ev.cw_lr, ev.cw_c, ev.cw_search_steps, ev.cw_kappa
    key = jax.random.PRNGKey(4)
    best, dist, (tried, fooled) = jax.jit(lambda k: cw_rounds(deterministic, w, x, y, k, *args, trace=True))(key)
    assert tried.shape == (ev.cw_search_steps, ev.cw_steps + 1) + x.shape
    np.testing.assert_allclose(best, cw(deterministic, w, x, y, key, *args), atol=1e-6)  # the same attack
    tried, fooled = np.asarray(tried), np.asarray(fooled)
    norms = np.sum(np.square(tried - np.asarray(x)).reshape(*tried.shape[:2], len(y), -1), -1)  # [r, k, n]
    norms = np.where(fooled, norms, np.inf)
    minimal = norms.min(axis=(0, 1))
    succeeded = np.isfinite(minimal)
    assert succeeded.mean() > 0.5                                   # the attack works on this model
    np.testing.assert_allclose(np.asarray(dist)[succeeded], minimal[succeeded], rtol=1e-6)
    np.testing.assert_allclose(_l2(best - x)[succeeded] ** 2, minimal[succeeded], rtol=1e-4, atol=1e-7)
    # the result is misclassified where the search succeeded, the clean input where it did not
    wrong = np.asarray(jnp.argmax(deterministic(w, best, None), -1) != y)
    assert wrong[succeeded].all() and _in_range(best)
    np.testing.assert_array_equal(np.asarray(best)[~succeeded], np.asarray(x)[~succeeded])
    assert _acc(deterministic, w, best, y) < _acc(deterministic, w, x, y) - 0.4


def test_cw_with_more_search_steps_never_finds_a_larger_perturbation(toy):
    w, x, y = toy
    ev = _spec()
    key = jax.random.PRNGKey(5)
    run = lambda rounds: cw_rounds(deterministic, w, x, y, key, ev.cw_steps, ev.cw_lr, ev.cw_c, rounds,
                                   ev.cw_kappa)[1]
    short, long = np.asarray(run(3)), np.asarray(run(6))
    ok = np.isfinite(short)
    assert ok.any()
    assert np.all(long[ok] <= short[ok] * (1 + 1e-6))
    assert np.isfinite(long).sum() >= ok.sum()


def test_ilcm_reaches_the_least_likely_class(toy):
    w, x, y = toy
    target = jnp.argmin(deterministic(w, x, None), -1)
    x_adv = ilcm(deterministic, w, x, y, jax.random.PRNGKey(6), 1.0, 10, 0.25)
    assert float(jnp.mean(jnp.argmax(deterministic(w, x_adv, None), -1) == target)) > 0.8
    assert bool(jnp.all(jnp.abs(x_adv - x) <= 1.0 + 1e-6)) and _in_range(x_adv)


def test_pgd_l2_lowers_accuracy_within_its_radius(toy):
    w, x, y = toy
    key = jax.random.PRNGKey(7)
    for start in (False, True):
        x_adv = pgd_l2(deterministic, w, x, y, key, 1.5, 10, 0.25, random_start=start)
        assert np.all(_l2(x_adv - x) <= 1.5 * (1 + 1e-5)) and _in_range(x_adv)
        assert _acc(deterministic, w, x_adv, y) < _acc(deterministic, w, x, y) - 0.3
        clean_loss = cross_entropy(deterministic(w, x, None), y)
        if not start:  # the keep-best starts at the clean point: the loss never falls below it
            assert bool(jnp.all(cross_entropy(deterministic(w, x_adv, None), y) >= clean_loss - 1e-6))


@pytest.mark.parametrize("name", ["cw", "pgd_l2", "ilcm", "missing", "eot"])
def test_same_rng_same_bytes_different_rng_different_output(toy, name):
    w, x, y = toy
    eps = EPS[name]
    fn = _compiled(name, deterministic if name == "missing" else stochastic)  # missing ignores the model
    a, b = jax.random.PRNGKey(8), jax.random.PRNGKey(9)
    first = np.asarray(fn(w, x, y, a, jnp.float32(eps)))
    assert first.tobytes() == np.asarray(fn(w, x, y, a, jnp.float32(eps))).tobytes()
    assert first.tobytes() != np.asarray(fn(w, x, y, b, jnp.float32(eps))).tobytes()


@pytest.mark.parametrize("logits_fn", [deterministic, stochastic], ids=["deterministic", "stochastic"])
def test_eot_with_one_draw_is_one_run_of_random_start_pgd(toy, logits_fn):
    w, x, y = toy
    key = jax.random.PRNGKey(10)
    eot = eot_pgd(logits_fn, w, x, y, key, 0.3, 10, 1)
    single = pgd_restarts(logits_fn, w, x, y, key, 0.3, 10, 1)
    np.testing.assert_allclose(eot, single, atol=1e-6)   # two compiled programs: an ulp may differ
    # more draws: another attack, still in the ball
    many = eot_pgd(logits_fn, w, x, y, key, 0.3, 10, 4)
    assert bool(jnp.all(jnp.abs(many - x) <= 0.3 + 1e-6))
    if logits_fn is deterministic:  # every draw is the same model: the mean is the single gradient
        np.testing.assert_allclose(many, single, atol=1e-6)


def test_new_attacks_are_columns_only_where_the_spec_names_them():
    ev = _spec()
    default = columns(ev, "image")
    assert [c.key for c in default] == ["plain", "pgd_0.1", "pgd_0.3", "fgsm_0.1", "fgsm_0.3", "spatial"]
    assert [c.label for c in default] == ["Plain", "PGD0.1", "PGD0.3", "FGSM0.1", "FGSM0.3", "Spatial"]
    assert [c.text for c in default][1] == "PGD 0.1"
    assert not {c.attack for c in default} & set(NEW)
    assert [a.name for a in epsilon_attacks("image")] == ["pgd", "fgsm"]
    named = dataclasses.replace(ev, attacks=("missing", "plain", "ilcm", "cw", "pgd_l2", "fgsm"))
    cols = columns(named, "image")
    assert [c.key for c in cols] == ["plain", "fgsm_0.1", "fgsm_0.3", "cw", "pgd_l2_0.5", "pgd_l2_1", "ilcm_0.1",
                                     "ilcm_0.3", "missing_0.1", "missing_0.5"]   # ATTACKS' order, own grids
    assert [c.label for c in cols][3:6] == ["CW", "PGD-L2 0.5", "PGD-L2 1"]
    assert [c.epsilon for c in cols][-2:] == [0.1, 0.5]
    assert [a.name for a in epsilon_attacks("image", named)] == ["fgsm", "ilcm"]
    assert [c.key for c in columns(named, "waveform", without=("cw",))][:3] == ["plain", "fgsm_0.1", "fgsm_0.3"]
    with pytest.raises(UsageError, match="unknown attack 'bogus'"):
        columns(dataclasses.replace(ev, attacks=("plain", "bogus")), "image")


def test_clamped_fgsm_is_a_diagnostic_outside_the_ball(toy):
    """Seed 003's library: FGSM, then a clamp to [0, 1]. Every output lies in [0, 1], the negative pixels become 0
    whatever epsilon is (so it leaves the ball), and it is never part of the worst case or the sanity checks."""
    w, x, y = toy
    x_adv = _compiled("fgsm01", deterministic)(w, x, y, jax.random.PRNGKey(3), jnp.float32(1e-5))
    assert bool(jnp.all((x_adv >= 0) & (x_adv <= 1)))
    assert bool(jnp.all(jnp.where(x < -1e-5, x_adv == 0, True)))
    assert float(jnp.max(jnp.abs(x_adv - x))) > 0.9                    # far outside the 1e-5 ball
    fgsm = _compiled("fgsm", deterministic)(w, x, y, jax.random.PRNGKey(3), jnp.float32(1e-5))
    assert float(jnp.max(jnp.abs(fgsm - x))) <= 1e-5 + 1e-7            # FGSM stays in the ball (float32)
    named = dataclasses.replace(_spec(), attacks=("plain", "fgsm", "fgsm01"))
    assert [c.key for c in columns(named, "image")] == ["plain", "fgsm_0.1", "fgsm_0.3", "fgsm01_0.1", "fgsm01_0.3"]
    assert [a.name for a in epsilon_attacks("image", named)] == ["fgsm"]
    assert not ATTACKS["fgsm01"].in_ball and all(ATTACKS[n].in_ball for n in ("pgd", "fgsm") + NEW)
