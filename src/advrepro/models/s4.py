"""S4 (Gu et al. 2022) after "The Annotated S4" (Rush & Karamcheti): a diagonal-plus-low-rank (DPLR)
HiPPO state matrix per channel, whose length-L convolution kernel is computed from a Cauchy kernel at
the roots of unity. The recurrent view (``discrete_DPLR`` + ``scan_SSM``) is provided to check that the
convolution computes the same linear recurrence. The state-space parameters get their own learning rate
and no weight decay (`param_groups`)."""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# S4 parameters that get their own learning rate and no weight decay (C, D stay "regular").
SSM_PARAM_NAMES = frozenset({"Lambda_re", "Lambda_im", "P", "B", "log_step"})
LAMBDA_RE_MAX = -1e-4  # Re(Lambda) is clipped below 0 so the continuous SSM stays stable

# HiPPO initialisation (numpy float64: constants, computed once per N)


def make_HiPPO(N):
    """HiPPO-LegS matrix A [N, N]: the state matrix that optimally memorises the input history."""
    p = np.sqrt(1.0 + 2.0 * np.arange(N))
    return -(np.tril(p[:, None] * p[None, :]) - np.diag(np.arange(N)))


def make_NPLR_HiPPO(N):
    """(A, P, B) with A = S - P P^T and S normal (S = -1/2 I + skew-symmetric)."""
    n = np.arange(N)
    return make_HiPPO(N), np.sqrt(n + 0.5), np.sqrt(2.0 * n + 1.0)


def make_DPLR_HiPPO(N):
    """Diagonalise S = V Lambda V^*, giving A = V (Lambda - P~ P~^*) V^*; returns (Lambda, P~, B~, V).

    S minus its constant diagonal (-1/2) is real skew-symmetric, so -i times it is Hermitian and
    `eigh` diagonalises it stably (a general `eig` of A itself is badly conditioned)."""
    A, P, B = make_NPLR_HiPPO(N)
    S = A + P[:, None] * P[None, :]
    diag = np.diagonal(S)
    Lambda_im, V = np.linalg.eigh(-1j * (S - np.diag(diag)))
    Vh = V.conj().T
    return diag.mean() + 1j * Lambda_im, Vh @ P, Vh @ B, V


@functools.cache
def _dplr_init(N):
    """float32 (Lambda_re, Lambda_im, P as [N, 2], B as [N, 2]) for the S4 parameter initialisers."""
    Lambda, P, B, _ = make_DPLR_HiPPO(N)
    pair = lambda z: np.stack([z.real, z.imag], -1).astype(np.float32)
    return Lambda.real.astype(np.float32), Lambda.imag.astype(np.float32), pair(P), pair(B)


# ----------------------------------------------------------------------------------------------
# The two views of a DPLR SSM (A = diag(Lambda) - P Q^*, input B, output C~, step size `step`)


def kernel_DPLR(Lambda, P, Q, B, C, step, L):
    """Convolution kernel K [L] (real), K_k = Re(Cb Ab^k Bb) with (Ab, Bb, Cb) = discrete_DPLR(...),
    computed without ever forming Ab^k.

    The truncated generating function sum_{k<L} K_k z^k, evaluated at the L roots of unity z, is
    (after the bilinear transform) a resolvent of A; for A = Lambda - P Q^* that is a Cauchy kernel
    sum_j v_j / (g(z) - Lambda_j) plus a Woodbury rank-1 correction, and an inverse FFT returns K.
    C is C~ = C (I - Ab^L): the truncation factor is folded into the learned parameter.
    The Cauchy denominators are multiplied by (1 + z) (absorbing c(z) = 2 / (1 + z)), so the
    root z = -1 of an even L gives finite numbers instead of inf * 0."""
    z = jnp.exp(-2j * jnp.pi * jnp.arange(L) / L)
    # (1 + z) (g(z) - Lambda_j) with g(z) = (2 / step) (1 - z) / (1 + z)
    cauchy = 1.0 / ((2.0 / step) * (1.0 - z)[:, None] - Lambda * (1.0 + z)[:, None])  # [L, N]
    Cc, Qc = jnp.conj(C), jnp.conj(Q)
    # the four Cauchy sums sum_j v_j * cauchy[:, j] as one matmul (divisions dominate the cost)
    r00, r01, r10, r11 = (cauchy @ jnp.stack([Cc * B, Cc * P, Qc * B, Qc * P], -1)).T
    at_roots = 2.0 * (r00 - (1.0 + z) * r01 * r10 / (1.0 + (1.0 + z) * r11))
    return jnp.fft.ifft(at_roots, L).real


