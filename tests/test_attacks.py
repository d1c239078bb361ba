"""Attacks and Algorithms 1/2 on a real (small, briefly trained) Flax model."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advrepro import robust, transforms
from advrepro.attacks.apgd import apgd, dlr_targeted
from advrepro.attacks.base import cross_entropy, margin
from advrepro.attacks.fgsm import fgsm
from advrepro.attacks.pgd import pgd, pgd_restarts
from advrepro.attacks.spatial import spatial, spatial_grid
from advrepro.attacks.square import square
from advrepro.models import build_model
from advrepro.models.classifier import Classifier

EPS = 0.3


@pytest.fixture(scope="module")
def setup():
    """A FF classifier trained for a few steps on a separable toy image task (bright quadrant = class)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 256).astype(np.int32)
    x = rng.uniform(-1, -0.6, (256, 8, 8, 1)).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 4 * r:4 * r + 4, 4 * q:4 * q + 4] += 0.5
    x = np.clip(x, -1, 1)
    clf = Classifier(build_model("ff", n_classes=4, layer=32, hidden=4))
    params = clf.model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 1)), train=False)["params"]
    tx = optax.adam(1e-2)
    state = tx.init(params)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(lambda w: cross_entropy(clf.logits(w, x), y).mean())(p)
        u, s = tx.update(g, s)
        return optax.apply_updates(p, u), s

    for _ in range(60):
        params, state = step(params, state)
    return clf, params, jnp.asarray(x[:64]), jnp.asarray(y[:64])


def _inside_ball(x_adv, x, eps):
    return bool(jnp.all(jnp.abs(x_adv - x) <= eps + 1e-6)) and bool(jnp.all((x_adv >= -1) & (x_adv <= 1)))


def test_model_is_accurate_before_attack(setup):
    clf, p, x, y = setup
    assert float(jnp.mean(jnp.argmax(clf.logits(p, x), -1) == y)) > 0.95


@pytest.mark.parametrize("eps", [0.05, EPS])
def test_fgsm_and_pgd_stay_in_the_ball_and_valid_range(setup, eps):
    clf, p, x, y = setup
    for x_adv in (fgsm(clf.logits, p, x, y, eps), pgd(clf.logits, p, x, y, eps, 40, 0.01)):
        assert _inside_ball(x_adv, x, eps)
        assert float(jnp.max(jnp.abs(x_adv - x))) > 0.5 * eps  # it did move


def test_pgd_loss_never_below_clean_and_hurts_accuracy(setup):
    clf, p, x, y = setup
    x_adv = pgd(clf.logits, p, x, y, EPS, 40, 0.01)
    clean = cross_entropy(clf.logits(p, x), y)
    adv = cross_entropy(clf.logits(p, x_adv), y)
    assert bool(jnp.all(adv >= clean - 1e-6))
    assert float(adv.mean()) > float(clean.mean()) + 0.1
    acc = lambda xx: float(jnp.mean(jnp.argmax(clf.logits(p, xx), -1) == y))
    assert acc(x_adv) < acc(x)


def test_pgd_with_zero_steps_returns_the_input(setup):
    clf, p, x, y = setup
    np.testing.assert_array_equal(pgd(clf.logits, p, x, y, EPS, 0, 0.01), x)


def test_affine_warp_identity_and_quarter_turn():
    img = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 6, 6, 3)).astype(np.float32))
    same = transforms.affine_warp(img, jnp.zeros(2), jnp.ones(2), jnp.zeros((2, 2)))
    np.testing.assert_array_equal(same, img)
    turned = transforms.affine_warp(img, jnp.full(2, 90.0), jnp.ones(2), jnp.zeros((2, 2)))
    # positive angle = clockwise on screen
    np.testing.assert_allclose(turned, np.rot90(np.asarray(img), k=-1, axes=(1, 2)), atol=1e-5)
    shifted = transforms.affine_warp(img, jnp.zeros(2), jnp.ones(2), jnp.tile(jnp.array([0.0, 1.0]), (2, 1)))
    np.testing.assert_array_equal(shifted[:, :, 1:], img[:, :, :-1])  # one pixel to the right
    assert bool(jnp.all(shifted[:, :, 0] == transforms.BACKGROUND))


