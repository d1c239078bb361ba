"""Models: the registry, and how a model sees a dataset's inputs.

A model is a `Model`: a name (params.yaml's `models` lists), the label the paper prints, the input it
takes ("sequence": [B, L, F], images cut into patches by `Classifier`; "image": [B, H, W, C] as they
are), `build(spec, n_classes)` -> a Flax module, `param_groups(weights)` -> the optimizer group of
every leaf ("regular" or "ssm": S4's state-space parameters get their own learning rate and no weight
decay), and the XLA options its compiled programs get (`xla_options`). Every module is applied as
``module.apply({"params": w}, x, train=bool, rngs={"dropout": k})`` and is a pure function of (weights, x),
so it can be jitted, vmapped and differentiated w.r.t. x.

The Flax code lives in one module per model (ff.py, rnn.py, s4.py), imported when a model is built,
so that reading the registry (the Snakefile, `advrepro validate`, the report) does not import Flax.
Adding a model: its module, and one line in MODELS.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry, lazy_function


@dataclass(frozen=True)
class ModelSpec:
    """The architecture knobs of params.yaml's `model` section (and the scenario's dropout)."""
    layer: int            # width: FF hidden layer, RNN encoder, S4 channels H
    hidden: int           # RNN state size, S4 state size N (unused by FF)
    dropout: float = 0.0
    s4_layers: int = 2
    # Image models (seeds 001, 003): the convolutional network's variants.
    batch_norm: bool = False          # Conv -> BatchNorm -> (noise) -> activation blocks
    activation: str = "relu"          # relu | sign (deterministic, straight-through) | stochastic_sign | lwta
    noise: str = "none"               # none | gauss | logistic: noise on the pre-activations, at test time too
    noise_mode: str = "add"           # add: a - z | mul: a * (1 + z)
    noise_std: float = 0.0            # the noise's standard deviation (logistic: scale std * sqrt(3) / pi)
    pni: bool = False                 # parametric noise injection on the weights (learned scale per layer)
    lwta_units: int = 2               # LWTA: competing units per block
    # Seed 004's networks (convnet): the number of 3x3 convolutions and a factor on the conv width (`hidden`).
    convs: int = 2
    width_scale: float = 1.0


def draws_noise(spec) -> bool:
    """Whether a ModelSpec's (or a VariantSpec's) network draws from the "noise" rng, in training and at test
    time: noise layers, parametric noise injection, stochastic binary neurons, LWTA."""
    return spec.noise != "none" or spec.pni or spec.activation in ("stochastic_sign", "lwta")


def weight_collections(spec) -> tuple:
    """The Flax collections a variant's weights hold beside "params": BatchNorm's running statistics, the noise
    layers' configuration (a runtime constant, so that the noise variants share compiled code; models/cnn.py)."""
    return (("batch_stats",) if spec.batch_norm else ()) + (("noise",) if spec.noise != "none" else ())


def lazy(module: str, attr: str) -> Callable:
    """A function of `advrepro.models.<module>`, imported at the first call."""
    return lazy_function(f"{__name__}.{module}", attr)


def all_regular(weights):
    import jax

    return jax.tree_util.tree_map(lambda _: "regular", weights)


@dataclass(frozen=True)
class Model:
    name: str
    label: str
    build: Callable            # (ModelSpec, n_classes) -> flax.linen.Module
    input: str = "sequence"    # sequence | image
    param_groups: Callable = all_regular  # weights -> pytree of "regular" | "ssm"
    # XLA options for every program that runs this model (jax.jit's compiler_options; see `Classifier.jit`)
    xla_options: tuple[tuple[str, str], ...] = ()
    # The module takes robust training's copies [B, C, ...] in one call, all copies of sample b with b's dropout
    # mask (see robust.copies_logits); else the copies are mapped over with one key (jax.vmap).
    batched_copies: bool = False


# S4 on the CPU: XLA's YNNPACK fusions put its channels-first products together with the elementwise work around
# them (LayerNorm, GELU, their gradients) into single kernels that ran 2.5x slower than XLA's own loops beside
# a plain product (offline Algorithm 1 step: 88 against 36 ms). The option is one of the CPU backend's, which a
# GPU compilation does not read (not yet run on a GPU here).
S4_XLA_OPTIONS = (("xla_cpu_experimental_ynn_fusion_type", ""),)


MODELS: Registry[Model] = Registry("model", [
    Model("ff", "FF", lazy("ff", "build")),
    Model("gru", "GRU", lazy("rnn", "build_gru")),
    Model("lstm", "LSTM", lazy("rnn", "build_lstm")),
    Model("s4", "S4", lazy("s4", "build"), param_groups=lazy("s4", "param_groups"), xla_options=S4_XLA_OPTIONS,
          batched_copies=True),
    Model("cnn", "CNN", lazy("cnn", "build"), input="image"),
    Model("convnet", "ConvNet", lazy("convnet", "build"), input="image"),
])
MODEL_NAMES = tuple(MODELS)


def build_model(name, *, n_classes, layer, hidden, dropout=0.0, s4_layers=2, conv=None, frame_norm=False,
                **variant):
    """Model `name` of MODELS at these sizes; `conv` = (channels, kernel, stride) puts a `ConvFrontend`
    in front, `frame_norm` a `FrameNorm`; `variant`: ModelSpec's image-model fields (batch_norm, noise, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; expected one of {MODELS.names()}")
    model = MODELS[name].build(ModelSpec(layer, hidden, dropout, s4_layers, **variant), n_classes)
    if frame_norm or conv is not None:
        from .frontends import ConvFrontend, FrameNorm

        if frame_norm:
            model = FrameNorm(model)
        if conv is not None:
            model = ConvFrontend(model, *conv)
    return model