DIRECT_CONV_MAX_L = 128  # below this, a Toeplitz matmul beats the FFT on the CPU (about 4x at L=49)


def causal_convolution(u, K):
    """y_k = sum_{j<=k} K_j u_{k-j} along the last axis of u. K [L] is one kernel for all of u; K [H, L]
    gives each slice u[h] (u [H, ..., L]) its own kernel.

    Short sequences: one product with the lower-triangular Toeplitz matrix of K (batched over H). Long
    ones: FFT, zero-padded to 2L so that the FFT's circular convolution becomes a causal linear one."""
    L, lead = u.shape[-1], K.ndim - 1
    assert K.shape[-1] == L and K.shape[:-1] == u.shape[:lead], (K.shape, u.shape)
    if L <= DIRECT_CONV_MAX_L:
        lag = jnp.arange(L)[:, None] - jnp.arange(L)[None, :]
        toeplitz = jnp.where(lag >= 0, K[..., jnp.clip(lag, 0)], 0.0)  # [..., out k, in j] = K_{k-j}
        batch = tuple(range(lead))
        return jax.lax.dot_general(u, toeplitz, (((u.ndim - 1,), (lead + 1,)), (batch, batch)))
    return fft_convolution(u, K)


@jax.custom_vjp
def fft_convolution(u, K):
    """causal_convolution's FFT branch."""
    return _fft_convolution_fwd(u, K)[0]


def _on(u, Kf):
    """The kernels' spectra Kf [*C, L + 1] shaped to broadcast over u [*C, ..., L]."""
    return Kf.reshape(Kf.shape[:-1] + (1,) * (u.ndim - Kf.ndim) + Kf.shape[-1:])


def _fft_convolution_fwd(u, K):
    L = u.shape[-1]
    Kf, Uf = jnp.fft.rfft(K, 2 * L), jnp.fft.rfft(u, 2 * L)
    return jnp.fft.irfft(Uf * _on(u, Kf), 2 * L)[..., :L], (Uf, Kf)


def _fft_convolution_bwd(res, g):
    # Both cotangents are correlations, one rfft and one irfft each. JAX's transpose of rfft is a complex
    # FFT of the zero-padded full spectrum and its transpose of irfft scales the spectrum (the thesis-size
    # S4 step spent over a second in them).
    Uf, Kf = res
    L = g.shape[-1]
    G = jnp.fft.rfft(g, 2 * L)
    du = jnp.fft.irfft(G * jnp.conj(_on(g, Kf)), 2 * L)[..., :L]
    shared = tuple(range(Kf.ndim - 1, g.ndim - 1))  # the axes of u that one kernel convolves
    dK = jnp.fft.irfft(jnp.sum(G * jnp.conj(Uf), axis=shared), 2 * L)[..., :L]
    return du, dK


fft_convolution.defvjp(_fft_convolution_fwd, _fft_convolution_bwd)


def discrete_DPLR(Lambda, P, Q, B, C, step, L):
    """Bilinear discretisation of the DPLR SSM: returns (Ab [N, N], Bb [N], Cb [N]), all complex.

    Ab = (2/step - A)^{-1} (2/step + A), Bb = 2 (2/step - A)^{-1} B; the inverse is a diagonal
    plus rank-1 (Woodbury). Cb = C~^* (I - Ab^L)^{-1} undoes the truncation correction of C~ so
    that the recurrence reproduces `kernel_DPLR` exactly."""
    N = Lambda.shape[0]
    eye = jnp.eye(N, dtype=Lambda.dtype)
    A = jnp.diag(Lambda) - jnp.outer(P, jnp.conj(Q))
    d = 1.0 / (2.0 / step - Lambda)
    Qc = jnp.conj(Q)
    A1 = jnp.diag(d) - jnp.outer(d * P, Qc * d) / (1.0 + jnp.sum(Qc * d * P))
    Ab = A1 @ ((2.0 / step) * eye + A)
    Bb = 2.0 * A1 @ B
    Cb = jnp.conj(C) @ jnp.linalg.inv(eye - jnp.linalg.matrix_power(Ab, L))
    return Ab, Bb, Cb


