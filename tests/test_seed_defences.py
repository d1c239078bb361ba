"""The seeds' training schemes (defences/adversarial.py): the mixed-attack pool, PGD adversarial training,
clean + FGSM training and label smoothing, on a small linear classifier of 14x14 images."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advrepro.defences import DEFENCES
from advrepro.defences.adversarial import smoothed_cross_entropy
from advrepro.models.classifier import Classifier
from advrepro.spec import DefenceSpec

EPS = 0.3


class Linear(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def setup():
    clf = Classifier(Linear(), patch=None)
    x = jax.random.uniform(jax.random.PRNGKey(1), (8, 14, 14, 1), minval=-1, maxval=1)
    y = jnp.arange(8) % 10
    weights = clf.model.init(jax.random.PRNGKey(0), x)["params"]
    return clf, weights, x, y


def spec(algorithm, **kw):
    base = dict(algorithm=algorithm, epsilon=EPS, K=3, stepsize=0.1, epsilon_warmup=0)
    return DefenceSpec(**{**base, **kw})


def _in_ball(adv, x, eps=EPS):
    return bool(jnp.all(jnp.abs(adv - x) <= eps + 1e-6) and jnp.all(jnp.abs(adv) <= 1 + 1e-6))


def test_the_pool_replaces_about_half_the_batches_by_an_attack_in_the_ball(setup):
    clf, w, x, y = setup
    s = spec("pool", pool=("pgd", "fgsm", "noise"))
    inner = jax.jit(lambda key: DEFENCES["pool"].inner(clf, w, x, y, s, EPS, 10, key))  # traced once
    attacked = [inner(jax.random.PRNGKey(k)) for k in range(24)]
    changed = [not np.array_equal(a, x) for a in attacked]
    assert 6 <= sum(changed) <= 18            # p_attack 1/2
    assert all(_in_ball(a, x) for a in attacked)
    again = DEFENCES["pool"].inner(clf, w, x, y, s, EPS, 10, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(attacked[3], again)  # keyed: the same key, the same batch


def test_the_pool_never_and_always_attacks_at_p_0_and_1(setup):
    clf, w, x, y = setup
    inner = DEFENCES["pool"].inner
    for k in range(4):
        key = jax.random.PRNGKey(k)
        np.testing.assert_array_equal(inner(clf, w, x, y, spec("pool", pool=("fgsm",), p_attack=0.0), EPS, 10, key), x)
        assert not np.array_equal(inner(clf, w, x, y, spec("pool", pool=("fgsm",), p_attack=1.0), EPS, 10, key), x)


def test_the_pool_refuses_an_unknown_attack(setup):
    clf, w, x, y = setup
    with pytest.raises(ValueError, match="unknown attack 'deepfool'"):
        DEFENCES["pool"].inner(clf, w, x, y, spec("pool", pool=("deepfool",)), EPS, 10, jax.random.PRNGKey(0))


def test_pgd_training_attacks_within_the_ball_and_raises_the_loss(setup):
    clf, w, x, y = setup
    adv = DEFENCES["pgd_at"].inner(clf, w, x, y, spec("pgd_at", K=5), EPS, 10, jax.random.PRNGKey(0))
    assert _in_ball(adv, x)
    ce = lambda xx: float(optax.softmax_cross_entropy_with_integer_labels(clf.logits(w, xx), y).mean())  # noqa: E731
    assert ce(adv) > ce(x)


def test_clean_and_fgsm_training_averages_both_losses(setup):
    clf, w, x, y = setup
    s = spec("fgsm_mix")
    adv = DEFENCES["fgsm_mix"].inner(clf, w, x, y, s, EPS, 10, jax.random.PRNGKey(0))
    loss, logits = DEFENCES["fgsm_mix"].loss(lambda ww, xx: clf.logits(ww, xx), w, x, y, adv, s)
    ce = lambda xx: optax.softmax_cross_entropy_with_integer_labels(clf.logits(w, xx), y).mean()  # noqa: E731
    np.testing.assert_allclose(float(loss), float((ce(x) + ce(adv)) / 2), rtol=1e-6)
    np.testing.assert_array_equal(logits, clf.logits(w, x))


def test_label_smoothing_matches_its_definition():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = jnp.array([0, 2])
    target = jax.nn.one_hot(y, 3) * 0.9 + 0.1 / 3
    expected = -jnp.sum(target * jax.nn.log_softmax(logits), -1)
    np.testing.assert_allclose(smoothed_cross_entropy(logits, y, 0.1), expected, rtol=1e-6)
    np.testing.assert_allclose(smoothed_cross_entropy(logits, y, 0.0),
                               optax.softmax_cross_entropy_with_integer_labels(logits, y), rtol=1e-6)