def test_spatial_attack_is_the_worst_case_over_its_grid(setup):
    clf, p, x, y = setup
    rotations, translations = [-20.0, 0.0, 20.0], [-1.0, 0.0, 1.0]
    grid = spatial_grid(rotations, translations)
    worst = spatial(clf.logits, p, x, y, grid)
    correct_worst = np.asarray(jnp.argmax(clf.logits(p, worst), -1) == y)
    per_point = []
    for angle, dy, dx in np.asarray(grid):
        xt = transforms.affine_warp(x, jnp.full(len(y), angle), jnp.ones(len(y)),
                                    jnp.tile(jnp.array([dy, dx]), (len(y), 1)))
        per_point.append(np.asarray(jnp.argmax(clf.logits(p, xt), -1) == y))
    np.testing.assert_array_equal(correct_worst, np.all(per_point, axis=0))
    identity = spatial(clf.logits, p, x, y, spatial_grid([0.0], [0.0]))
    np.testing.assert_array_equal(identity, x)


def test_algorithm1_copies_are_vectorised_bounded_and_push_towards_their_wrong_class(setup):
    clf, p, x, y = setup
    targets = robust.wrong_classes(y, 4)
    assert targets.shape == (len(y), 3) and not bool(jnp.any(targets == y[:, None]))
    np.testing.assert_array_equal(np.sort(np.c_[np.asarray(targets), np.asarray(y)], 1),
                                  np.broadcast_to(np.arange(4), (len(y), 4)))  # every class but y, once
    copies = robust.wrong_class_copies(clf.logits, p, x, y, 4, EPS, 8, 0.15)
    assert copies.shape == (3, x.shape[0]) + x.shape[1:]  # copy-major: one block of samples per wrong class
    rows = jnp.arange(len(y))
    z_clean = clf.logits(p, x)
    margins_before, margins_after = [], []
    for t in range(3):
        assert _inside_ball(copies[t], x, EPS)
        z_adv, j = clf.logits(p, copies[t]), targets[:, t]
        margins_before.append(np.asarray(z_clean[rows, j] - z_clean[rows, y]))
        margins_after.append(np.asarray(z_adv[rows, j] - z_adv[rows, y]))
    assert np.mean(np.concatenate(margins_after)) > np.mean(np.concatenate(margins_before)) + 1.0


@pytest.mark.parametrize("model, K", [("ff", 1), ("ff", 3), ("gru", 2)])
def test_shared_first_step_gives_the_copies_of_all_rows_byte_for_byte(setup, model, K):
    """shared_start (deterministic models): the first step runs one forward pass of the B samples and maps its
    VJP over the C - 1 margins; the copies are those of running all (C - 1) x B rows, byte for byte, under jit as
    in training, for every wrong class and for the likeliest ones alike."""
    clf, p, x, y = setup
    x, y = jnp.asarray(x[:48]), jnp.asarray(y[:48])
    if model != "ff":
        clf = Classifier(build_model(model, n_classes=4, layer=8, hidden=6), patch=2)
        p = clf.model.init(jax.random.PRNGKey(1), clf.sequence(x[:1]), train=False)["params"]

    def copies(shared, targets=None):
        if targets is None:
            fn = lambda w: robust.wrong_class_copies(clf.logits, w, x, y, 4, EPS, K, 0.15, shared_start=shared)  # noqa: E731
        else:
            fn = lambda w: robust.targeted_copies(clf.logits, w, x, y, targets, EPS, K, 0.15, shared_start=shared)  # noqa: E731
        return np.asarray(jax.jit(fn)(p))

    shared = copies(True)
    np.testing.assert_array_equal(shared, copies(False))
    assert np.abs(shared - np.asarray(x)[None]).max() > 0.1  # the step did move the copies
    targets = robust.likeliest_wrong_classes(clf.logits, p, x, y, 2)
    np.testing.assert_array_equal(copies(True, targets), copies(False, targets))