def scan_SSM(Ab, Bb, Cb, u, x0):
    """Run x_k = Ab x_{k-1} + Bb u_k, y_k = Re(Cb x_k) over u [L]; returns (x_L, y [L])."""
    def step(x, u_k):
        x = Ab @ x + Bb * u_k
        return x, jnp.real(Cb @ x)

    return jax.lax.scan(step, jnp.asarray(x0, jnp.result_type(Ab, Bb)), u)


# ----------------------------------------------------------------------------------------------
# Modules


class S4SSM(nn.Module):
    """One S4 channel with N complex states: maps u [..., L] to y [..., L] (time on the last axis)."""

    N: int

    def setup(self):
        const = lambda i: (lambda key: jnp.asarray(_dplr_init(self.N)[i]))
        self.Lambda_re = self.param("Lambda_re", const(0))
        self.Lambda_im = self.param("Lambda_im", const(1))
        self.P = self.param("P", const(2))
        self.B = self.param("B", const(3))
        self.C = self.param("C", nn.initializers.normal(0.5**0.5), (self.N, 2))
        self.D = self.param("D", nn.initializers.normal(1.0), ())
        # log-uniform step in [1e-3, 1e-1]: each channel starts at its own time scale
        log_step = lambda key: jax.random.uniform(key, (), minval=np.log(1e-3), maxval=np.log(1e-1))
        self.log_step = self.param("log_step", log_step)

    def ssm(self):
        """Continuous-time parameters (Lambda, P, B, C~, D, step) as used by __call__ (Q = P)."""
        cplx = lambda a: a[..., 0] + 1j * a[..., 1]
        Lambda = jnp.minimum(self.Lambda_re, LAMBDA_RE_MAX) + 1j * self.Lambda_im
        step = jnp.exp(self.log_step)
        return Lambda, cplx(self.P), cplx(self.B), cplx(self.C), self.D, step

    def kernel(self, L: int):
        """(K [L], D): the convolution kernel for inputs of length L and the skip weight."""
        Lambda, P, B, C, D, step = self.ssm()
        return kernel_DPLR(Lambda, P, P, B, C, step, L), D

    def __call__(self, u):
        K, D = self.kernel(u.shape[-1])
        return causal_convolution(u, K) + D * u


def s4_layer(u, N: int, name: str = "s4"):
    """H = u.shape[0] independent S4 channels on u [H, ..., L] -> [H, ..., L], each with its own
    parameters (S4SSM's, stacked on axis 0 under `name`); call it inside a compact method.

    Only the kernels are computed per channel (vmapped); the convolutions are one product batched over
    the leading channel axis. The channels lead so that no layout change is needed around them: with
    channels last, or with the whole layer vmapped over them, XLA transposed the activations around
    every convolution and its gradient, most of the S4 step's time on the CPU."""
    channels = nn.vmap(S4SSM, in_axes=None, out_axes=0, axis_size=u.shape[0], methods=["kernel"],
                       variable_axes={"params": 0}, split_rngs={"params": True})
    K, D = channels(N=N, name=name).kernel(u.shape[-1])  # [H, L], [H]
    return causal_convolution(u, K) + D.reshape((-1,) + (1,) * (u.ndim - 1)) * u


def _mix(kernel, x, axis, leading):
    """kernel [F, G] applied to the features on `axis` of x: [G, rest of x] (leading) or [rest of x, G]."""
    axis %= x.ndim
    if leading:
        return jax.lax.dot_general(kernel, x, (((0,), (axis,)), ((), ())))
    return jax.lax.dot_general(x, kernel, (((axis,), (0,)), ((), ())))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def mix(kernel, x, axis, leading):
    return _mix(kernel, x, axis, leading)


def _mix_fwd(kernel, x, axis, leading):
    return _mix(kernel, x, axis, leading), (kernel, x)


