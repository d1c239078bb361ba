"""Recurrent classifiers: GRU (Flax's cell) and LSTM (a fused cell with forget-gate bias 1)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class LSTMCell(nn.RNNCellBase):
    """LSTM cell with one fused gate matmul and the forget-gate bias initialised to 1
    (Gers et al. 2000; Jozefowicz et al. 2015): the cell keeps its memory by default. With a zero
    forget bias, Flax's cell learned the pixel-sequence task markedly slower in our runs."""

    features: int

    @nn.compact
    def __call__(self, carry, x):
        c, h = carry
        f = self.features

        def gate_bias(key, shape, dtype=jnp.float32):
            return jnp.zeros(shape, dtype).at[f:2 * f].set(1.0)  # gate order: input, forget, cell, output

        # Orthogonal recurrent weights, as Flax's own cells use.
        recurrent = nn.Dense(4 * f, bias_init=gate_bias, kernel_init=nn.initializers.orthogonal(), name="hidden")
        z = nn.Dense(4 * f, use_bias=False, name="input")(x) + recurrent(h)
        i, forget, g, o = jnp.split(z, 4, axis=-1)
        c = nn.sigmoid(forget) * c + nn.sigmoid(i) * jnp.tanh(g)
        h = nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        zeros = jnp.zeros(input_shape[:-1] + (self.features,))
        return zeros, zeros

    @property
    def num_feature_axes(self) -> int:
        return 1


class RNNClassifier(nn.Module):
    """Per-step Dense+ReLU encoder, GRU or LSTM over time, last output -> Dropout -> Dense."""

    n_classes: int
    layer: int
    hidden: int
    cell: str  # "gru" or "lstm"
    dropout: float = 0.0
    # Recompute each time step's gates in the backward pass instead of storing them (rematerialisation), but keep
    # the products (policy dots_with_no_batch_dims_saveable: the step's x @ W and h @ U, which have no batch
    # dimension in dot_general's sense). All stored, a step keeps about ten [L, B, hidden] arrays per pass, whose
    # zero-filled buffers, stacking and reading back cost the CPU more than the step's products again: offline
    # MNIST Algorithm 1 step 36-45 -> 26 ms (GRU), 35-49 -> 28 ms (LSTM). Nothing stored, the backward pass redoes
    # every product: keeping them took the thesis-size MNIST step 4.42 -> 3.69 s (GRU), 5.42 -> 4.70 s (LSTM), the
    # same bytes after one step at both sizes. The same bytes as all stored at the tested shapes
    # (tests/test_models.py), not everywhere: 7 of the Xeon reference's 180 checkpoints changed in their last bits
    # when the gates were first recomputed (README, "JAX against PyTorch eager").
    remat: bool = True

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.relu(nn.Dense(self.layer)(x))
        kind = {"gru": nn.GRUCell, "lstm": LSTMCell}[self.cell]
        # The explicit name keeps the weights' tree (GRUCell_0, LSTMCell_0) whether or not the cell is rematerialised.
        name = f"{kind.__name__}_0"
        if self.remat:
            kind = nn.remat(kind, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
        cell = kind(features=self.hidden, name=name)
        # The last state is the final carry: no [L, B, hidden] stack of every step's output for the scan to fill.
        carry, _ = nn.RNN(cell, return_carry=True)(x)
        h = carry[1] if self.cell == "lstm" else carry  # LSTM: (c, h)
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.n_classes)(h)



def build_gru(spec, n_classes: int) -> nn.Module:
    return RNNClassifier(n_classes, spec.layer, spec.hidden, cell="gru", dropout=spec.dropout)


def build_lstm(spec, n_classes: int) -> nn.Module:
    return RNNClassifier(n_classes, spec.layer, spec.hidden, cell="lstm", dropout=spec.dropout)
