"""Seed 003's all-convolutional network (SEEDS.md 3.1, 3.5) and its variants for seeds 001 and 003:
BatchNorm, test-time noise on the pre-activations, sign / stochastic binary / stochastic LWTA activations,
parametric noise injection (PNI) on the weights.

Images [B, H, W, C] in [-1, 1]; the stack is chosen by the input's height (28: the thesis's ten convs, 14: the
offline profile's seven). Randomness comes only from the "noise" rng, in training and at test time alike, so a
stochastic model is a pure function of (weights, x, key).

The noise layers' kind, mode and scale are not baked into the traced function: they are a constant variable of
the "noise" collection (`noise_config`), part of the weights. Every noise variant of one stack therefore traces
to the same XLA program, and the persistent compile cache serves one compilation to all twelve of seed 003's
noisy networks (training, every attack, the strong evaluation) instead of compiling each anew.

CPU note (see `frontends.frames`): the attacks differentiate with respect to the input, and XLA's CPU transpose
of a (strided) convolution is slow. Every conv is therefore written as patches @ kernel[k*k*C, O]: the 2x2
stride-2 "pooling" convs and the 1x1 convs as a space-to-depth reshape, the 3x3 VALID convs as im2col by
slicing (nine shifted slices concatenated, one matmul). Input gradient, one CPU thread, ms (benchmarks/cnn.py,
a loaded 2-core machine): 14x14 batch 64 / 500: 1.5 / 17 against 5.8 / 42 with XLA's convolution (`impl="xla"`,
what nn.Conv calls, same parameters); 28x28: 24 / 267 against 31 / 313. A sum of nine per-tap matmuls (no
patch tensor) sat in between (forward + input gradient at 14x14: 5.4 / 60 against im2col's 1.8 / 36).
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

# (kernel, stride, channels, activation?) per conv; the last conv gives the logits (channels None = n_classes).
# Stride-2 2x2 convs are the author's "weighted pooling": no activation (config-b04.yaml).
STACKS = {
    # 28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4 -> 2 -> 1 -> 1 -> 1 (thesis, 1.77 M MACs)
    28: ((3, 1, 6, True), (3, 1, 12, True), (2, 2, 12, False), (3, 1, 24, True), (3, 1, 48, True),
         (2, 2, 48, False), (3, 1, 96, True), (2, 2, 96, False), (1, 1, 50, True), (1, 1, None, False)),
    # 14 -> 12 -> 10 -> 5 -> 3 -> 1 -> 1 -> 1 (SEEDS 3.5, 0.12 M MACs). Its "1x1" is the spatial size reached
    # after conv3 48, not an extra layer: the 0.12 M MACs quoted there count exactly these seven convs.
    14: ((3, 1, 6, True), (3, 1, 12, True), (2, 2, 12, False), (3, 1, 24, True), (3, 1, 48, True),
         (1, 1, 50, True), (1, 1, None, False)),
}
ACTIVATIONS = ("relu", "sign", "stochastic_sign", "lwta")
NOISES = ("none", "gauss", "logistic")
NOISE_MODES = ("add", "mul")
IMPLS = ("im2col", "xla")
LWTA_TEMPERATURE = 0.67  # Gumbel-softmax temperature (Panousis et al.; not given by seed 001, SEEDS 1.2)
PNI_INIT = 0.25          # Rakin et al.: the learned noise scale a_l starts at 0.25


def space_to_depth(x, k: int):
    """[B, H, W, C] -> [B, H/k, W/k, k*k*C], features in (i, j, c) order: the patches of a k x k stride-k
    VALID conv (a trailing odd row/column is dropped, as VALID does)."""
    b, h, w, c = x.shape
    ho, wo = h // k, w // k
    x = x[:, :ho * k, :wo * k].reshape(b, ho, k, wo, k, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, ho, wo, k * k * c)


def im2col(x, k: int):
    """[B, H, W, C] -> [B, H-k+1, W-k+1, k*k*C] in (i, j, c) order: a k x k stride-1 VALID conv's patches."""
    _, h, w, _ = x.shape
    ho, wo = h - k + 1, w - k + 1
    return jnp.concatenate([x[:, i:i + ho, j:j + wo] for i in range(k) for j in range(k)], axis=-1)


def conv(x, kernel, k: int, stride: int, impl: str):
    """A VALID conv of x [B, H, W, C] with kernel [k, k, C, O], stride 1 or stride == k."""
    if impl == "xla":
        return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if stride == k:  # 1x1 and the 2x2 stride-2 pooling convs: a reshape, then one matmul
        return space_to_depth(x, k) @ kernel.reshape(-1, kernel.shape[-1])
    if stride != 1:
        raise ValueError(f"conv {k}x{k} stride {stride}: only stride 1 or stride == kernel are written")
    return im2col(x, k) @ kernel.reshape(-1, kernel.shape[-1])


def sample(draw, key, shape, dtype):
    """jax.random's `draw` of `shape`, drawn flat and reshaped: the same values' cost, but XLA compiles a
    multi-dimensional threefry draw several times slower on the CPU (7 layers: 7 s against 1.8 s)."""
    return draw(key, (math.prod(shape),), dtype).reshape(shape)


