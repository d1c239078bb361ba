"""Robust training losses: Algorithms 1 and 2 of the thesis (section 2.2.5), after
Nouiehed et al. 2019.

For every sample i and every target class j, K signed-gradient ascent steps on the
margin Z_j - Z_{y_i}, each projected onto the epsilon-ball around x_i (and [-1, 1]).
All B x C copies are attacked at once as one batched tensor. The loss is the mean
over samples of the maximum over j of the cross-entropy of the attacked copies;
Algorithm 2 also puts the unmodified sample into that maximum.

Choices where the thesis's pseudo-code is ambiguous (see the paper's "Deviations"):
- step 3a is the gradient of Z_j - Z_y (the thesis writes max(Z_j, -Z_y));
- step 3c projects onto the ball around x (the thesis clips the step);
- step 6 takes the max of cross-entropies (the thesis writes a max of softmax values);
- Algorithm 1 attacks the C - 1 wrong classes only: the copy j = y has an identically zero
  margin, so it would stay the clean sample, and in the maximum it would make Algorithm 1
  equal Algorithm 2 (the thesis's pseudo-code runs j over every class);
- the inner attack runs the model in evaluation mode (no dropout).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .attacks.base import cross_entropy, noise_key, project


def wrong_classes(y, n_classes):
    """[B, C - 1]: per sample, every class but its own, ascending."""
    j = jnp.arange(n_classes - 1)[None, :]
    return j + (j >= y[:, None]).astype(j.dtype)


def wrong_class_copies(logits_fn, params, x, y, n_classes, epsilon, K, stepsize, key=None, shared_start=False):
    """x [B, ...] -> attacked copies [C - 1, B, ...], copy t of sample i pushed towards its t-th wrong class
    (`targeted_copies` on `wrong_classes`). Not towards y: that copy's margin Z_y - Z_y is identically zero, it
    would stay the clean sample, a tenth of MNIST's attack work for nothing."""
    return targeted_copies(logits_fn, params, x, y, wrong_classes(y, n_classes), epsilon, K, stepsize, key,
                           shared_start)


def likeliest_wrong_classes(logits_fn, params, x, y, n_targets, key=None):
    """[B, n_targets]: per sample, the wrong classes with the highest clean logits (evaluation mode).
    With many classes (GTSRB's 43) the maximum over all targets is dominated by the most confusable
    ones; attacking only those cuts the cost by C / n_targets."""
    z = logits_fn(params, x, None if key is None else jax.random.fold_in(key, 1))
    z = jnp.where(jnp.arange(z.shape[-1])[None, :] == y[:, None], -jnp.inf, z)
    return jax.lax.stop_gradient(jax.lax.top_k(z, n_targets)[1])


def targeted_copies(logits_fn, params, x, y, targets, epsilon, K, stepsize, key=None, shared_start=False):
    """x [B, ...] and targets [B, T] -> attacked copies [T, B, ...]: copy t of sample i takes K signed steps
    up the margin Z_t - Z_{y_i}, t = targets[i, t]; step k's model noise is noise_key(key, k) (stochastic
    models).

    The copies are copy-major, one block of B rows per target: the loss maps the model over the copy axis
    (`copies_logits`), and a map wants that axis first, so no transpose is left between the steps and the
    loss. shared_start (deterministic models): every copy starts at its sample, so the first step runs the
    forward pass of the B samples once and only its backward pass per copy (the pass's VJP mapped over the T
    margins). The copies were the same bytes as with all T x B rows wherever checked: the tests (an FF and a GRU,
    every class and the likeliest ones, under jit) and the README's cases; XLA promises no such thing."""
    b, t = targets.shape
    rows = (t * b,) + x.shape[1:]

    def margin_weights(n_classes):  # [T, B, classes]: d(Z_t - Z_y)/dZ, one row block per target
        return jax.nn.one_hot(targets.T, n_classes) - jax.nn.one_hot(y, n_classes)

    def total_margin(xs, k):
        z = logits_fn(params, xs.reshape(rows), noise_key(key, k))
        return jnp.sum(z.reshape(t, b, -1) * margin_weights(z.shape[-1]))

    def step(k, xs):  # the ball's centre x [B, ...] broadcasts over the copies: it is not stored T times
        return project(xs + stepsize * jnp.sign(jax.grad(total_margin)(xs, k)), x, epsilon)

    if shared_start:
        def first(xs):  # every copy still at x: one forward pass for the B samples, its VJP mapped over T margins
            z, vjp = jax.vjp(lambda v: logits_fn(params, v, noise_key(key, 0)), x)
            return project(x + stepsize * jnp.sign(jax.vmap(vjp)(margin_weights(z.shape[-1]))[0]), x, epsilon)

        # inside the loop, so the first step writes the loop's own buffers; outside it XLA fused it with the
        # making of x (images cut into patches) and the offline FF step took 1.3x as long
        def body(k, xs):
            return jax.lax.cond(k == 0, first, lambda xs: step(k, xs), xs)
    else:
        body = step
    xs = jax.lax.fori_loop(0, K, body, jnp.broadcast_to(x, (t,) + x.shape))
    return jax.lax.stop_gradient(xs)


