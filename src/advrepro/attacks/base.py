"""What every attack shares: the valid input range, the projection, the loss."""
from __future__ import annotations

import jax.numpy as jnp
import optax

LOW, HIGH = -1.0, 1.0


def project(x_adv, x0, epsilon):
    """Nearest point of {|x - x0|_inf <= epsilon} ∩ [-1, 1]^d."""
    return jnp.clip(jnp.clip(x_adv, x0 - epsilon, x0 + epsilon), LOW, HIGH)


def cross_entropy(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)