def _mix_bwd(axis, leading, res, g):
    # JAX's transpose of dot_general puts the other operand's free axes last and then transposes; with
    # the channels leading, that transposed every activation gradient. These products give each
    # cotangent in its primal's layout.
    kernel, x = res
    axis %= x.ndim
    rest = [a for a in range(x.ndim) if a != axis]
    g_feat = 0 if leading else g.ndim - 1
    g_rest = [a for a in range(g.ndim) if a != g_feat]
    dx = jnp.moveaxis(jax.lax.dot_general(kernel, g, (((1,), (g_feat,)), ((), ()))), 0, axis)
    dkernel = jax.lax.dot_general(x, g, ((tuple(rest), tuple(g_rest)), ((), ())))
    return dkernel, dx


mix.defvjp(_mix_fwd, _mix_bwd)


class FeatureDense(nn.Module):
    """nn.Dense on the features on `axis` of x, with nn.Dense's parameters ("kernel" [F, features],
    "bias" [features]) and initialisers, so weights are interchangeable with it. The new features lead
    the output (`leading`) or trail it: one product, no transposed copy of x."""

    features: int
    axis: int = 0
    leading: bool = True

    @nn.compact
    def __call__(self, x):
        axis = self.axis % x.ndim
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[axis], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        y = mix(kernel, x, axis, self.leading)
        if not self.leading:
            return y + bias
        return y + bias.reshape((-1,) + (1,) * (y.ndim - 1))


class S4Block(nn.Module):
    """Prenorm residual block: x + Dropout(Dense(Dropout(GELU(S4(LayerNorm(x)))))), on x [H, N, L] where
    the N rows are `samples` samples' groups of copies: a dropout mask is drawn per sample, its copies share it."""

    layer: int
    hidden: int
    dropout: float

    @nn.compact
    def __call__(self, x, train, samples):
        def dropout(y):  # the mask of [H, samples, 1, L]: the same random bits as one of [H, samples, L]
            h, n, length = y.shape
            drop = nn.Dropout(self.dropout, broadcast_dims=(2,), deterministic=not train)
            return drop(y.reshape(h, samples, n // samples, length)).reshape(y.shape)

        norm = nn.LayerNorm(reduction_axes=0, feature_axes=0, name="LayerNorm_0")
        y = dropout(nn.gelu(s4_layer(norm(x), self.hidden)))
        y = dropout(FeatureDense(self.layer, name="Dense_0")(y))
        return x + y


class S4Classifier(nn.Module):
    """Dense encoder -> n_layers S4 blocks -> mean over time -> Dense (Annotated S4 classifier).

    Takes x [..., L, F] like the other models; inside, activations are [channels, samples, time]
    (see s4_layer). Parameter names and shapes are those of the channels-last layout of nn.Dense.
    Dropout draws one mask per index of x's first axis, shared by any further leading axes: robust training
    passes its copies [B, C, L, F] in one call (models.Model.batched_copies), each copy with its sample's mask."""

    n_classes: int
    layer: int
    hidden: int
    dropout: float = 0.0
    n_layers: int = 2

    @nn.compact
    def __call__(self, x, train=False):
        lead, (L, F) = x.shape[:-2], x.shape[-2:]
        x = x.reshape(-1, L, F)
        x = FeatureDense(self.layer, axis=-1, name="Dense_0")(x)  # [H, N, L]
        for i in range(self.n_layers):
            x = S4Block(self.layer, self.hidden, self.dropout, name=f"S4Block_{i}")(x, train, lead[0] if lead else 1)
        logits = FeatureDense(self.n_classes, leading=False, name="Dense_1")(x.mean(axis=-1))  # mean over time
        return logits.reshape(lead + (self.n_classes,))


def ssm_param_mask(params):
    """Bool pytree like `params`: True on S4 state-space leaves (Lambda_re/im, P, B, log_step).

    For optax.multi_transform, e.g. labels = jax.tree.map(lambda m: "ssm" if m else "rest", mask)."""
    def is_ssm(path, _):
        key = path[-1]
        return getattr(key, "key", getattr(key, "name", None)) in SSM_PARAM_NAMES

    return jax.tree_util.tree_map_with_path(is_ssm, params)


def param_groups(weights):
    """The optimizer group of every leaf: "ssm" for the state-space parameters, else "regular"."""
    return jax.tree_util.tree_map(lambda is_ssm: "ssm" if is_ssm else "regular", ssm_param_mask(weights))


def build(spec, n_classes: int) -> nn.Module:
    return S4Classifier(n_classes, spec.layer, spec.hidden, spec.dropout, n_layers=spec.s4_layers)