def copies_logits(train_logits_fn, params, copies):
    """Training-mode logits [B, C, classes] of copies [C, B, ...] (copy-major), every copy with its sample's
    dropout mask: the model mapped over the copy axis with one key, or, where the model shares its masks
    over the copies itself (`train_logits_fn.batched_copies`, models.Model.batched_copies: mapped, S4's
    channels-first activations were transposed around every product of the step), one call on [B, C, ...]."""
    if getattr(train_logits_fn, "batched_copies", False):
        return train_logits_fn(params, jnp.moveaxis(copies, 0, 1))
    return jax.vmap(lambda xc: train_logits_fn(params, xc), in_axes=0, out_axes=1)(copies)


def worst_copy_loss(train_logits_fn, params, copies, y):
    """[B]: each sample's largest training-mode cross-entropy over its copies [T, B, ...], as a function of params.

    The maximum's gradient flows through one copy per sample. So where the model's rows are independent
    (`train_logits_fn.rows_independent`: no BatchNorm, whose batch statistics couple them), the T x B copies'
    cross-entropies are computed without gradient, and only each sample's worst copy (argmax, the first of
    equals) runs the training-mode pass again, forward and backward: the loss's backward pass runs over B rows,
    not T x B (offline MNIST Algorithm 1 step, GRU 27 -> 19 ms, LSTM 32 -> 23 ms; the weights after a step were
    the same bytes). The worst copy sees its sample's dropout mask, as in `copies_logits`."""
    def ce(logits):  # [B, T]
        return cross_entropy(logits, jnp.broadcast_to(y[:, None], logits.shape[:-1]))

    if not getattr(train_logits_fn, "rows_independent", False):
        return jnp.max(ce(copies_logits(train_logits_fn, params, copies)), axis=1)
    worst = jnp.argmax(ce(copies_logits(train_logits_fn, jax.lax.stop_gradient(params), copies)), axis=1)
    return cross_entropy(train_logits_fn(params, copies[worst, jnp.arange(y.shape[0])]), y)


def robust_loss(train_logits_fn, params, x, copies, y, *, algorithm):
    """Algorithm 1 / 2 loss from the attacked copies [T, B, ...] (copy-major, none of them towards the true
    class: `wrong_class_copies` or `targeted_copies`; computed beforehand, without gradient to the weights:
    Danskin's theorem), plus the clean logits of the batch.

    train_logits_fn(params, x) gives training-mode logits (with dropout). All copies of a sample see its
    dropout mask (`copies_logits`): the maximum then compares attacks on one network, not dropout draws
    (with independent masks the maximum rewarded uniform outputs, and the LSTM collapsed to them).
    """
    clean_logits = train_logits_fn(params, x)
    worst = jnp.mean(worst_copy_loss(train_logits_fn, params, copies, y))
    if algorithm == "alg1":
        return worst, clean_logits
    if algorithm == "alg2":
        # The thesis's text: the loss of the worst-case copy *and* of the unmodified sample. (Its
        # formula, a maximum that also runs over the clean sample, almost never picks the clean sample
        # and trained exactly as Algorithm 1 in our runs.)
        return 0.5 * (worst + jnp.mean(cross_entropy(clean_logits, y))), clean_logits
    raise ValueError(f"unknown robust algorithm {algorithm!r} (alg1 or alg2)")
