"""What every attack shares: the valid input range, the projection, the loss."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOW, HIGH = -1.0, 1.0


NOISE_STREAM = 0x6E6F6973  # "nois": the fold of an attack's key its model-noise keys come from


def noise_key(rng, i):
    """The model-noise key of forward pass i of an attack: `logits_fn(weights, x, key)` draws a stochastic
    model's test-time noise from it (fresh at every step); deterministic models ignore it. Kept apart from
    the keys of random starts and restarts, which fold small integers into `rng`. None without an rng (a
    deterministic model attacked by a caller that has no key)."""
    if rng is None:
        return None
    return jax.random.fold_in(jax.random.fold_in(rng, NOISE_STREAM), i)


def project(x_adv, x0, epsilon):
    """Nearest point of {|x - x0|_inf <= epsilon} ∩ [-1, 1]^d."""
    return jnp.clip(jnp.clip(x_adv, x0 - epsilon, x0 + epsilon), LOW, HIGH)


def cross_entropy(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def uniform_start(key, x0, epsilon):
    """A uniform random point of the epsilon-ball around x0, inside the box."""
    return project(x0 + jax.random.uniform(key, x0.shape, x0.dtype, -1.0, 1.0) * epsilon, x0, epsilon)


def margin(logits, y):
    """z_y - max_{j != y} z_j: negative once the sample is misclassified."""
    true = jnp.take_along_axis(logits, y[:, None], -1)[:, 0]
    other = jnp.max(jnp.where(jax.nn.one_hot(y, logits.shape[-1], dtype=bool), -jnp.inf, logits), -1)
    return true - other


def keep_best(best, candidate):
    """Per sample, the better of two (x, loss, fooled) triples: a fooled one beats one that is not; among
    equals the higher loss wins (ties keep `best`, so the earlier restart or iterate stays)."""
    bx, bl, bf = best
    cx, cl, cf = candidate
    take = (cf & ~bf) | ((cf == bf) & (cl > bl))
    mask = take.reshape((-1,) + (1,) * (bx.ndim - 1))
    return jnp.where(mask, cx, bx), jnp.where(take, cl, bl), bf | cf
