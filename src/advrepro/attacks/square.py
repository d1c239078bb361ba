"""The Square attack (Andriushchenko et al. 2020), L-infinity: gradient-free random search, the evaluation's
check against gradient masking.

From vertical stripes of +-epsilon, each query redraws one window of the perturbation as +-epsilon per
channel and keeps it where the margin loss falls. The window covers a fraction p of the input, p halving
on the authors' schedule (p_init 0.8, AutoAttack's setting). Inputs of any rank are seen as [B, H, W, C]:
images as they are, audio [B, T, F] as one-channel [T, F] planes (a waveform's window is a stretch of
samples); windows are rectangles with the input's aspect, squares on square images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import margin, noise_key, project

P_INIT = 0.8
# (fraction of a 10,000-query budget, divisor of p): the authors' schedule, scaled to the query budget
SCHEDULE = ((0.001, 2), (0.005, 4), (0.02, 8), (0.05, 16), (0.1, 32), (0.2, 64), (0.4, 128), (0.6, 256),
            (0.8, 512))


def as_planes(x):
    """[B, ...] -> [B, H, W, C]."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x[..., None]
    return x.reshape(x.shape[0], -1, 1, 1)


def fraction(i, queries):
    """p at query i."""
    p = jnp.float32(P_INIT)
    for at, div in SCHEDULE:
        p = jnp.where(i >= int(at * queries), P_INIT / div, p)
    return p


def square(logits_fn, weights, x, y, rng, epsilon, queries):
    shape = x.shape
    x4 = as_planes(x)
    b, h, w, c = x4.shape

    def loss(xx4, i):
        return margin(logits_fn(weights, xx4.reshape(shape), noise_key(rng, i)), y)

    k_init, k_loop = jax.random.split(rng)
    stripes = epsilon * jax.random.choice(k_init, jnp.array([-1.0, 1.0], x.dtype), (b, 1, w, c))
    x_adv = project(x4 + stripes, x4, epsilon)
    rows, cols = jnp.arange(h)[None, :, None, None], jnp.arange(w)[None, None, :, None]

    def body(i, carry):
        x_adv, m = carry
        k_pos, k_sign = jax.random.split(jax.random.fold_in(k_loop, i))
        root = jnp.sqrt(fraction(i, queries))
        sh = jnp.clip(jnp.round(root * h), 1, h).astype(jnp.int32)
        sw = jnp.clip(jnp.round(root * w), 1, w).astype(jnp.int32)
        u = jax.random.uniform(k_pos, (2, b))
        top = jnp.floor(u[0] * (h - sh + 1)).astype(jnp.int32)[:, None, None, None]
        left = jnp.floor(u[1] * (w - sw + 1)).astype(jnp.int32)[:, None, None, None]
        window = (rows >= top) & (rows < top + sh) & (cols >= left) & (cols < left + sw)
        signs = epsilon * jax.random.choice(k_sign, jnp.array([-1.0, 1.0], x.dtype), (b, 1, 1, c))
        candidate = project(jnp.where(window, x4 + signs, x_adv), x4, epsilon)
        m_new = loss(candidate, i + 1)
        accept = (m_new < m) & (m >= 0)   # fooled samples stay where they are
        return jnp.where(accept[:, None, None, None], candidate, x_adv), jnp.where(accept, m_new, m)

    x_adv, _ = jax.lax.fori_loop(0, queries, body, (x_adv, loss(x_adv, 0)))
    return x_adv.reshape(shape)


def make(logits_fn, ev):
    """evaluation.strong.square_queries queries."""
    queries = ev.strong.square_queries
    return lambda weights, x, y, rng, eps: square(logits_fn, weights, x, y, rng, eps, queries)
