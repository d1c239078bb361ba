"""Seed 004's convolutional networks (SEEDS.md 4.2, 4.5): Keras's `mnist_cnn.py` shape at a chosen depth.

`convs` 3x3 VALID ReLU convolutions (the first of width/2 channels, the others of width), a 2x2 max-pool,
dropout, a ReLU dense layer, dropout, the logits. Depth 2 is the seed's "simple model" (Keras: 32, 64 channels,
Dense 128, dropout 0.25 / 0.5), depth 3 its "deeper model" (one more conv, everything else unchanged); the depth
sweep adds depths 1 and 4 and width x1/2, x2 at depth 2. The conv width is the section's `model.hidden`, the dense
units its `model.layer`, the dropout after the dense layer the section's `regularization.dropout` (half of it
after the pool, Keras's 0.25 / 0.5).

Each conv is written as im2col + one matmul (`cnn.conv`): the attacks and adversarial training differentiate with
respect to the input, and XLA's CPU transpose of a convolution is slow (models/cnn.py's note).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from .cnn import conv, lecun_normal

KERNEL = 3


def channels(convs: int, width: int) -> tuple[int, ...]:
    """The conv widths: width/2 for the first, width for the others (Keras: 32, 64)."""
    return tuple(max(1, width // 2) if i == 0 else width for i in range(convs))


def feature_size(size: int, convs: int) -> int:
    """The side of the pooled map of a size x size image: each VALID 3x3 conv takes 2, the pool halves (floor)."""
    return (size - (KERNEL - 1) * convs) // 2


class ConvNet(nn.Module):
    n_classes: int
    convs: int = 2
    width: int = 32
    dense: int = 64
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train=False):
        if x.ndim != 4:
            raise ValueError(f"convnet takes images [B, H, W, C]; got shape {tuple(x.shape)}")
        if feature_size(min(x.shape[1:3]), self.convs) < 1:
            raise ValueError(f"convnet: {self.convs} 3x3 convolutions and a 2x2 pool need images of at least "
                             f"{(KERNEL - 1) * self.convs + 2} pixels; got {x.shape[1]}x{x.shape[2]}")
        for i, c in enumerate(channels(self.convs, self.width)):
            kernel = self.param(f"conv{i}_kernel", lecun_normal, (KERNEL, KERNEL, x.shape[-1], c))
            x = nn.relu(conv(x, kernel, KERNEL, 1, "im2col") + self.param(f"conv{i}_bias", nn.initializers.zeros,
                                                                          (c,)))
        b, h, w, c = x.shape
        # 2x2 max-pool, stride 2 (VALID: a trailing odd row/column is dropped): a reshape and a max
        x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        x = nn.Dropout(self.dropout / 2, deterministic=not train)(x.reshape(b, -1))
        x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(nn.Dense(self.dense)(x)))
        return nn.Dense(self.n_classes)(x)


def n_parameters(weights) -> int:
    return sum(int(v.size) for v in jax.tree_util.tree_leaves(weights))


def build(spec, n_classes: int) -> nn.Module:
    """Registry `convnet`: depth `spec.convs`, conv width `spec.hidden` x `spec.width_scale`, dense `spec.layer`."""
    if spec.convs < 1:
        raise ValueError(f"convnet: convs must be at least 1; got {spec.convs}")
    width = round(spec.hidden * spec.width_scale)
    if width < 1:
        raise ValueError(f"convnet: conv width {spec.hidden} x {spec.width_scale} is below one channel")
    return ConvNet(n_classes, spec.convs, width, spec.layer, spec.dropout)
