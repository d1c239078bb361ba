"""The spatial attack (Engstrom et al. 2019): the worst case over a grid of rotations and translations."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp

from ..transforms import affine_warp
from .base import cross_entropy, noise_key


def spatial_grid(rotations, translations) -> jnp.ndarray:
    """All (angle, dy, dx) combinations of the grid, as an array [G, 3]."""
    return jnp.asarray(list(itertools.product(rotations, translations, translations)), dtype=jnp.float32)


def spatial(logits_fn, params, x, y, grid, rng=None):
    """Worst case per sample over the grid: the first misclassifying transform if any, else the one
    with the highest loss."""
    b = x.shape[0]

    def body(carry, point):
        (best, best_score), (i, g) = carry, point
        xt = affine_warp(x, jnp.full((b,), g[0]), jnp.ones((b,)), jnp.tile(g[1:], (b, 1)))
        logits = logits_fn(params, xt, noise_key(rng, i))
        wrong = jnp.argmax(logits, -1) != y
        score = cross_entropy(logits, y) + jnp.where(wrong, 1e6, 0.0)
        better = score > best_score
        mask = better.reshape((-1,) + (1,) * (x.ndim - 1))
        return (jnp.where(mask, xt, best), jnp.where(better, score, best_score)), None

    init = (x, jnp.full((b,), -jnp.inf, dtype=x.dtype))
    (best, _), _ = jax.lax.scan(body, init, (jnp.arange(len(grid)), grid))
    return best


def make(logits_fn, ev):
    """evaluation.spatial_rotations x spatial_translations (dy, dx); epsilon is not used."""
    grid = spatial_grid(ev.spatial_rotations, ev.spatial_translations)
    return lambda weights, x, y, rng, eps: spatial(logits_fn, weights, x, y, grid, rng)
