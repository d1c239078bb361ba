"""PGD, L2 (Madry et al. 2018; seed 001's "PGD-l2"): normalized-gradient steps of l2_step_factor * eps,
each projected onto the L2 ball of radius eps around the clean input and then clipped to [-1, 1]. The
clip keeps the point in the ball: it moves every coordinate towards the clean one, which lies in the box.
Its radii are evaluation.l2_epsilons (its own grid: an L2 radius is not an L-infinity epsilon)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import HIGH, LOW, cross_entropy, keep_best, noise_key

TINY = 1e-12   # a zero gradient or perturbation stays zero instead of dividing by zero


def _norms(d):
    """Per-sample L2 norm, shaped to broadcast against d."""
    return jnp.sqrt(jnp.sum(jnp.square(d).reshape(d.shape[0], -1), -1)).reshape((-1,) + (1,) * (d.ndim - 1))


def project_l2(x_adv, x0, epsilon):
    """A point of {|x - x0|_2 <= epsilon} ∩ [-1, 1]^d: the ball's projection, then the box's."""
    d = x_adv - x0
    d = d * jnp.minimum(1.0, epsilon / jnp.maximum(_norms(d), TINY))
    return jnp.clip(x0 + d, LOW, HIGH)


def l2_start(key, x0, epsilon):
    """A uniform random point of the L2 ball around x0 (Gaussian direction, radius eps * u^(1/d)), in the box."""
    direction = jax.random.normal(jax.random.fold_in(key, 0), x0.shape, x0.dtype)
    direction = direction / jnp.maximum(_norms(direction), TINY)
    dim = x0[0].size
    u = jax.random.uniform(jax.random.fold_in(key, 1), (x0.shape[0],) + (1,) * (x0.ndim - 1), x0.dtype)
    return project_l2(x0 + epsilon * u ** (1.0 / dim) * direction, x0, epsilon)


def pgd_l2(logits_fn, weights, x, y, rng, epsilon, steps, step_factor, random_start=False):
    """`steps` steps x += step_factor * eps * g / |g|_2 on the cross-entropy, each projected; from x or
    (random_start) a uniform point of the ball. Per sample the best iterate (base.keep_best: a misclassified
    one first, then the highest loss), the start included. Forward pass i: noise_key(rng, i)."""
    stepsize = step_factor * epsilon

    def loss_and_fooled(xx, i):
        logits = logits_fn(weights, xx, noise_key(rng, i))
        return cross_entropy(logits, y), jnp.argmax(logits, -1) != y

    def body(i, carry):
        xk, best = carry
        lk, vjp, fooled = jax.vjp(lambda xx: loss_and_fooled(xx, i), xk, has_aux=True)
        best = keep_best(best, (xk, lk, fooled))
        grad = vjp(jnp.ones_like(lk))[0]
        return project_l2(xk + stepsize * grad / jnp.maximum(_norms(grad), TINY), x, epsilon), best

    x0 = l2_start(jax.random.fold_in(rng, 0), x, epsilon) if random_start else x
    init = (x, jnp.full(y.shape, -jnp.inf, x.dtype), jnp.zeros(y.shape, bool))
    xk, best = jax.lax.fori_loop(0, steps, body, (x0, init))
    return keep_best(best, (xk, *loss_and_fooled(xk, steps)))[0]


def make(logits_fn, ev, random_start=False):
    """evaluation.pgd_steps steps of evaluation.l2_step_factor * eps, from the clean input (seed 001's
    evaluation states no random start) unless random_start."""
    steps, factor = ev.pgd_steps, ev.l2_step_factor
    return lambda weights, x, y, rng, eps: pgd_l2(logits_fn, weights, x, y, rng, eps, steps, factor, random_start)
