"""Input front ends put in front of any sequence model: a strided 1D convolution for raw audio,
a per-frame LayerNorm for the linear Mel spectrogram."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


def frames(x, kernel: int, stride: int):
    """[..., L, C] -> [..., n, kernel * C]: the windows of a "VALID" 1D convolution (kernel a multiple of
    stride), built from reshapes. A convolution written as frames @ W has a fast input gradient on the
    CPU; XLA's strided-convolution transpose was 30x slower than the forward pass, and the attacks and
    Algorithm 1 differentiate with respect to the input."""
    *lead, length, c = x.shape
    m = kernel // stride
    n_blocks = length // stride
    blocks = x[..., :n_blocks * stride, :].reshape(*lead, n_blocks, stride * c)
    return jnp.concatenate([blocks[..., i:n_blocks - m + 1 + i, :] for i in range(m)], axis=-1)


class ConvFrontend(nn.Module):
    """One strided 1D convolution + ReLU in front of a classifier: the thesis's remedy for raw audio
    ([16000, 1] samples), turning the waveform into a shorter sequence of learned frame features."""

    body: nn.Module
    channels: int
    kernel: int
    stride: int

    @nn.compact
    def __call__(self, x, train=False):
        if self.kernel % self.stride:
            raise ValueError(f"conv kernel {self.kernel} must be a multiple of its stride {self.stride}")
        x = nn.Dense(self.channels, name="conv")(frames(x, self.kernel, self.stride))
        return self.body(nn.relu(x), train)


class FrameNorm(nn.Module):
    """LayerNorm of every time step's features in front of a classifier. The linear Mel spectrogram,
    min-max scaled, puts 99 % of its values within 0.03 of -1 (a few loud cells set the maximum);
    normalizing each frame lets the small offline models see its shape at all."""

    body: nn.Module

    @nn.compact
    def __call__(self, x, train=False):
        return self.body(nn.LayerNorm(name="frame_norm")(x), train)

