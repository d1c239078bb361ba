"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"), L-infinity: PGD with momentum 0.75 whose per-sample step size, 2 epsilon at the
start, halves at checkpoints where the loss stopped rising, restarting from the best point found.

Two losses, as in AutoAttack: cross-entropy (APGD-CE) and the targeted difference of logits ratio
(APGD-T, DLR, against each of the `apgd_targets` likeliest wrong classes). DLR needs four classes; with
fewer (the two-class UrbanSound8K task) the DLR attack maximizes the negative margin instead, untargeted.
The checkpoint schedule follows the authors' code (auto-attack's apgd: first checkpoint after 22 % of the
iterations, then intervals shrinking by 3 % to at least 6 %; oscillation threshold 0.75).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import cross_entropy, keep_best, margin, noise_key, project, uniform_start

MOMENTUM = 0.75   # the weight of the new gradient step (alpha in the paper)
RHO = 0.75        # a step size halves if the loss rose in fewer than RHO of the iterations since the checkpoint


def dlr_targeted(logits, y, target):
    """-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2): Croce & Hein's eq. (7), shift and scale invariant."""
    top = jnp.sort(logits, -1)[:, ::-1]
    z_y = jnp.take_along_axis(logits, y[:, None], -1)[:, 0]
    z_t = jnp.take_along_axis(logits, target[:, None], -1)[:, 0]
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def apgd(loss_fn, logits_fn, weights, x, y, rng, epsilon, steps):
    """One APGD run from a uniform random start; `loss_fn(logits, y)` is maximized per sample. Returns the
    adversarial inputs: per sample the first misclassified iterate, else the highest-loss one."""
    first = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)

    def loss_grad(xx, i):
        def with_logits(z):
            logits = logits_fn(weights, z, noise_key(rng, i))
            return loss_fn(logits, y), logits

        lk, vjp, logits = jax.vjp(with_logits, xx, has_aux=True)
        grad = vjp(jnp.ones_like(lk))[0]
        return lk, grad, jnp.argmax(logits, -1) != y

    per_sample = (-1,) + (1,) * (x.ndim - 1)
    x0 = uniform_start(rng, x, epsilon)
    l0, g0, f0 = loss_grad(x0, 0)
    n = y.shape[0]
    state = dict(
        x=x0, x_old=x0, grad=g0, step=jnp.full((n,), 2.0 * epsilon, x.dtype),
        x_best=x0, loss_best=l0, grad_best=g0, prev=l0,
        increases=jnp.zeros((n,), jnp.int32), best_at_check=l0, halved_at_check=jnp.zeros((n,), bool),
        since=jnp.int32(0), window=jnp.int32(first), out=(x0, l0, f0))

    def body(i, s):
        a = jnp.where(i == 0, 1.0, MOMENTUM)
        step = s["step"].reshape(per_sample)
        z = project(s["x"] + step * jnp.sign(s["grad"]), x, epsilon)
        x_new = project(s["x"] + a * (z - s["x"]) + (1 - a) * (s["x"] - s["x_old"]), x, epsilon)
        lk, grad, fooled = loss_grad(x_new, i + 1)
        out = keep_best(s["out"], (x_new, lk, fooled))
        better = lk > s["loss_best"]
        bmask = better.reshape(per_sample)
        x_best = jnp.where(bmask, x_new, s["x_best"])
        grad_best = jnp.where(bmask, grad, s["grad_best"])
        loss_best = jnp.where(better, lk, s["loss_best"])
        increases = s["increases"] + (lk > s["prev"])
        since = s["since"] + 1
        check = since == s["window"]
        # At a checkpoint: halve where the loss rose too rarely, or where the last checkpoint did not halve
        # and the best loss has not improved since; those samples restart from their best point.
        halve = check & ((increases < RHO * s["window"]) | (~s["halved_at_check"] & (s["best_at_check"] >= loss_best)))
        hmask = halve.reshape(per_sample)
        return dict(
            x=jnp.where(hmask, x_best, x_new), x_old=s["x"], grad=jnp.where(hmask, grad_best, grad),
            step=jnp.where(halve, s["step"] / 2, s["step"]), x_best=x_best, loss_best=loss_best,
            grad_best=grad_best, prev=lk, increases=jnp.where(check, 0, increases),
            best_at_check=jnp.where(check, loss_best, s["best_at_check"]),
            halved_at_check=jnp.where(check, halve, s["halved_at_check"]),
            since=jnp.where(check, 0, since),
            window=jnp.where(check, jnp.maximum(s["window"] - shrink, shortest), s["window"]), out=out)

    return jax.lax.fori_loop(0, steps, body, state)["out"]


def make_ce(logits_fn, ev):
    """APGD-CE: evaluation.strong.apgd_steps iterations on the cross-entropy."""
    steps = ev.strong.apgd_steps
    return lambda weights, x, y, rng, eps: apgd(cross_entropy, logits_fn, weights, x, y, rng, eps, steps)[0]


def make_dlr(logits_fn, ev):
    """APGD-T with the DLR loss against each of the apgd_targets likeliest wrong classes (the best run per
    sample); with fewer than four classes, APGD on the negative margin."""
    steps, targets = ev.strong.apgd_steps, ev.strong.apgd_targets

    def attack(weights, x, y, rng, eps):
        clean = logits_fn(weights, x, noise_key(rng, 0))
        n_classes = clean.shape[-1]          # static: fixed by the model
        if n_classes < 4:
            return apgd(lambda z, yy: -margin(z, yy), logits_fn, weights, x, y, rng, eps, steps)[0]
        ranked = jnp.argsort(-clean, -1)     # the likeliest classes first; the wrong ones after the top one

        def one_target(t, best):
            target = ranked[:, t + 1]
            target = jnp.where(target == y, ranked[:, 0], target)  # a misclassified sample: its true class is
            run = apgd(lambda z, yy: dlr_targeted(z, yy, target),  # ranked lower; target the top one there
                       logits_fn, weights, x, y, jax.random.fold_in(rng, t), eps, steps)
            return keep_best(best, run)

        init = (x, jnp.full(y.shape, -jnp.inf, x.dtype), jnp.zeros(y.shape, bool))
        return jax.lax.fori_loop(0, min(targets, n_classes - 1), one_target, init)[0]

    return attack
