"""The iterative least-likely-class method (Kurakin, Goodfellow & Bengio 2016, "Adversarial examples in the
physical world"; seed 003's targeted iterative FGSM, eq. 4.5): descend the cross-entropy towards the class
the clean input makes least likely,

    y_LL = argmin_j Z_j(x),   x_{i+1} = project(x_i - alpha sign(grad_x CE(f(x_i), y_LL)), x, eps),

alpha = ilcm_step_factor * eps, ilcm_steps steps (the seed's printed step of eps and its garbled clip are
replaced by Kurakin's step and the projection onto the eps-ball in [-1, 1]). Returns the last iterate, as
Kurakin's method does: success is reaching y_LL, which a keep-best on the true class's loss would not track.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import cross_entropy, noise_key, project


def ilcm(logits_fn, weights, x, y, rng, epsilon, steps, step_factor):
    """Forward pass 0 (the clean prediction) and step i (1..steps) draw noise_key(rng, i). `y` is unused:
    the target comes from the clean logits."""
    del y
    target = jnp.argmin(logits_fn(weights, x, noise_key(rng, 0)), -1)
    alpha = step_factor * epsilon

    def body(i, xk):
        grad = jax.grad(lambda xx: cross_entropy(logits_fn(weights, xx, noise_key(rng, i + 1)), target).sum())(xk)
        return project(xk - alpha * jnp.sign(grad), x, epsilon)

    return jax.lax.fori_loop(0, steps, body, x)


def make(logits_fn, ev):
    steps, factor = ev.ilcm_steps, ev.ilcm_step_factor
    return lambda weights, x, y, rng, eps: ilcm(logits_fn, weights, x, y, rng, eps, steps, factor)