def lecun_normal(key, shape, dtype=jnp.float32):
    """nn.initializers.lecun_normal (truncated normal, variance 1 / fan_in; fan_in = k*k*C for a kernel
    [k, k, C, O]), drawn flat (see `sample`)."""
    std = math.sqrt(1.0 / math.prod(shape[:-1])) / 0.87962566103423978  # the std of N(0, 1) truncated to +-2
    return std * sample(lambda k, s, d: jax.random.truncated_normal(k, -2.0, 2.0, s, d), key, shape, dtype)


def draw_noise(key, shape, kind: str, std: float, dtype):
    """Zero-mean noise of standard deviation `std`: Gaussian, or logistic of scale std * sqrt(3) / pi."""
    if kind == "gauss":
        return std * sample(jax.random.normal, key, shape, dtype)
    return std * math.sqrt(3) / math.pi * sample(jax.random.logistic, key, shape, dtype)


def noise_config(kind: str, mode: str, std: float):
    """The "noise" collection's one variable: [scale, logistic?, mul?] as float32. The scale is the draw's
    multiplier, std for Gaussian, std * sqrt(3) / pi for logistic noise, rounded to float32 once (as a Python
    constant in the product would be), so the noise values are those `draw_noise` gives."""
    scale = std if kind == "gauss" else std * math.sqrt(3) / math.pi
    return jnp.array([scale, kind == "logistic", mode == "mul"], jnp.float32)


def noise_variables(kind: str, mode: str, std: float) -> dict:
    """The weights' "noise" collection of a CNN with noise layers (what `CNN.init` puts there)."""
    return {"config": noise_config(kind, mode, std)}


def noise_cdf(a, kind: str, std: float):
    """F(a) = P(z < a) of the pre-activation noise z (stochastic binary neuron)."""
    if kind == "gauss":
        return jax.scipy.stats.norm.cdf(a / std)
    return jax.nn.sigmoid(a / (std * math.sqrt(3) / math.pi))


def sign_ste(a):
    """sign(a) in {-1, +1} (sign(0) = +1); backward: the gradient of hard-tanh, 1 where |a| <= 1, else 0
    (Hubara et al.'s straight-through estimator; seed 003's Fig. 2.3 draws the same proxy)."""
    hard_tanh = jnp.clip(a, -1.0, 1.0)
    return hard_tanh + jax.lax.stop_gradient(jnp.where(a >= 0, 1.0, -1.0).astype(a.dtype) - hard_tanh)


