"""FGSM (Goodfellow et al. 2014): one signed-gradient step of size epsilon."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import cross_entropy, noise_key, project


def fgsm(logits_fn, params, x, y, epsilon, rng=None):
    """x + epsilon * sign(grad_x CE), projected."""
    grad = jax.grad(lambda xx: cross_entropy(logits_fn(params, xx, noise_key(rng, 0)), y).sum())(x)
    return project(x + epsilon * jnp.sign(grad), x, epsilon)


def make(logits_fn, ev):
    return lambda weights, x, y, rng, eps: fgsm(logits_fn, weights, x, y, eps, rng)


def make_clamped(logits_fn, ev):
    """Seed 003's attack library on its [-1, 1] inputs: FGSM, then a clamp to [0, 1] (torchattacks' image range),
    which maps every negative pixel, the whole black background, to 0 whatever epsilon is. A diagnostic of the
    seed's numbers, not a threat model: its inputs leave the epsilon-ball."""
    def attack(weights, x, y, rng, eps):
        grad = jax.grad(lambda xx: cross_entropy(logits_fn(weights, xx, noise_key(rng, 0)), y).sum())(x)
        return jnp.clip(x + eps * jnp.sign(grad), 0.0, 1.0)
    return attack