def test_algorithm2_loss_averages_algorithm1_and_clean_loss(setup):
    clf, p, x, y = setup
    copies = robust.wrong_class_copies(clf.logits, p, x, y, 4, EPS, 8, 0.15)
    l1, _ = robust.robust_loss(clf.logits, p, x, copies, y, algorithm="alg1")
    l2, clean_logits = robust.robust_loss(clf.logits, p, x, copies, y, algorithm="alg2")
    clean = float(cross_entropy(clean_logits, y).mean())
    assert float(l1) > clean  # the attacked copies are worse than the clean samples
    np.testing.assert_allclose(float(l2), 0.5 * (float(l1) + clean), rtol=1e-5)
    with pytest.raises(ValueError, match="alg3"):
        robust.robust_loss(clf.logits, p, x, copies, y, algorithm="alg3")


def test_targeting_the_likeliest_wrong_classes_matches_the_full_copies_on_those_classes(setup):
    """robust.targets: attacking the T likeliest wrong classes gives exactly those copies of the full
    Algorithm 1 (each copy's attack is independent), never the true class, and a loss no larger."""
    clf, p, x, y = setup
    full = robust.wrong_class_copies(clf.logits, p, x, y, 4, EPS, 8, 0.15)
    targets = robust.likeliest_wrong_classes(clf.logits, p, x, y, 2)
    assert targets.shape == (len(y), 2) and not bool(jnp.any(targets == y[:, None]))
    z = np.asarray(clf.logits(p, x))
    for i in range(len(y)):  # the two highest wrong logits
        wrong = [c for c in np.argsort(-z[i]) if c != int(y[i])]
        assert list(np.asarray(targets[i])) == wrong[:2]
    some = robust.targeted_copies(clf.logits, p, x, y, targets, EPS, 8, 0.15)
    position = targets - (targets > y[:, None])  # of each target among the sample's wrong classes
    np.testing.assert_allclose(some, jnp.take_along_axis(full, position.T[:, :, None, None, None], 0), atol=1e-6)
    l_all, _ = robust.robust_loss(clf.logits, p, x, full, y, algorithm="alg1")
    l_some, _ = robust.robust_loss(clf.logits, p, x, some, y, algorithm="alg1")
    assert float(l_some) <= float(l_all) + 1e-6


def _accuracy(clf, p, x, y):
    return float(jnp.mean(jnp.argmax(clf.logits(p, x), -1) == y))


@pytest.mark.parametrize("eps", [0.05, EPS])
def test_strong_attacks_stay_in_the_ball_and_are_deterministic(setup, eps):
    clf, p, x, y = setup
    key = jax.random.PRNGKey(3)
    runs = {
        "pgd_rs": lambda k: pgd_restarts(clf.logits, p, x, y, k, eps, 10, 2),
        "apgd_ce": lambda k: apgd(cross_entropy, clf.logits, p, x, y, k, eps, 10)[0],
        "apgd_margin": lambda k: apgd(lambda z, yy: -margin(z, yy), clf.logits, p, x, y, k, eps, 10)[0],
        "square": lambda k: square(clf.logits, p, x, y, k, eps, 30),
    }
    for name, run in runs.items():
        first = run(key)
        assert _inside_ball(first, x, eps), name
        assert bool(jnp.all(first == run(key))), name                       # the same key, the same bytes


def test_strong_attacks_are_at_least_as_strong_as_the_thesis_pgd(setup):
    """At EPS the random-restart PGD and APGD reach at most the accuracy of 40 steps of 0.01 from the clean
    point (they can take steps of the ball's size), and the Square attack, without gradients, still hurts."""
    clf, p, x, y = setup
    key = jax.random.PRNGKey(0)
    thesis = _accuracy(clf, p, pgd(clf.logits, p, x, y, EPS, 40, 0.01), y)
    assert _accuracy(clf, p, pgd_restarts(clf.logits, p, x, y, key, EPS, 40, 2), y) <= thesis
    assert _accuracy(clf, p, apgd(cross_entropy, clf.logits, p, x, y, key, EPS, 40)[0], y) <= thesis
    assert _accuracy(clf, p, square(clf.logits, p, x, y, key, EPS, 100), y) < _accuracy(clf, p, x, y)


