"""A model seen as a function of a dataset's inputs, built from an experiment's spec."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .. import checkpoint, paths
from ..errors import CheckpointError
from . import MODELS, build_model, weight_collections


def to_sequence(x, patch: int = 1):
    """Images [..., H, W, C] -> sequences [..., (H/patch)(W/patch), patch*patch*C] in raster order.

    patch=1 is the thesis's pixel-by-pixel feeding ([784, 1] for MNIST); the offline profile
    feeds 2x2 patches to shorten the sequences (params.yaml: model.patch)."""
    *lead, h, w, c = x.shape
    x = x.reshape(*lead, h // patch, patch, w // patch, patch, c)
    x = jnp.moveaxis(x, -3, -4)  # [..., H/p, W/p, p, p, C]
    return x.reshape(*lead, (h // patch) * (w // patch), patch * patch * c)


def to_images(x, patch: int, image_shape):
    """The inverse of `to_sequence`: sequences [..., L, F] -> images [..., H, W, C]."""
    h, w, c = image_shape
    *lead, _, _ = x.shape
    x = jnp.moveaxis(x.reshape(*lead, h // patch, w // patch, patch, patch, c), -4, -3)
    return x.reshape(*lead, h, w, c)


@dataclass
class Classifier:
    """A Flax model seen as a function of the dataset's inputs: images [B, H, W, C] are cut into
    sequences for sequence models (see `to_sequence`; FF flattens), audio [B, T, F] is a sequence
    already, and image models take images as they are (patch None).

    `weights` are the model's parameters; for a model with `collections` beside them they are Flax's variables
    {"params", "batch_stats" (BatchNorm's running statistics), "noise" (the noise layers' constant
    configuration)}, of which only "params" are trained (`trainable`). A `stochastic` model draws noise at test
    time too, from the `key` its logits get (deterministic models ignore it)."""
    model: object
    patch: int | None = 1
    stochastic: bool = False
    collections: tuple = ()
    xla_options: tuple = ()  # the model's XLA options (models.Model.xla_options), for `jit`
    batched_copies: bool = False  # models.Model.batched_copies

    def jit(self, fn, **kwargs):
        """jax.jit(fn, **kwargs) compiled with the model's XLA options: every program running it uses this."""
        return jax.jit(fn, compiler_options=dict(self.xla_options) or None, **kwargs)

    def sequence(self, x):
        return x if self.patch is None else to_sequence(x, self.patch)

    def images(self, x, image_shape):
        """The inverse of `sequence`: model inputs [..., L, F] back to images [..., H, W, C]."""
        return x if self.patch is None else to_images(x, self.patch, image_shape)

    def on_model_inputs(self) -> Classifier:
        """The same classifier taking inputs already in the model's layout (`sequence(x)`), not images."""
        return dataclasses.replace(self, patch=None)

    def _variables(self, weights):
        return weights if self.collections else {"params": weights}

    def _rngs(self, key, train):
        if not self.stochastic:
            return {"dropout": key} if train else {}
        if key is None:
            raise ValueError("a stochastic model's logits need a noise key")
        return {"dropout": key, "noise": jax.random.fold_in(key, 1)} if train else {"noise": key}

    def logits(self, weights, x, key=None):
        return self.model.apply(self._variables(weights), self.sequence(x), train=False, rngs=self._rngs(key, False))

    def intermediates(self, weights, x, key=None):
        """(logits, {block name: output}) of a test-mode forward pass: what the model `sow`s into its
        "intermediates" collection (the CNN's conv blocks; {} for models that keep none)."""
        logits, state = self.model.apply(self._variables(weights), self.sequence(x), train=False,
                                         rngs=self._rngs(key, False), mutable=["intermediates"])
        return logits, {name: value[0] for name, value in state.get("intermediates", {}).items()}

    def train_logits(self, weights, x, key):
        if "batch_stats" in self.collections:  # this batch's statistics; `updated_stats` moves the running ones
            return self.model.apply(weights, self.sequence(x), train=True, rngs=self._rngs(key, True),
                                    mutable=["batch_stats"])[0]
        return self.model.apply(self._variables(weights), self.sequence(x), train=True, rngs=self._rngs(key, True))

    def training_logits(self, key) -> TrainingLogits:
        """train_logits with the step's dropout key, as a defence's loss takes it: fn(weights, x)."""
        return TrainingLogits(self, key)

    def trainable(self, weights):
        return weights["params"] if self.collections else weights

    def with_trainable(self, weights, trained):
        return {**weights, "params": trained} if self.collections else trained

    def updated_stats(self, weights, x, key):
        """The weights with BatchNorm's running statistics moved towards this batch's (a training-mode
        forward pass of the clean batch, no gradient); the weights themselves for other models."""
        if "batch_stats" not in self.collections:
            return weights
        _, new = self.model.apply(weights, self.sequence(x), train=True, rngs=self._rngs(key, True),
                                  mutable=["batch_stats"])
        return {**weights, "batch_stats": jax.lax.stop_gradient(new["batch_stats"])}


