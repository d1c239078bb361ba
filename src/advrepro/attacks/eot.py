"""PGD with expectation over transformation (Athalye, Carlini & Wagner 2018) for models that draw noise at
test time: one run of pgd.pgd_restarts (uniform random start, step 2.5 eps / steps, signed gradient,
L-infinity projection, keep-best), but every step's gradient is the mean over evaluation.eot_draws noise
draws, so the attack follows the expected loss rather than one draw's noise.

Draw d of step s (s = steps: the final iterate's check) uses noise_key(rng, s * draws + d); the start is
uniform_start(fold_in(rng, 0)), as pgd_restarts' first run. With one draw it is that run exactly. The
keep-best scores an iterate by its mean loss over the draws and counts it as misclassified when more than
half of the draws misclassify it (the evaluation scores one draw: then it is more likely wrong than not).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import cross_entropy, keep_best, noise_key, project, uniform_start


def eot_pgd(logits_fn, weights, x, y, rng, epsilon, steps, draws, step_factor=2.5):
    stepsize = step_factor * epsilon / steps

    def expected(xx, s):
        """Mean loss and gradient over the draws of step s, and whether most draws misclassify xx."""
        def one(d, acc):
            loss_sum, grad_sum, wrong = acc

            def with_logits(z):
                logits = logits_fn(weights, z, noise_key(rng, s * draws + d))
                return cross_entropy(logits, y), logits

            lk, vjp, logits = jax.vjp(with_logits, xx, has_aux=True)
            grad = vjp(jnp.ones_like(lk))[0]
            return loss_sum + lk, grad_sum + grad, wrong + (jnp.argmax(logits, -1) != y)

        zero = (jnp.zeros(y.shape, x.dtype), jnp.zeros_like(xx), jnp.zeros(y.shape, jnp.int32))
        loss, grad, wrong = jax.lax.fori_loop(0, draws, one, zero)
        return loss / draws, grad / draws, 2 * wrong > draws

    def body(s, carry):
        xk, best = carry
        lk, grad, fooled = expected(xk, s)
        best = keep_best(best, (xk, lk, fooled))
        return project(xk + stepsize * jnp.sign(grad), x, epsilon), best

    x0 = uniform_start(jax.random.fold_in(rng, 0), x, epsilon)
    init = (x, jnp.full(y.shape, -jnp.inf, x.dtype), jnp.zeros(y.shape, bool))
    xk, best = jax.lax.fori_loop(0, steps, body, (x0, init))
    lk, _, fooled = expected(xk, steps)
    return keep_best(best, (xk, lk, fooled))[0]


def make(logits_fn, ev):
    """evaluation.strong.pgd_steps steps, evaluation.eot_draws draws per step."""
    steps, draws = ev.strong.pgd_steps, ev.eot_draws
    return lambda weights, x, y, rng, eps: eot_pgd(logits_fn, weights, x, y, rng, eps, steps, draws)
