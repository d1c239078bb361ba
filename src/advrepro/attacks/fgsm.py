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
