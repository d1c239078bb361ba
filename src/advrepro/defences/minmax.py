"""Algorithms 1 and 2 of the thesis (section 2.2.5), after Nouiehed et al. 2019: per sample, one copy
attacked towards every wrong class (or the `targets` likeliest ones), then the maximum of their losses
(robust.py holds the math and the choices where the thesis's pseudo-code is ambiguous)."""
from __future__ import annotations

from ..robust import class_targeted_copies, likeliest_wrong_classes, robust_loss, targeted_copies


def inner(classifier, weights, x, y, spec, epsilon, n_classes, key=None):
    """The attacked copies [B, C or T, ...] (evaluation-mode model, no gradient to the weights)."""
    if spec.targets is not None:  # the likeliest wrong classes only
        targets = likeliest_wrong_classes(classifier.logits, weights, x, y, spec.targets, key)
        return targeted_copies(classifier.logits, weights, x, y, targets, epsilon, spec.K, spec.stepsize, key)
    return class_targeted_copies(classifier.logits, weights, x, y, n_classes, epsilon, spec.K, spec.stepsize, key)


def _loss(algorithm):
    def loss(train_logits, weights, x, y, attacked, spec):
        return robust_loss(train_logits, weights, x, attacked, y, algorithm=algorithm,
                           all_classes=spec.targets is None)

    return loss


loss_alg1 = _loss("alg1")
loss_alg2 = _loss("alg2")
