"""Recurrent classifiers: a per-step encoder, then a GRU (Flax's cell, its gates' sums named) or an LSTM (a fused cell
with forget-gate bias 1), run together one time step at a time. With one input feature a step, the encoder and the
cell's input product are looked up, not multiplied (ScalarEncodedCell)."""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name


class LSTMCell(nn.RNNCellBase):
    """LSTM cell with one fused gate matmul and the forget-gate bias initialised to 1
    (Gers et al. 2000; Jozefowicz et al. 2015): the cell keeps its memory by default. With a zero
    forget bias, Flax's cell learned the pixel-sequence task markedly slower in our runs."""

    features: int
    inputs_projected: bool = False  # x is already the input product, x @ input (ScalarEncodedCell)

    @nn.compact
    def __call__(self, carry, x):
        c, h = carry
        f = self.features

        def gate_bias(key, shape, dtype=jnp.float32):
            return jnp.zeros(shape, dtype).at[f:2 * f].set(1.0)  # gate order: input, forget, cell, output

        # Orthogonal recurrent weights, as Flax's own cells use.
        recurrent = nn.Dense(4 * f, bias_init=gate_bias, kernel_init=nn.initializers.orthogonal(), name="hidden")
        # Named for the rematerialisation policy (RNNClassifier.remat): the backward pass keeps this sum, 4 floats
        # a unit, not both products, 8.
        inputs = x if self.inputs_projected else nn.Dense(4 * f, use_bias=False, name="input")(x)
        z = checkpoint_name(inputs + recurrent(h), "lstm_z")
        i, forget, g, o = jnp.split(z, 4, axis=-1)
        c = nn.sigmoid(forget) * c + nn.sigmoid(i) * jnp.tanh(g)
        h = nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        zeros = jnp.zeros(input_shape[:-1] + (self.features,))
        return zeros, zeros

    @staticmethod
    def input_product(weights: dict) -> tuple[jax.Array, jax.Array]:
        """The cell's input product as (kernel, bias) from its weights: x @ kernel + bias."""
        kernel = weights["input"]["kernel"]
        return kernel, jnp.zeros(kernel.shape[-1], kernel.dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


class GRUCell(nn.GRUCell):
    """Flax's GRU cell, the same weights and the same arithmetic, with its gates' pre-activations named for the
    rematerialisation policy: the backward pass keeps 4 floats a unit (the reset and update gates' sums, the
    candidate's input product and its recurrent product), not all six products."""

    inputs_projected: bool = False  # inputs are already the three input products [r | z | n] (ScalarEncodedCell)

    @nn.compact
    def __call__(self, carry, inputs):
        h = carry
        dense_h = functools.partial(nn.Dense, features=h.shape[-1], use_bias=False, dtype=self.dtype,
                                    param_dtype=self.param_dtype, kernel_init=self.recurrent_kernel_init,
                                    bias_init=self.bias_init)
        dense_i = functools.partial(nn.Dense, features=h.shape[-1], use_bias=True, dtype=self.dtype,
                                    param_dtype=self.param_dtype, kernel_init=self.kernel_init,
                                    bias_init=self.bias_init)
        if self.inputs_projected:
            ir, iz, in_ = jnp.split(inputs, 3, axis=-1)
        else:
            ir, iz, in_ = (dense_i(name=name)(inputs) for name in ("ir", "iz", "in"))
        r = self.gate_fn(checkpoint_name(ir + dense_h(name="hr")(h), "gru_r"))
        z = self.gate_fn(checkpoint_name(iz + dense_h(name="hz")(h), "gru_z"))
        n = self.activation_fn(checkpoint_name(in_, "gru_in")
                               + r * checkpoint_name(dense_h(name="hn", use_bias=True)(h), "gru_hn"))
        new_h = (1.0 - z) * n + z * h
        return new_h, new_h

    @staticmethod
    def input_product(weights: dict) -> tuple[jax.Array, jax.Array]:
        """The cell's three input products as one (kernel, bias) from its weights, in the order r, z, n."""
        return (jnp.concatenate([weights[g]["kernel"] for g in ("ir", "iz", "in")], axis=-1),
                jnp.concatenate([weights[g]["bias"] for g in ("ir", "iz", "in")], axis=-1))


# What each time step's backward pass keeps (RNNClassifier.remat), by name: the gates' pre-activation sums (the
# GRU's candidate keeps its two products apart, as the reset gate multiplies one of them). The rest is recomputed
# from the step's input and state: the encoder, the gates' sigmoids and tanhs.
REMAT_POLICIES = {"gru": jax.checkpoint_policies.save_only_these_names("gru_r", "gru_z", "gru_in", "gru_hn"),
                  "lstm": jax.checkpoint_policies.save_only_these_names("lstm_z")}


class RNNClassifier(nn.Module):
    """Per-step Dense+ReLU encoder, GRU or LSTM over time, last output -> Dropout -> Dense."""

    n_classes: int
    layer: int
    hidden: int
    cell: str  # "gru" or "lstm"
    dropout: float = 0.0
    # Rematerialise each time step in the backward pass, keeping only the gates' pre-activation sums
    # (REMAT_POLICIES). All stored, a step keeps about ten [L, B, hidden] arrays per pass, whose zero-filled buffers,
    # stacking and reading back cost the CPU more than the step's products again: offline MNIST Algorithm 1 step
    # 36-45 -> 26 ms (GRU), 35-49 -> 28 ms (LSTM). Nothing stored, the backward pass redoes every product: keeping
    # the products took the thesis-size MNIST step 4.42 -> 3.69 s (GRU), 5.42 -> 4.70 s (LSTM); keeping their sums
    # instead, with the encoder inside the time loop (EncodedCell): 3.81 -> 3.12 s (GRU), 4.82 -> 3.74 s (LSTM),
    # the fastest of six calls each on a 2-core AMD EPYC. The same bytes as all stored at the tested shapes
    # (tests/test_models.py), not everywhere: 7 of the Xeon reference's 180 checkpoints changed in their last bits
    # when the gates were first recomputed (README, "The offline profile").
    remat: bool = True
    # With one input feature a step, read the encoder and the cell's input product off a table (ScalarEncodedCell);
    # False multiplies, as PyTorch's nn.Linear and nn.LSTM do (benchmarks/peer.py counts its FLOPs so).
    lookup: bool = True

    @nn.compact
    def __call__(self, x, train=False):
        # The encoder runs inside the scan, one time step at a time, so no [B, L, layer] array of its outputs (nor
        # of their gradients) is ever written: at the thesis sizes (784 steps, 180 attacked copies, layer 128) those
        # arrays, their transposes to time-major and back, and the ReLU's mask were a seventh of the GRU's robust
        # step. Defined here, the encoder and the cell keep their weights where they were (Dense_0, GRUCell_0).
        encoder = nn.Dense(self.layer)
        kind = {"gru": GRUCell, "lstm": LSTMCell}[self.cell]
        name = f"{kind.__name__}_0"  # the weights' tree: GRUCell_0, LSTMCell_0
        wrap = functools.partial(nn.remat, policy=REMAT_POLICIES[self.cell]) if self.remat else (lambda m: m)
        if self.lookup and x.shape[-1] == 1 and not self.is_initializing():
            # One input feature (the thesis's pixel sequences): the encoder and the cell's input product together
            # are a piecewise-linear function of the scalar, looked up per step (ScalarEncodedCell).
            weights = self.variables["params"]
            table = scalar_encoder_table(weights[encoder.name], *kind.input_product(weights[name]))
            step = wrap(ScalarEncodedCell)(*table, kind(features=self.hidden, inputs_projected=True, name=name))
        else:
            step = wrap(EncodedCell)(encoder, kind(features=self.hidden, name=name))
        # The last state is the final carry: no [L, B, hidden] stack of every step's output for the scan to fill.
        carry, _ = nn.RNN(step, return_carry=True)(x)
        h = carry[1] if self.cell == "lstm" else carry  # LSTM: (c, h)
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.n_classes)(h)


