"""A peer cross-check: the same trained weights attacked by this project's FGSM and PGD and by Foolbox 3's
(a dev dependency; its JAXModel calls the JAX logits directly, no port of the model), which must agree to
within one sample; and the strong evaluation must find at least what Foolbox's random-start PGD finds."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advrepro.attacks.apgd import apgd
from advrepro.attacks.base import cross_entropy
from advrepro.attacks.fgsm import fgsm
from advrepro.attacks.pgd import pgd, pgd_restarts
from advrepro.models import build_model
from advrepro.models.classifier import Classifier

fb = pytest.importorskip("foolbox")


@pytest.fixture(scope="module")
def trained():
    return train_toy()


def train_toy():
    """FF on a noisy four-class toy task (a slightly brighter quadrant per class), trained 12 steps: attacks at
    epsilon 0.02-0.1 break some samples and not others, so the counts discriminate. (Trained to a saturated
    softmax, the signs of its input gradients would be float rounding noise, different in every library.)"""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 512).astype(np.int32)
    x = rng.uniform(-1, 0.2, (512, 8, 8, 1)).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 4 * r:4 * r + 4, 4 * q:4 * q + 4] += 0.15
    x = np.clip(x, -1, 1)
    clf = Classifier(build_model("ff", n_classes=4, layer=32, hidden=4))
    weights = clf.model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 1)), train=False)["params"]
    tx = optax.adam(1e-2)
    state = tx.init(weights)

    @jax.jit
    def step(w, s):
        grad = jax.grad(lambda v: cross_entropy(clf.logits(v, x), y).mean())(w)
        updates, s = tx.update(grad, s)
        return optax.apply_updates(w, updates), s

    for _ in range(12):
        weights, state = step(weights, state)
    return clf, weights, jnp.asarray(x[:200]), jnp.asarray(y[:200])


def _robust(clf, weights, x_adv, x, y) -> int:
    """Samples correct clean and under attack (the project's definition; Foolbox's `success` is its negation:
    a sample misclassified clean is a success from the start)."""
    correct = lambda z: jnp.argmax(clf.logits(weights, z), -1) == y  # noqa: E731
    return int(jnp.sum(correct(x) & correct(x_adv)))


@pytest.mark.parametrize("eps", [0.02, 0.05, 0.1])
def test_fgsm_and_pgd_agree_with_foolbox_to_one_sample(trained, eps):
    clf, weights, x, y = trained
    model = fb.JAXModel(lambda z: clf.logits(weights, z), bounds=(-1, 1))
    _, _, fb_fgsm = fb.attacks.FGSM()(model, x, y, epsilons=eps)
    _, _, fb_pgd = fb.attacks.LinfPGD(abs_stepsize=0.01, steps=40, random_start=False)(model, x, y, epsilons=eps)
    ours_fgsm = _robust(clf, weights, fgsm(clf.logits, weights, x, y, eps), x, y)
    ours_pgd = _robust(clf, weights, pgd(clf.logits, weights, x, y, eps, 40, 0.01), x, y)
    assert abs(ours_fgsm - int(jnp.sum(~fb_fgsm))) <= 1
    assert abs(ours_pgd - int(jnp.sum(~fb_pgd))) <= 1
    assert 0 < ours_pgd < ours_fgsm + 1 < len(y)     # the counts are informative, not all or nothing


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_the_strong_attacks_find_at_least_what_foolbox_random_start_pgd_finds(trained, eps):
    clf, weights, x, y = trained
    model = fb.JAXModel(lambda z: clf.logits(weights, z), bounds=(-1, 1))
    attack = fb.attacks.LinfPGD(rel_stepsize=2.5 / 50, steps=50, random_start=True)
    fb_robust = jnp.ones(len(y), bool)
    for _ in range(2):  # two restarts; Foolbox draws its starts from eagerpy's key
        _, _, success = attack(model, x, y, epsilons=eps)
        fb_robust &= ~success
    key = jax.random.PRNGKey(0)
    correct = lambda z: jnp.argmax(clf.logits(weights, z), -1) == y  # noqa: E731
    ours = correct(x) & correct(pgd_restarts(clf.logits, weights, x, y, key, eps, 50, 2)) \
        & correct(apgd(cross_entropy, clf.logits, weights, x, y, key, eps, 50)[0])
    assert int(jnp.sum(ours)) <= int(jnp.sum(fb_robust)) + 1
