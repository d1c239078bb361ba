"""Feed-forward classifier: an MLP on the flattened sequence."""
from __future__ import annotations

import flax.linen as nn


class FF(nn.Module):
    """MLP on the flattened sequence: Dense-ReLU-Dropout twice, then the output layer."""

    n_classes: int
    layer: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train=False):
        x = x.reshape(x.shape[0], -1)
        for _ in range(2):
            x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(nn.Dense(self.layer)(x)))
        return nn.Dense(self.n_classes)(x)



def build(spec, n_classes: int) -> nn.Module:
    return FF(n_classes, spec.layer, spec.dropout)