def test_dlr_is_invariant_to_shift_and_scale_of_the_logits():
    logits = jnp.asarray([[3.0, 1.0, 0.5, -1.0, 0.0], [0.1, 0.2, 2.0, -0.3, 1.0]])
    y, t = jnp.asarray([0, 2]), jnp.asarray([1, 4])
    base = dlr_targeted(logits, y, t)
    assert np.allclose(dlr_targeted(7.0 * logits - 2.0, y, t), base, atol=1e-5)
    assert float(base[0]) == pytest.approx(-(3.0 - 1.0) / (3.0 - 0.5 * (0.5 + 0.0)))


def test_algorithm1_attacks_in_the_models_own_layout_to_the_same_bytes(setup):
    """The min-max defence attacks sequences cut once from the images (2x2 patches here), not the images
    cut again in every pass: its steps are elementwise, so the copies are the images' copies byte for byte,
    returned in the images' layout; to_images inverts to_sequence exactly."""
    from advrepro.defences import DEFENCES
    from advrepro.models.classifier import to_images, to_sequence
    from advrepro.spec import DefenceSpec

    clf0, p, x, y = setup
    clf = Classifier(clf0.model, patch=2)  # the FF sees [16, 4] sequences of 2x2 patches: the same 64 inputs
    x = jnp.asarray(x)
    assert clf.sequence(x).shape == (len(y), 16, 4)
    np.testing.assert_array_equal(to_images(to_sequence(x[:, None], 2), 2, x.shape[1:]), x[:, None])
    spec = DefenceSpec(algorithm="alg1", epsilon=EPS, K=8, stepsize=0.15, epsilon_warmup=0.0)
    on_images = jax.jit(lambda w: robust.wrong_class_copies(clf.logits, w, x, y, 4, EPS, 8, 0.15))(p)
    in_layout = jax.jit(lambda w: DEFENCES["alg1"].inner(clf, w, x, y, spec, EPS, 4))(p)
    assert in_layout.shape == on_images.shape == (3, len(y)) + x.shape[1:]
    np.testing.assert_array_equal(in_layout, on_images)


@pytest.mark.parametrize("name", ["gru", "s4"])
def test_worst_copy_loss_runs_only_the_worst_copies_with_the_same_value_and_gradient(name):
    """robust.worst_copy_loss: with independent rows, the copies' losses without gradient, then the training-mode
    pass of each sample's worst copy alone; the same loss and weight gradient as the maximum over every copy's
    pass (dropout on: the worst copy keeps its sample's mask; S4 takes its copies in one call)."""
    import dataclasses

    model = build_model(name, n_classes=5, layer=8, hidden=4, dropout=0.3)
    copies = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 7, 2))  # [T, B, L, F]
    y = jnp.arange(6) % 5
    w = model.init(jax.random.PRNGKey(1), copies[0])["params"]
    fn = Classifier(model, patch=None, batched_copies=name == "s4").training_logits(jax.random.PRNGKey(7))
    assert fn.rows_independent

    class AllRows:  # the same logits, every copy's pass kept for the gradient
        batched_copies = fn.batched_copies

        def __call__(self, weights, x):
            return fn(weights, x)

    def loss(f):
        return jax.jit(jax.value_and_grad(lambda w: jnp.mean(robust.worst_copy_loss(f, w, copies, y))))(w)

    (value, grad), (value_all, grad_all) = loss(fn), loss(AllRows())
    np.testing.assert_allclose(value, value_all, rtol=1e-6)
    for got, want in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(grad_all), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # the worst copy differs between samples (else the test would not tell the copies apart)
    ce = cross_entropy(robust.copies_logits(fn, w, copies), jnp.broadcast_to(y[:, None], (6, 4)))
    assert len(set(np.asarray(jnp.argmax(ce, axis=1)).tolist())) > 1
    # BatchNorm's batch statistics couple the rows: there every copy keeps its pass
    bn = Classifier(model, patch=None, collections=("batch_stats",))
    assert not bn.training_logits(jax.random.PRNGKey(7)).rows_independent
    assert dataclasses.replace(bn, collections=()).training_logits(None).rows_independent