class EncodedCell(nn.RNNCellBase):
    """One time step: the per-step Dense+ReLU encoder, then the recurrent cell. Both are the parent's modules, so
    their weights stay in the parent's tree (Dense_0, GRUCell_0 or LSTMCell_0)."""

    encoder: nn.Module
    cell: nn.Module

    def __call__(self, carry, x):
        return self.cell(carry, nn.relu(self.encoder(x)))

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return self.cell.initialize_carry(rng, input_shape[:-1] + (self.encoder.features,))

    @property
    def num_feature_axes(self) -> int:
        return 1


def scalar_encoder_table(encoder: dict, kernel: jax.Array, bias: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The per-step encoder of a one-feature input followed by the cell's input product,
    relu(x * w + b) @ kernel + bias, as the piecewise-linear function of the scalar x that it is: the units'
    thresholds -b / w, sorted, cut the line into layer + 1 pieces, on each of which the same units are active.
    Returns (thresholds, table [layer + 1, 2, products]): for x in piece p = #(thresholds < x) the product is
    x * table[p, 0] + table[p, 1] (a unit with w = 0 is active where b > 0, everywhere). The same function and
    gradients (at a threshold itself either side's slope); the rounding differs (tests/test_models.py)."""
    w, b = encoder["kernel"][0], encoder["bias"]
    thresholds = jax.lax.stop_gradient(jnp.where(w != 0, -b / jnp.where(w != 0, w, 1), jnp.inf))
    order = jnp.argsort(thresholds)
    rank, piece = jnp.argsort(order), jnp.arange(w.shape[0] + 1)[:, None]
    # Unit k is active in piece p if x > its threshold (w > 0: the threshold is among the p below) or x < it (w < 0).
    active = jnp.where(w > 0, rank < piece, jnp.where(w < 0, rank >= piece, b > 0)).astype(kernel.dtype)
    return thresholds[order], jnp.stack([(active * w) @ kernel, (active * b) @ kernel + bias], axis=1)


class ScalarEncodedCell(nn.RNNCellBase):
    """One time step of a one-feature input: the encoder and the cell's input product read off the piece of the
    piecewise-linear function the scalar falls in (scalar_encoder_table), then the cell's recurrent part. Per step
    and copy a compare against the thresholds and a table row read, where EncodedCell does the layer x input
    product's multiply-adds (and as many again for the input's gradient): at the thesis's MNIST sizes two thirds of
    the LSTM's products, and the Algorithm 1 step 3.78 -> 2.19 s (LSTM), 3.22 -> 1.74 s (GRU) on a 2-core AMD
    EPYC, one core."""

    thresholds: jax.Array
    table: jax.Array
    cell: nn.Module

    def __call__(self, carry, x):
        rows = self.table[jnp.sum(self.thresholds < x, axis=-1)]  # x: [..., 1]; rows: [..., 2, products]
        # [x, 1] @ rows, a product: written x * rows[..., 0, :] + rows[..., 1, :], XLA fused it, the step's input
        # slice included, into the gates' elementwise kernel and made that 6 times slower (LSTM 3.7 s a step).
        return self.cell(carry, jnp.einsum("...k,...kn->...n", jnp.concatenate([x, jnp.ones_like(x)], -1), rows))

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return self.cell.initialize_carry(rng, input_shape)

    @property
    def num_feature_axes(self) -> int:
        return 1


def build_gru(spec, n_classes: int) -> nn.Module:
    return RNNClassifier(n_classes, spec.layer, spec.hidden, cell="gru", dropout=spec.dropout)


def build_lstm(spec, n_classes: int) -> nn.Module:
    return RNNClassifier(n_classes, spec.layer, spec.hidden, cell="lstm", dropout=spec.dropout)