def classifier_for(spec, n_classes: int) -> Classifier:
    """The classifier of an experiment's `ExperimentSpec`: its model at the dataset's sizes, with the
    dataset's front end."""
    exp, arch = spec.experiment, spec.architecture
    dropout = spec.regularization.dropout if exp.scenario.augmentation.dropout else 0.0
    # frame_norm names the representations (dataset name suffixes: mel, meldb) that get a FrameNorm.
    frame_norm = exp.dataset.rsplit("-", 1)[-1] in arch.frame_norm
    patch = arch.patch if MODELS[exp.model].input == "sequence" else None
    variant = spec.variant
    return Classifier(build_model(exp.model, n_classes=n_classes, layer=arch.layer, hidden=arch.hidden,
                                  dropout=dropout, s4_layers=arch.s4_layers, conv=arch.conv, frame_norm=frame_norm,
                                  **dataclasses.asdict(variant)),
                      patch=patch, stochastic=variant.stochastic, collections=weight_collections(variant),
                      xla_options=MODELS[exp.model].xla_options, batched_copies=MODELS[exp.model].batched_copies)


@dataclass(frozen=True)
class TrainingLogits:
    """fn(weights, x): the classifier's training-mode logits with one dropout key. `batched_copies` tells
    robust.copies_logits that the model takes copies [B, C, ...] in one call, with sample b's mask on all of
    b's copies; `rows_independent`, robust.worst_copy_loss that it may run the worst copies alone."""
    classifier: Classifier
    key: object

    @property
    def batched_copies(self) -> bool:
        return self.classifier.batched_copies

    @property
    def rows_independent(self) -> bool:
        """Whether each row's logits depend on that row alone (robust.worst_copy_loss): not with BatchNorm's
        batch statistics."""
        return "batch_stats" not in self.classifier.collections

    def __call__(self, weights, x):
        return self.classifier.train_logits(weights, x, self.key)


def init_weights(clf: Classifier, seed: int, sample: np.ndarray):
    """Initial weights: fold(seed, 0), the same for every scenario of a model."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
    rngs = {"params": key, "noise": jax.random.fold_in(key, 1)} if clf.stochastic else key
    variables = clf.model.init(rngs, clf.sequence(jnp.asarray(sample[:1])), train=False)
    return dict(variables) if clf.collections else variables["params"]


def load_trained(spec, data):
    """The classifier and the trained weights of an experiment's checkpoint."""
    clf = classifier_for(spec, data.n_classes)
    # Only the weights' structure and shapes are needed: trace the initializer, do not run it.
    template = jax.eval_shape(lambda: init_weights(clf, spec.seed, data.x_train))
    state, header = checkpoint.load(paths.checkpoint(spec.id), {"params": template}, experiment=spec.id)
    epochs = spec.train.epochs
    if header["epoch"] != epochs:  # trained under another epoch count: refuse it
        raise CheckpointError(f"{paths.checkpoint(spec.id)}: holds epoch {header['epoch']} of {epochs}; "
                              f"training did not finish: run `advrepro train {spec.id}` again")
    return clf, state["params"]
