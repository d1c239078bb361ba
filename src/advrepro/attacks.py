"""Evaluation attacks (thesis chapter 3): FGSM, PGD (L-infinity) and the spatial attack.

Each gradient attack is a loss, a signed-gradient step and a projection onto the
epsilon-ball around the input intersected with the valid range [-1, 1], run in
`lax.fori_loop` (after DeepMind's adversarial_robustness attacks). All attacks
target the true labels (untargeted).
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import optax

from .transforms import affine_warp

LOW, HIGH = -1.0, 1.0


def project(x_adv, x0, epsilon):
    """Nearest point of {|x - x0|_inf <= epsilon} ∩ [-1, 1]^d."""
    return jnp.clip(jnp.clip(x_adv, x0 - epsilon, x0 + epsilon), LOW, HIGH)


def cross_entropy(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def fgsm(logits_fn, params, x, y, epsilon):
    """x + epsilon * sign(grad_x CE), projected (Goodfellow et al. 2014)."""
    grad = jax.grad(lambda xx: cross_entropy(logits_fn(params, xx), y).sum())(x)
    return project(x + epsilon * jnp.sign(grad), x, epsilon)


def pgd(logits_fn, params, x, y, epsilon, steps, stepsize):
    """`steps` signed-gradient steps of `stepsize`, each projected; starts at x (the Basic
    Iterative Method the thesis uses). Returns, per sample, the iterate with the highest loss,
    so the attack never ends weaker than where it started."""
    def losses(xx):
        return cross_entropy(logits_fn(params, xx), y)

    def keep_best(xk, lk, best, best_loss):
        better = lk > best_loss
        mask = better.reshape((-1,) + (1,) * (x.ndim - 1))
        return jnp.where(mask, xk, best), jnp.where(better, lk, best_loss)

    def body(_, carry):
        xk, best, best_loss = carry
        lk, vjp = jax.vjp(losses, xk)
        best, best_loss = keep_best(xk, lk, best, best_loss)
        grad = vjp(jnp.ones_like(lk))[0]
        return project(xk + stepsize * jnp.sign(grad), x, epsilon), best, best_loss

    init = (x, x, jnp.full(y.shape, -jnp.inf, dtype=x.dtype))
    xk, best, best_loss = jax.lax.fori_loop(0, steps, body, init)
    best, _ = keep_best(xk, losses(xk), best, best_loss)
    return best


def spatial_grid(rotations, translations) -> jnp.ndarray:
    """All (angle, dy, dx) combinations of the grid, as an array [G, 3]."""
    return jnp.asarray(list(itertools.product(rotations, translations, translations)), dtype=jnp.float32)


def spatial(logits_fn, params, x, y, grid):
    """Worst case per sample over a grid of rotations and translations (Engstrom et al. 2019):
    the first misclassifying transform if any, else the one with the highest loss."""
    b = x.shape[0]

    def body(carry, g):
        best, best_score = carry
        xt = affine_warp(x, jnp.full((b,), g[0]), jnp.ones((b,)), jnp.tile(g[1:], (b, 1)))
        logits = logits_fn(params, xt)
        wrong = jnp.argmax(logits, -1) != y
        score = cross_entropy(logits, y) + jnp.where(wrong, 1e6, 0.0)
        better = score > best_score
        mask = better.reshape((-1,) + (1,) * (x.ndim - 1))
        return (jnp.where(mask, xt, best), jnp.where(better, score, best_score)), None

    init = (x, jnp.full((b,), -jnp.inf, dtype=x.dtype))
    (best, _), _ = jax.lax.scan(body, init, grid)
    return best
