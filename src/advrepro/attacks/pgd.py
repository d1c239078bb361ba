"""PGD, L-infinity: as the thesis runs it (the Basic Iterative Method from the clean input), and as the
evaluation literature runs it (random starts, restarts, a step tied to epsilon)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import cross_entropy, keep_best, noise_key, project, uniform_start


def pgd(logits_fn, params, x, y, epsilon, steps, stepsize, rng=None):
    """`steps` signed-gradient steps of `stepsize`, each projected; starts at x (the Basic
    Iterative Method the thesis uses). Returns, per sample, the iterate with the highest loss,
    so the attack never ends weaker than where it started. `rng`: the model noise of step i is
    noise_key(rng, i) (stochastic models)."""
    def losses(xx, i):
        return cross_entropy(logits_fn(params, xx, noise_key(rng, i)), y)

    def keep_best(xk, lk, best, best_loss):
        better = lk > best_loss
        mask = better.reshape((-1,) + (1,) * (x.ndim - 1))
        return jnp.where(mask, xk, best), jnp.where(better, lk, best_loss)

    def body(i, carry):
        xk, best, best_loss = carry
        lk, vjp = jax.vjp(lambda xx: losses(xx, i), xk)
        best, best_loss = keep_best(xk, lk, best, best_loss)
        grad = vjp(jnp.ones_like(lk))[0]
        return project(xk + stepsize * jnp.sign(grad), x, epsilon), best, best_loss

    init = (x, x, jnp.full(y.shape, -jnp.inf, dtype=x.dtype))
    xk, best, best_loss = jax.lax.fori_loop(0, steps, body, init)
    best, _ = keep_best(xk, losses(xk, steps), best, best_loss)
    return best


def make(logits_fn, ev):
    """evaluation.pgd_steps steps of evaluation.pgd_stepsize (the thesis: 40 of 0.01)."""
    steps, stepsize = ev.pgd_steps, ev.pgd_stepsize
    return lambda weights, x, y, rng, eps: pgd(logits_fn, weights, x, y, eps, steps, stepsize, rng)



def pgd_restarts(logits_fn, weights, x, y, rng, epsilon, steps, restarts, step_factor=2.5):
    """PGD as the evaluation literature runs it (Madry et al. 2018): `restarts` runs, each from a uniform
    random point of the epsilon-ball, `steps` signed-gradient steps of step_factor * epsilon / steps on
    the cross-entropy; per sample the best iterate over all runs (a misclassified one first, then the
    highest loss)."""
    stepsize = step_factor * epsilon / steps

    def loss_and_fooled(xx, i):
        logits = logits_fn(weights, xx, noise_key(rng, i))
        return cross_entropy(logits, y), jnp.argmax(logits, -1) != y

    def run(r, best):
        def body(i, carry):
            xk, best = carry
            lk, vjp, fooled = jax.vjp(lambda xx: loss_and_fooled(xx, r * (steps + 1) + i), xk, has_aux=True)
            best = keep_best(best, (xk, lk, fooled))
            grad = vjp(jnp.ones_like(lk))[0]
            return project(xk + stepsize * jnp.sign(grad), x, epsilon), best

        x0 = uniform_start(jax.random.fold_in(rng, r), x, epsilon)
        xk, best = jax.lax.fori_loop(0, steps, body, (x0, best))
        return keep_best(best, (xk, *loss_and_fooled(xk, r * (steps + 1) + steps)))

    init = (x, jnp.full(y.shape, -jnp.inf, x.dtype), jnp.zeros(y.shape, bool))
    return jax.lax.fori_loop(0, restarts, run, init)[0]


def make_restarts(logits_fn, ev):
    """evaluation.strong.pgd_steps steps x pgd_restarts random restarts."""
    st = ev.strong
    return lambda weights, x, y, rng, eps: pgd_restarts(logits_fn, weights, x, y, rng, eps, st.pgd_steps,
                                                        st.pgd_restarts)


def make_doubled(logits_fn, ev):
    """The convergence probe: make_restarts with twice the steps (each half as long)."""
    st = ev.strong
    return lambda weights, x, y, rng, eps: pgd_restarts(logits_fn, weights, x, y, rng, eps, 2 * st.pgd_steps,
                                                        st.pgd_restarts)
