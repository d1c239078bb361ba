"""Training defences: the protocol and the registry.

A defence is a `Defence`: a name (params.yaml's `algorithm` values name the robust ones), the label the
captions print, and the two halves of a min-max training step:
- `inner(classifier, weights, x, y, spec, epsilon, n_classes, key)` -> the attacked inputs the loss needs
  (None for plain training): the inner maximization, computed without gradient to the weights
  (Danskin's theorem), so it stays outside the differentiated function; `key` for its random draws and a
  stochastic model's noise;
- `loss(train_logits, weights, x, y, attacked, spec)` -> (loss, clean logits): the outer objective.
`spec` is the scenario's `spec.DefenceSpec` (algorithm, epsilon, K, stepsize, ...); `train_logits(weights, x)` gives the
training-mode logits (dropout) of the classifier (`Classifier.training_logits`; copies of a batch go through
`robust.copies_logits`, which keeps each sample's dropout mask on its copies).

One module per defence (plain.py, minmax.py), imported when a step is built. Adding a defence: its
module and one line in DEFENCES (and its name in a params section's `algorithm`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry, lazy_function


@dataclass(frozen=True)
class Defence:
    name: str
    label: str
    inner: Callable   # (classifier, weights, x, y, spec, epsilon, n_classes, key) -> attacked inputs | None
    loss: Callable    # (train_logits, weights, x, y, attacked, spec) -> (loss, clean logits)


def _lazy(module: str, attr: str) -> Callable:
    return lazy_function(f"{__name__}.{module}", attr)


@dataclass(frozen=True)
class Augmentation:
    """A regularization kind (thesis section 3.4.1): what a scenario adds to its defence."""
    name: str
    dropout: bool = True        # the model trains with the section's regularization.dropout
    images: bool = True         # images are augmented on the fly (noise, rotation, enlarge-and-crop)
    crop: bool = True           # images: with the random enlargement and crop (Table 5.2's reduced set: without)
    views: str | None = None    # audio: the array of pre-drawn augmented training views it trains on


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", [
    Augmentation("none", dropout=False, images=False, crop=False),
    Augmentation("full", views="x_train_views"),                    # waveform noise, masking, resampling
    Augmentation("reduced", crop=False),                            # Table 5.2: noise, rotation, dropout
    Augmentation("spectrogram", images=False, crop=False, views="x_train_spec_views"),  # Tables 5.6, 5.7
    Augmentation("dropout", images=False, crop=False),              # seed 004: the network's dropout only
])

DEFENCES: Registry[Defence] = Registry("defence", [
    Defence("plain", "plain training", _lazy("plain", "inner"), _lazy("plain", "loss")),
    Defence("alg1", "Algorithm~1", _lazy("minmax", "inner"), _lazy("minmax", "loss_alg1")),
    Defence("alg2", "Algorithm~2", _lazy("minmax", "inner"), _lazy("minmax", "loss_alg2")),
    # The seeds' schemes (001, 003): defences/adversarial.py
    Defence("smooth", "label smoothing", _lazy("plain", "inner"), _lazy("adversarial", "smooth_loss")),
    Defence("pgd_at", "PGD adversarial training", _lazy("adversarial", "pgd_inner"),
            _lazy("adversarial", "adversarial_loss")),
    Defence("fgsm_mix", "clean and FGSM training", _lazy("adversarial", "fgsm_inner"),
            _lazy("adversarial", "mixed_loss")),
    Defence("pool", "mixed-attack training", _lazy("adversarial", "pool_inner"),
            _lazy("adversarial", "adversarial_loss")),
])


def defence_for(spec) -> Defence:
    """The defence a `DefenceSpec` names (its `algorithm`); plain training for None."""
    return DEFENCES["plain" if spec is None else spec.algorithm]
