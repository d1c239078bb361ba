"""The missing-features attack of seed 003 (eq. 4.7, x_adv = dropout_p(x)): a fraction p (the column's
"epsilon", evaluation.missing_fractions) of the input features is dropped, set to 0 (mid-grey in [-1, 1]),
and the rest are scaled by 1 / (1 - p), as torch's nn.Dropout does in training mode, the author's code.

The mask is drawn from the attack's rng (seeded, reproducible; neither the gradient nor the model is
consulted), one independent draw per feature: feature f is dropped where u_f < p with u uniform, so for
one key a larger p drops a superset of the features of a smaller one.

Clipping: the author's code did not clip, so at p = 0.5 a black background pixel (-1) became -2. We clip
to [-1, 1]: every attack of the evaluation must stay in the valid input domain (no image the data could
hold lies outside it, and the models were never trained there), and the attack is about features that are
missing, not about the rescaling, which only saturates pixels already at the range's ends or scaled past
them. `clip=False` gives the author's version for a diagnostic.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import HIGH, LOW


def missing_features(x, rng, p, clip=True):
    """x with a fraction p of its features (elements) set to 0 and the others scaled by 1 / (1 - p)."""
    dropped = jax.random.uniform(rng, x.shape, x.dtype) < p
    kept = jnp.where(dropped, 0.0, x / jnp.maximum(1.0 - p, 1e-12)).astype(x.dtype)  # p = 1: all dropped
    return jnp.clip(kept, LOW, HIGH) if clip else kept


def make(logits_fn, ev):
    """eps is the fraction p; the model, the weights and the labels are not consulted."""
    return lambda weights, x, y, rng, eps: missing_features(x, rng, eps)
