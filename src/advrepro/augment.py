"""Training-time regularizations of images (thesis section 3.4.1): random noise,
random enlargement followed by a random crop, random rotation. Dropout lives in
the models. Table 5.2's reduced set drops the enlarge-and-crop."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .transforms import affine_warp


def augment_images(key, x: jnp.ndarray, *, noise_std: float, max_rotation: float, max_scale: float,
                   crop: bool) -> jnp.ndarray:
    """Randomly rotate (+ enlarge and crop when `crop`) and add Gaussian noise; stays in [-1, 1]."""
    k_rot, k_scale, k_shift, k_noise = jax.random.split(key, 4)
    b, h = x.shape[0], x.shape[1]
    angle = jax.random.uniform(k_rot, (b,), minval=-max_rotation, maxval=max_rotation)
    if crop:
        scale = jax.random.uniform(k_scale, (b,), minval=1.0, maxval=max_scale)
        # A random crop of the enlarged image = a shift within the enlargement margin.
        margin = (scale - 1.0) * h / 2.0
        shift = jax.random.uniform(k_shift, (b, 2), minval=-1.0, maxval=1.0) * margin[:, None]
    else:
        scale, shift = jnp.ones((b,)), jnp.zeros((b, 2))
    x = affine_warp(x, angle, scale, shift)
    return jnp.clip(x + noise_std * jax.random.normal(k_noise, x.shape), -1.0, 1.0)