class ConvLayer(nn.Module):
    """One conv with its kernel held here (not nn.Conv), so that PNI can perturb it and `impl` pick the
    CPU-friendly form. Kernel [k, k, C, O], initialised as nn.Conv does (LeCun normal over fan-in k*k*C)."""
    features: int
    kernel: int
    stride: int
    use_bias: bool = True
    pni: bool = False
    impl: str = "im2col"

    @nn.compact
    def __call__(self, x):
        k = self.kernel
        w = self.param("kernel", lecun_normal, (k, k, x.shape[-1], self.features))
        if self.pni:  # Rakin et al. 2018: w + a_l * sigma_w * eta; sigma_w is not trained through
            alpha = self.param("pni_alpha", nn.initializers.constant(PNI_INIT), ())
            sigma = jax.lax.stop_gradient(jnp.std(w))
            w = w + alpha * sigma * sample(jax.random.normal, self.make_rng("noise"), w.shape, w.dtype)
        y = conv(x, w, k, self.stride, self.impl)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class CNN(nn.Module):
    """All-convolutional network: per conv, Conv -> (BatchNorm) -> (noise) -> activation where the stack lists
    one; the last conv's output, averaged over any remaining positions, is the logits."""
    n_classes: int
    batch_norm: bool = False
    activation: str = "relu"
    noise: str = "none"
    noise_mode: str = "add"
    noise_std: float = 0.0
    pni: bool = False
    lwta_units: int = 2
    impl: str = "im2col"

    def _noisy(self, a, config):
        """a - z (add) or a * (1 + z) (mul), z the scaled Gaussian or logistic draw; kind and mode are selected
        from the runtime `config` (both draws share the key's random bits, which XLA computes once)."""
        scale, logistic, mul = config[0], config[1], config[2]
        key = self.make_rng("noise")
        draw = jnp.where(logistic > 0, sample(jax.random.logistic, key, a.shape, a.dtype),
                         sample(jax.random.normal, key, a.shape, a.dtype))
        z = scale * draw
        return jnp.where(mul > 0, a * (1 + z), a - z)

    def _lwta(self, a, train):
        """Stochastic LWTA (Panousis et al. 2021): channels = blocks of U competitors (consecutive channels);
        one winner per block and position, drawn from softmax of the competitors' outputs; output = one-hot
        * outputs. Training: the Gumbel-softmax relaxation (a soft one-hot); test: a hard sample."""
        u = self.lwta_units
        h = a.reshape(*a.shape[:-1], a.shape[-1] // u, u)
        g = sample(jax.random.gumbel, self.make_rng("noise"), h.shape, h.dtype)
        if train:
            xi = jax.nn.softmax((h + g) / LWTA_TEMPERATURE, axis=-1)
        else:  # Gumbel-max: argmax(h + g) is a sample of softmax(h)
            xi = jax.nn.one_hot(jnp.argmax(h + g, axis=-1), u, dtype=h.dtype)
        return (xi * h).reshape(a.shape)

    def _activate(self, a, train):
        if self.activation == "relu":
            return nn.relu(a)
        if self.activation == "sign":
            return sign_ste(a)
        if self.activation == "lwta":
            return self._lwta(a, train)
        # stochastic_sign: y = sign(a - z), i.e. +1 with probability F(a); backward through E[y] = 2F(a) - 1
        # (seed 003 eqs. 2.8-2.9). z is the spec's noise, or the standard logistic (F = sigmoid) without one.
        kind, std = (self.noise, self.noise_std) if self.noise != "none" else ("logistic", math.pi / math.sqrt(3))
        z = draw_noise(self.make_rng("noise"), a.shape, kind, std, a.dtype)
        mean = 2 * noise_cdf(a, kind, std) - 1
        return mean + jax.lax.stop_gradient(jnp.where(a - z >= 0, 1.0, -1.0).astype(a.dtype) - mean)

    @nn.compact
    def __call__(self, x, train=False):
        if x.ndim != 4:
            raise ValueError(f"cnn takes images [B, H, W, C]; got shape {tuple(x.shape)}")
        stack = STACKS.get(x.shape[1])
        if stack is None:
            raise ValueError(f"cnn: no conv stack for {x.shape[1]}x{x.shape[2]} images; "
                             f"known heights: {', '.join(map(str, STACKS))}")
        config = None
        if self.noise != "none":
            config = self.variable("noise", "config", noise_config, self.noise, self.noise_mode, self.noise_std).value
        for i, (k, stride, channels, act) in enumerate(stack):
            last = i == len(stack) - 1
            # BN on every conv but the logits' (a per-class affine map of the logits adds nothing to learn);
            # a conv followed by BN needs no bias.
            bn = self.batch_norm and not last
            a = ConvLayer(channels or self.n_classes, k, stride, use_bias=not bn, pni=self.pni, impl=self.impl,
                          name=f"conv{i}")(x)
            if bn:
                a = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn{i}")(a)
            # The spec's noise goes on every conv's pre-activation (after BN), the pooling convs and the logits
            # included (all ten convs were stochastic in the author's runs). A stochastic binary neuron's noise
            # is its own z, drawn inside the activation instead.
            if self.noise != "none" and not (act and self.activation == "stochastic_sign"):
                a = self._noisy(a, config)
            x = self._activate(a, train) if act else a
            # Every block's output, kept only when "intermediates" is mutable (activation heat maps, block-8
            # features of seed 003; the tests count LWTA winners here).
            self.sow("intermediates", f"block{i}", x)
        # Logits: the last conv's output without ReLU (the author's ReLU before flatten made every logit >= 0,
        # a code artifact), averaged over the remaining positions (1x1 for both stacks).
        return x.mean(axis=(1, 2))


def build(spec, n_classes: int, impl: str = "im2col") -> nn.Module:
    """Registry `cnn`: the network of a spec's variant (`spec.VariantSpec`; the Classifier passes a noise rng
    when the variant draws noise, `models.draws_noise`)."""
    checks = [("activation", spec.activation, ACTIVATIONS), ("noise", spec.noise, NOISES),
              ("noise_mode", spec.noise_mode, NOISE_MODES), ("impl", impl, IMPLS)]
    for field, value, known in checks:
        if value not in known:
            raise ValueError(f"cnn: unknown {field} {value!r}; expected one of {', '.join(known)}")
    if spec.noise != "none" and not spec.noise_std > 0:
        raise ValueError(f"cnn: noise {spec.noise!r} needs noise_std > 0; got {spec.noise_std}")
    if spec.activation == "lwta" and spec.lwta_units < 2:
        raise ValueError(f"cnn: lwta needs lwta_units >= 2 competitors per block; got {spec.lwta_units}")
    if spec.activation == "lwta":
        widths = sorted({c for s in STACKS.values() for _, _, c, act in s if act and c})
        bad = [c for c in widths if c % spec.lwta_units]
        if bad:
            raise ValueError(f"cnn: lwta_units {spec.lwta_units} does not divide the conv widths {bad}")
    if spec.activation == "stochastic_sign" and spec.noise != "none" and spec.noise_mode != "add":
        raise ValueError("cnn: the stochastic binary neuron is sign(a - z): its noise_mode must be 'add'")
    # spec.dropout is ignored: the author's network has none (a scenario's dropout augmentation does not apply).
    return CNN(n_classes, spec.batch_norm, spec.activation, spec.noise, spec.noise_mode, spec.noise_std, spec.pni,
               spec.lwta_units, impl)
