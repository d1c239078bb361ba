"""Affine warps of image batches in JAX: shared by the rotation/scale/crop
regularizations and the spatial attack."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

BACKGROUND = -1.0  # black in the [-1, 1] domain


def _warp_one(image: jnp.ndarray, angle_deg, scale, shift) -> jnp.ndarray:
    """Rotate by angle_deg about the centre, enlarge by scale, translate by shift=(dy, dx) pixels.

    Output pixel p samples the input at  c + R(-angle) (p - c - shift) / scale  (bilinear),
    with the background outside the image.
    """
    h, w, _ = image.shape
    theta = jnp.deg2rad(angle_deg)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=image.dtype), jnp.arange(w, dtype=image.dtype), indexing="ij")
    dy, dx = (yy - cy - shift[0]) / scale, (xx - cx - shift[1]) / scale
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    src_y = cy + cos * dy - sin * dx
    src_x = cx + sin * dy + cos * dx
    channels = [map_coordinates(image[..., c], [src_y, src_x], order=1, mode="constant", cval=BACKGROUND)
                for c in range(image.shape[-1])]
    return jnp.stack(channels, axis=-1)


def affine_warp(images: jnp.ndarray, angle_deg, scale, shift) -> jnp.ndarray:
    """Batched warp: images [B, H, W, C]; angle_deg, scale [B]; shift [B, 2]."""
    return jax.vmap(_warp_one)(images, angle_deg, scale, shift)
