"""PGD, L-infinity, as the thesis runs it: the Basic Iterative Method from the clean input."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import cross_entropy, project


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


def make(logits_fn, ev):
    """evaluation.pgd_steps steps of evaluation.pgd_stepsize (the thesis: 40 of 0.01)."""
    steps, stepsize = ev.pgd_steps, ev.pgd_stepsize
    return lambda weights, x, y, rng, eps: pgd(logits_fn, weights, x, y, eps, steps, stepsize)
