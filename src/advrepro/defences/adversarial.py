"""The seeds' training schemes: label smoothing, PGD adversarial training (Madry et al. 2018; seed 001's
LWTA network), FGSM-augmented training (seed 003: clean and FGSM copies together) and seed 001's mixed-attack
training (per batch, with probability p_attack an attack drawn from a pool replaces the clean batch).

The pool's attacks are the evaluation's own functions (attacks/); every inner attack runs on the
evaluation-mode model with the step's key, so a stochastic model draws fresh noise at every attack step here
too. The losses on attacked batches return the attacked batch's logits: the training accuracy in the history
is then the accuracy on what the model trained on.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ..attacks.base import cross_entropy, noise_key, project, uniform_start


def smoothed_cross_entropy(logits, y, smoothing: float):
    """Cross-entropy against labels smoothed towards uniform by `smoothing` (0: the plain loss)."""
    if smoothing == 0:
        return optax.softmax_cross_entropy_with_integer_labels(logits, y)
    target = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), smoothing)
    return optax.softmax_cross_entropy(logits, target)


def pgd_inner(classifier, weights, x, y, spec, epsilon, n_classes, key=None):
    """PGD adversarial training's inner maximization: a uniform random start in the ball, then spec.K
    signed-gradient steps of spec.stepsize on the cross-entropy, each projected; model noise per step."""
    def step(i, xk):
        grad = jax.grad(lambda xx: cross_entropy(classifier.logits(weights, xx, noise_key(key, i)), y).sum())(xk)
        return project(xk + spec.stepsize * jnp.sign(grad), x, epsilon)

    start = uniform_start(jax.random.fold_in(key, 0), x, epsilon)
    return jax.lax.stop_gradient(jax.lax.fori_loop(0, spec.K, step, start))


def adversarial_loss(train_logits, weights, x, y, attacked, spec):
    """PGD adversarial training: the (smoothed) cross-entropy of the attacked batch alone."""
    logits = train_logits(weights, attacked)
    return jnp.mean(smoothed_cross_entropy(logits, y, spec.smoothing)), logits


def fgsm_inner(classifier, weights, x, y, spec, epsilon, n_classes, key=None):
    from ..attacks.fgsm import fgsm

    return jax.lax.stop_gradient(fgsm(classifier.logits, weights, x, y, epsilon, key))


def mixed_loss(train_logits, weights, x, y, attacked, spec):
    """Seed 003's adversarial learning: the clean batch and its FGSM copies, one mean over both."""
    clean = train_logits(weights, x)
    adv = train_logits(weights, attacked)
    ce = jnp.concatenate([smoothed_cross_entropy(clean, y, spec.smoothing),
                          smoothed_cross_entropy(adv, y, spec.smoothing)])
    return jnp.mean(ce), clean


def pool_attacks(classifier, spec, epsilon):
    """The pool's attacks as fn(weights, x, y, key) -> x', in the order spec.pool names them."""
    from ..attacks import cw, fgsm, pgd

    def noise(weights, x, y, key):  # uniform noise in the ball: the pool's "random noise"
        return project(x + jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0) * epsilon, x, epsilon)

    fns = {
        "pgd": lambda w, x, y, k: pgd.pgd(classifier.logits, w, x, y, epsilon, spec.K, spec.stepsize, k),
        "fgsm": lambda w, x, y, k: fgsm.fgsm(classifier.logits, w, x, y, epsilon, k),
        # CW at seed 001's caption values (c = 1e-4, kappa = 0.01, Adam at 0.01; one round, no binary search)
        "cw": lambda w, x, y, k: cw.cw(classifier.logits, w, x, y, k, spec.cw_steps, 0.01, 1e-4, 1, 0.01),
        "noise": noise,
    }
    unknown = [a for a in spec.pool if a not in fns]
    if unknown:
        raise ValueError(f"pool: unknown attack {unknown[0]!r}; known: {', '.join(fns)}")
    return [fns[a] for a in spec.pool]


def pool_inner(classifier, weights, x, y, spec, epsilon, n_classes, key=None):
    """Seed 001's scheme: u ~ U{0..7} per batch; with probability p_attack (u >= 8 (1 - p_attack)) the whole
    batch is replaced by pool[u mod len(pool)]'s attack, else it stays clean."""
    attacks = pool_attacks(classifier, spec, epsilon)
    u = jax.random.randint(jax.random.fold_in(key, 0), (), 0, 8)
    clean_slots = round(8 * (1 - spec.p_attack))
    branches = [lambda w, xx, yy, k: xx] + attacks
    index = jnp.where(u < clean_slots, 0, 1 + (u - clean_slots) % len(attacks))
    adv = jax.lax.switch(index, branches, weights, x, y, jax.random.fold_in(key, 1))
    return jax.lax.stop_gradient(adv)


def smooth_loss(train_logits, weights, x, y, attacked, spec):
    """Plain training with label smoothing (seed 001's "Smoothing" rows)."""
    logits = train_logits(weights, x)
    return jnp.mean(smoothed_cross_entropy(logits, y, spec.smoothing)), logits
