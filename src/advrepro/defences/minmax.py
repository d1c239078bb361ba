"""Algorithms 1 and 2 of the thesis (section 2.2.5), after Nouiehed et al. 2019: per sample, one copy
attacked towards every wrong class (or the `targets` likeliest ones), then the maximum of their losses
(robust.py holds the math and the choices where the thesis's pseudo-code is ambiguous)."""
from __future__ import annotations

from ..robust import likeliest_wrong_classes, robust_loss, targeted_copies, wrong_class_copies


def shares_first_step(classifier) -> bool:
    """Whether the attack's copies share their first forward pass (robust.targeted_copies: shared_start): a
    deterministic model that the loss maps over the copies (not S4, see `inner`)."""
    return not (classifier.stochastic or classifier.batched_copies)


def inner(classifier, weights, x, y, spec, epsilon, n_classes, key=None):
    """The attacked copies [C - 1 or T, B, ...], copy-major (evaluation-mode model, no gradient to the weights).

    The attack runs on the model's own input layout (sequences): the images are cut once, not in each of the
    K forward and backward passes over the B x (C - 1) copies; its steps are elementwise, so the copies are the same
    bytes, and they go back to the images' layout for the loss.

    The copies of a deterministic model share their first forward pass (robust.targeted_copies: shared_start),
    except S4's: the model that takes its copies in one call (batched_copies) because a map's axis before its
    channels slows it, and mapping its VJP over the margins did so too (offline step 1.2x as long)."""
    model, xs = classifier.on_model_inputs(), classifier.sequence(x)
    attack = dict(epsilon=epsilon, K=spec.K, stepsize=spec.stepsize, key=key,
                  shared_start=shares_first_step(classifier))
    if spec.targets is not None:  # the likeliest wrong classes only
        targets = likeliest_wrong_classes(model.logits, weights, xs, y, spec.targets, key)
        copies = targeted_copies(model.logits, weights, xs, y, targets, **attack)
    else:
        copies = wrong_class_copies(model.logits, weights, xs, y, n_classes, **attack)
    return classifier.images(copies, x.shape[1:])


def _loss(algorithm):
    def loss(train_logits, weights, x, y, attacked, spec):
        return robust_loss(train_logits, weights, x, attacked, y, algorithm=algorithm)

    return loss


loss_alg1 = _loss("alg1")
loss_alg2 = _loss("alg2")
