"""Tests for advrepro.models: shapes, gradients, S4 conv == recurrence, SSM mask, dropout."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advrepro.models import MODEL_NAMES, MODELS, build_model
from advrepro.models.s4 import (
    S4SSM,
    causal_convolution,
    discrete_DPLR,
    kernel_DPLR,
    make_DPLR_HiPPO,
    make_HiPPO,
    scan_SSM,
    ssm_param_mask,
)

# The sequence models (the image CNN of the seed parts has its own tests: test_cnn.py)
SEQUENCE_MODELS = tuple(n for n in MODEL_NAMES if MODELS[n].input == "sequence")

SMALL = dict(n_classes=5, layer=8, hidden=4)


@functools.cache
def _params(name, F):
    """SMALL model params for input [*, 16, F], shared by tests (random init is slow to compile)."""
    x = jnp.zeros((1, 16, F))
    return build_model(name, **SMALL).init(jax.random.PRNGKey(0), x, train=False)["params"]


def _leaves_with_names(tree):
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in flat]


@pytest.mark.parametrize("F", [1, 3])
@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_logits_and_input_gradients(name, F):
    model = build_model(name, **SMALL)
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 16, F))
    params = _params(name, F)

    def loss(x):  # one compile gives both the logits and d(logit_0)/dx
        logits = model.apply({"params": params}, x, train=False)
        return logits[:, 0].sum(), logits

    g, logits = jax.jit(jax.grad(loss, has_aux=True))(x)
    assert logits.shape == (3, SMALL["n_classes"]) and logits.dtype == jnp.float32
    assert jnp.all(jnp.isfinite(logits))
    assert g.shape == x.shape
    assert jnp.all(jnp.isfinite(g)) and jnp.any(g != 0)
    if F == 1:  # vmap over examples (as a batched attack would) gives the same logits
        one = lambda xi: model.apply({"params": params}, xi[None], train=False)[0]
        per_ex = jax.jit(jax.vmap(one))(x)
        np.testing.assert_allclose(per_ex, logits, rtol=1e-5, atol=1e-5)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="transformer"):
        build_model("transformer", **SMALL)


def test_dplr_hippo_reconstructs_hippo():
    N = 8
    Lambda, P, B, V = make_DPLR_HiPPO(N)
    A = V @ (np.diag(Lambda) - np.outer(P, P.conj())) @ V.conj().T
    np.testing.assert_allclose(A, make_HiPPO(N), atol=1e-10)
    assert np.all(Lambda.real < 0)


@functools.partial(jax.jit, static_argnums=0)
def _both_views(L, Lambda, P, B, C, step, u):
    """(Ab, conv-view y, recurrent-view y) of the DPLR SSM with Q = P; one compile per dtype."""
    Ab, Bb, Cb = discrete_DPLR(Lambda, P, P, B, C, step, L)
    _, y_rec = scan_SSM(Ab, Bb, Cb, u, jnp.zeros_like(Lambda))
    return Ab, causal_convolution(u, kernel_DPLR(Lambda, P, P, B, C, step, L)), y_rec


@pytest.mark.parametrize("step", [1e-3, 1e-2, 1e-1])
def test_conv_view_equals_recurrent_view(step):
    N, L = 8, 16
    Lambda, P, B, _ = make_DPLR_HiPPO(N)
    rng = np.random.default_rng(0)
    C = rng.normal(size=N) + 1j * rng.normal(size=N)
    u = rng.normal(size=L)
    with jax.enable_x64(True):
        Ab, y_conv, y_rec = _both_views(L, *map(jnp.asarray, (Lambda, P, B, C, step, u)))
        np.testing.assert_allclose(y_conv, y_rec, atol=1e-10)
        # the Woodbury inverse in discrete_DPLR == the dense bilinear transform
        A = np.diag(Lambda) - np.outer(P, P.conj())
        identity = np.eye(N)
        Ab_dense = np.linalg.solve(identity - step / 2 * A, identity + step / 2 * A)
        np.testing.assert_allclose(Ab, Ab_dense, atol=1e-10)
    # the float32 path used in training agrees with the float64 recurrence
    c64, f32 = jnp.complex64, jnp.float32
    args = zip((Lambda, P, B, C, step, u), (c64, c64, c64, c64, f32, f32), strict=True)
    _, y32, _ = _both_views(L, *(jnp.asarray(a, d) for a, d in args))
    assert y32.dtype == jnp.float32
    np.testing.assert_allclose(y32, np.asarray(y_rec), atol=1e-4)


def test_s4_layer_equals_its_recurrence():
    """The H-channel S4 module (conv view, float32) == per-channel discretised recurrence + D u."""
    H, N, L = 3, 8, 16
    import flax.linen as nn

    from advrepro.models.s4 import s4_layer

    class Layer(nn.Module):
        @nn.compact
        def __call__(self, u):
            return s4_layer(u, N)

    u = jax.random.normal(jax.random.PRNGKey(2), (H, 2, L))  # channels first, time last
    params = jax.jit(Layer().init)(jax.random.PRNGKey(3), u)["params"]["s4"]
    y = jax.jit(Layer().apply)({"params": {"s4": params}}, u)
    assert y.shape == u.shape
    assert len(np.unique(np.asarray(params["log_step"]))) == H  # channels get their own steps

    def recurrence(p, uh):  # one channel: its params p, input uh [L]
        Lambda, P, B, C, D, step = S4SSM(N=N).apply({"params": p}, method="ssm")
        _, y_rec = scan_SSM(*discrete_DPLR(Lambda, P, P, B, C, step, L), uh, jnp.zeros(N))
        return y_rec + D * uh

    with jax.enable_x64(True):  # float64 reference, so the tolerance measures the float32 module
        p64, u64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (params, u))
        per_channel = jax.vmap(recurrence, in_axes=(0, 0))  # uh [H, L] -> [H, L]
        y_rec = jax.jit(jax.vmap(per_channel, in_axes=(None, 1), out_axes=1))(p64, u64)
        np.testing.assert_allclose(y, np.asarray(y_rec), atol=1e-4)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_ssm_param_mask(name):
    params = _params(name, 1)
    mask = ssm_param_mask(params)
    assert jax.tree.structure(mask) == jax.tree.structure(params)
    marked = [k for k, m in _leaves_with_names(mask) if m]
    if name == "s4":
        assert marked and all("['s4']" in k for k in marked)
        assert not any(k.endswith(("['C']", "['D']")) for k in marked)
    else:
        assert marked == []
    assert not any(k.endswith(("['kernel']", "['bias']")) for k in marked)


def test_dropout_only_in_training():
    model = build_model("ff", **SMALL, dropout=0.5)  # dropout adds no parameters
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 16, 1))
    v = {"params": _params("ff", 1)}
    a, b = (model.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(k)}) for k in (1, 2))
    assert not np.allclose(a, b)
    e1 = model.apply(v, x, train=False)
    e2 = model.apply(v, x, train=False, rngs={"dropout": jax.random.PRNGKey(3)})
    np.testing.assert_array_equal(e1, e2)


def test_parameter_counts_mnist_size():
    x = jax.ShapeDtypeStruct((1, 784, 1), jnp.float32)
    for name in SEQUENCE_MODELS:
        model = build_model(name, n_classes=10, layer=128, hidden=64)
        shapes = jax.eval_shape(lambda x, model=model: model.init(jax.random.PRNGKey(0), x, train=False), x)
        n = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes["params"]))
        print(f"{name}: {n} parameters")
        assert n > 0


@pytest.mark.parametrize("L", [16, 200])  # the direct (Toeplitz) branch and the FFT branch
def test_causal_convolution_matches_numpy(L):
    from advrepro.models.s4 import DIRECT_CONV_MAX_L, causal_convolution

    assert (L <= DIRECT_CONV_MAX_L) == (L == 16)
    rng = np.random.default_rng(L)
    u, K = rng.normal(size=(3, L)), rng.normal(size=L)
    expected = np.stack([np.convolve(row, K)[:L] for row in u])
    np.testing.assert_allclose(np.asarray(causal_convolution(jnp.asarray(u), jnp.asarray(K))), expected,
                               rtol=1e-4, atol=1e-4)
    # one kernel per channel: K [H, L] on u [H, ..., L]
    u, K = rng.normal(size=(2, 3, 2, L)), rng.normal(size=(2, L))
    expected = np.stack([[[np.convolve(row, K[h])[:L] for row in rows] for rows in u[h]] for h in range(2)])
    np.testing.assert_allclose(np.asarray(causal_convolution(jnp.asarray(u), jnp.asarray(K))), expected,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("u_shape,k_shape", [((3, 2, 200), (3, 200)), ((4, 200), (200,)), ((1, 5, 200), (1, 200))])
def test_fft_convolution_gradients_are_those_of_autodiff(u_shape, k_shape):
    """The FFT convolution's hand-written cotangents (correlations) equal JAX's autodiff of the same FFTs,
    for one kernel per channel, one for all rows, and a single channel."""
    from advrepro.models.s4 import fft_convolution

    def autodiffed(u, K):
        L = u.shape[-1]
        Kf = jnp.fft.rfft(K, 2 * L)
        Kf = Kf.reshape(Kf.shape[:-1] + (1,) * (u.ndim - K.ndim) + Kf.shape[-1:])
        return jnp.fft.irfft(jnp.fft.rfft(u, 2 * L) * Kf, 2 * L)[..., :L]

    u, K, out = (jax.random.normal(jax.random.PRNGKey(i), s) for i, s in enumerate((u_shape, k_shape, u_shape)))
    grads = lambda conv: jax.jit(jax.grad(lambda u, K: jnp.sum(conv(u, K) * out), (0, 1)))(u, K)
    for got, want in zip(grads(fft_convolution), grads(autodiffed), strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))


@pytest.mark.parametrize("axis,leading", [(0, True), (-1, True), (1, True), (0, False), (-1, False)])
def test_feature_mix_gradients_are_those_of_its_product(axis, leading):
    """FeatureDense's product has hand-written cotangents (each in its primal's layout): they must be the
    autodiff gradients of the same dot_general, under jit and vmap too."""
    from advrepro.models.s4 import _mix, mix

    x = jnp.moveaxis(jax.random.normal(jax.random.PRNGKey(0), (6, 3, 5)), 0, axis)  # 6 features on `axis`
    kernel = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
    out = jax.random.normal(jax.random.PRNGKey(2), _mix(kernel, x, axis, leading).shape)
    loss = lambda f: (lambda k, xx: jnp.sum(f(k, xx, axis, leading) * out))
    ours, ref = jax.grad(loss(mix), (0, 1)), jax.grad(loss(_mix), (0, 1))
    for got, want in zip(jax.jit(ours)(kernel, x), ref(kernel, x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    batched = jax.vmap(ours, in_axes=(None, 0)), jax.vmap(ref, in_axes=(None, 0))
    xs = jnp.stack([x, 2 * x])
    for got, want in zip(batched[0](kernel, xs), batched[1](kernel, xs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_s4_copies_in_one_call_share_their_samples_dropout_masks():
    """S4 takes robust training's copies in one call (Model.batched_copies; copies_logits hands it [B, C, L, F]
    from the attack's copy-major [C, B, L, F]): its logits are those of the copies mapped over with one key
    (the masks every other model gets), and copy c of sample b sees b's mask as the clean call draws it."""
    import dataclasses

    from advrepro.models.classifier import Classifier
    from advrepro.robust import copies_logits

    assert [n for n in MODEL_NAMES if MODELS[n].batched_copies] == ["s4"]
    model = build_model("s4", n_classes=5, layer=8, hidden=4, dropout=0.3)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 16, 2))  # [C, B, L, F]
    w = model.init(jax.random.PRNGKey(1), x[0])["params"]
    clf = Classifier(model, patch=None, batched_copies=True)
    key = jax.random.PRNGKey(7)
    one_call = copies_logits(clf.training_logits(key), w, x)
    mapped = copies_logits(dataclasses.replace(clf, batched_copies=False).training_logits(key), w, x)
    assert one_call.shape == (3, 4, 5)
    np.testing.assert_allclose(one_call, mapped, atol=1e-5)
    np.testing.assert_allclose(clf.training_logits(key)(w, x[1]), one_call[:, 1], atol=1e-5)
    # the masks do act: another key, other logits; no dropout at evaluation
    assert float(jnp.max(jnp.abs(copies_logits(clf.training_logits(jax.random.PRNGKey(8)), w, x) - one_call))) > 0.1
    np.testing.assert_allclose(clf.logits(w, x), model.apply({"params": w}, x.reshape(12, 16, 2)).reshape(4, 3, 5),
                               atol=1e-5)
    # behind the front ends (raw audio: strided convolution; Mel spectrograms: FrameNorm) as well
    for front in (dict(conv=(8, 250, 125)), dict(frame_norm=True)):
        model = build_model("s4", n_classes=5, layer=8, hidden=4, dropout=0.3, **front)
        x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 1000 if "conv" in front else 16, 1))
        w = model.init(jax.random.PRNGKey(1), x[0])["params"]
        clf = Classifier(model, patch=None, batched_copies=True)
        mapped = copies_logits(dataclasses.replace(clf, batched_copies=False).training_logits(key), w, x)
        np.testing.assert_allclose(copies_logits(clf.training_logits(key), w, x), mapped, atol=1e-5)


def test_conv_frontend_frames_compute_flax_strided_convolution():
    """The raw-audio front end writes a "VALID" strided 1D convolution as frames @ W (fast input
    gradients on the CPU); it must equal flax's nn.Conv with the same weights."""
    import flax.linen as nn

    from advrepro.models import build_model
    from advrepro.models.frontends import frames

    x = jax.random.normal(jax.random.PRNGKey(1), (3, 1000, 2))
    conv = nn.Conv(4, (250,), strides=(125,), padding="VALID")
    w = conv.init(jax.random.PRNGKey(0), x)["params"]
    ours = frames(x, 250, 125) @ w["kernel"].reshape(-1, 4) + w["bias"]
    np.testing.assert_allclose(ours, conv.apply({"params": w}, x), atol=1e-5)
    for name in ("ff", "gru", "lstm", "s4"):
        model = build_model(name, n_classes=10, layer=8, hidden=8, s4_layers=1, conv=(8, 250, 125))
        p = model.init(jax.random.PRNGKey(0), x[:, :, :1])["params"]
        assert model.apply({"params": p}, x[:, :, :1]).shape == (3, 10)
        assert p["conv"]["kernel"].shape == (250, 8)


def test_s4_channels_first_computes_the_channels_last_network():
    """The channels-first S4 (activations [H, N, L] inside) is the Annotated-S4 network written channels last:
    the same parameters, and with them the logits of a plain channels-last forward pass built from the
    same pieces (nn.Dense, nn.LayerNorm, S4SSM vmapped over the last axis), for any leading batch axes."""
    import flax.linen as nn

    from advrepro.models.s4 import S4Classifier

    class ChannelsLast(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Dense(8)(x)
            for i in range(2):
                layer = nn.vmap(S4SSM, in_axes=-1, out_axes=-1, variable_axes={"params": 0},
                                split_rngs={"params": True})
                y = layer(N=4, name=f"s4_{i}")(nn.LayerNorm(name=f"norm_{i}")(x))  # [..., L, H]: vmapped over H
                x = x + nn.Dense(8, name=f"mix_{i}")(nn.gelu(y))
            return nn.Dense(5)(x.mean(axis=-2))

    x = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 16, 2))
    model = S4Classifier(5, 8, 4)
    w = model.init(jax.random.PRNGKey(0), x[0])["params"]
    ref = {"Dense_0": w["Dense_0"], "Dense_1": w["Dense_1"]}
    for i in range(2):
        block = w[f"S4Block_{i}"]
        ref |= {f"s4_{i}": block["s4"], f"norm_{i}": block["LayerNorm_0"], f"mix_{i}": block["Dense_0"]}
    assert jax.tree.map(jnp.shape, ChannelsLast().init(jax.random.PRNGKey(0), x[0])["params"]) == \
        jax.tree.map(jnp.shape, ref)
    got = jax.jit(model.apply)({"params": w}, x)
    assert got.shape == (2, 3, 5)
    np.testing.assert_allclose(got, jax.jit(ChannelsLast().apply)({"params": ref}, x), atol=2e-6)


def test_s4_programs_get_their_xla_options(raw_params):
    """Every program that runs S4 is compiled with S4's XLA options (no YNNPACK fusions on the CPU: they fused
    its products with the elementwise work into slower kernels); the other models keep XLA's defaults. The
    classifiers come from `classifier_for`, as every job builds them."""
    from advrepro.experiments import SCENARIOS, Experiment
    from advrepro.models.classifier import classifier_for, init_weights
    from advrepro.spec import experiment_spec

    from .conftest import tiny_params

    p = tiny_params(raw_params, models=("ff", "s4"))
    x = np.zeros((4, p["mnist"]["data"]["image_size"], p["mnist"]["data"]["image_size"], 1), np.float32)
    for name in ("s4", "ff"):
        clf = classifier_for(experiment_spec(p, Experiment("mnist", name, SCENARIOS["plain"])), 10)
        w = init_weights(clf, 0, x)
        grad = jax.grad(lambda w_, x_, clf=clf: clf.logits(w_, x_).sum(), argnums=1)
        hlo = clf.jit(grad).lower(w, jnp.asarray(x)).compile().as_text()
        assert (MODELS[name].xla_options != ()) == (name == "s4")
        if jax.default_backend() == "cpu":
            assert ("__ynn_fusion" in hlo) == (name != "s4"), name


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_cell_recomputed_in_the_backward_pass_gives_the_stored_cells_bytes(cell):
    """The GRU and LSTM recompute their gates in the backward pass (RNNClassifier.remat): the weights' tree and
    initial values are those of the plain cell (checkpoints, benchmarks/torch_models.py), and the jitted loss and
    its gradients w.r.t. weights and input are the same bytes as with the gates stored."""
    from advrepro.models.rnn import RNNClassifier

    x = jax.random.normal(jax.random.PRNGKey(1), (3, 12, 4))
    y = jnp.array([0, 2, 4])
    stored, recomputed = (RNNClassifier(5, 8, 6, cell, remat=remat) for remat in (False, True))
    w = stored.init(jax.random.PRNGKey(0), x)["params"]
    w_recomputed = recomputed.init(jax.random.PRNGKey(0), x)["params"]
    assert jax.tree_util.tree_structure(w) == jax.tree_util.tree_structure(w_recomputed)
    assert f"{'GRU' if cell == 'gru' else 'LSTM'}Cell_0" in w
    for a, b in zip(jax.tree_util.tree_leaves(w), jax.tree_util.tree_leaves(w_recomputed), strict=True):
        np.testing.assert_array_equal(a, b)

    def loss_and_grads(model):
        def loss(w, x):
            return -jax.nn.log_softmax(model.apply({"params": w}, x))[jnp.arange(3), y].sum()
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(w, x)

    for a, b in zip(jax.tree_util.tree_leaves(loss_and_grads(stored)),
                    jax.tree_util.tree_leaves(loss_and_grads(recomputed)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_gru_cell_is_flaxs_with_named_sums():
    """models/rnn.py's GRUCell names its gates' sums for the rematerialisation policy and is otherwise Flax's:
    the same weights' tree and initial values, the same output and gradients, byte for byte."""
    import flax.linen as nn

    from advrepro.models.rnn import GRUCell

    h, x = jax.random.normal(jax.random.PRNGKey(1), (3, 6)), jax.random.normal(jax.random.PRNGKey(2), (3, 4))
    ours, flax_cell = GRUCell(features=6), nn.GRUCell(features=6)
    w, w_flax = ours.init(jax.random.PRNGKey(0), h, x), flax_cell.init(jax.random.PRNGKey(0), h, x)
    assert jax.tree_util.tree_structure(w) == jax.tree_util.tree_structure(w_flax)
    for a, b in zip(jax.tree_util.tree_leaves(w), jax.tree_util.tree_leaves(w_flax), strict=True):
        np.testing.assert_array_equal(a, b)

    def value_and_grads(cell):
        return jax.jit(jax.value_and_grad(lambda w, h, x: cell.apply(w, h, x)[0].sum(), argnums=(0, 1, 2)))(w, h, x)

    for a, b in zip(jax.tree_util.tree_leaves(value_and_grads(ours)),
                    jax.tree_util.tree_leaves(value_and_grads(flax_cell)), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_encoder_runs_inside_the_scan(cell):
    """The per-step encoder runs inside the time loop: the model computes Dense+ReLU over the whole sequence,
    then the cell over time (checked against that written out), and no [L, B, layer] array of the encoder's
    outputs or gradients is in the compiled input gradient (at the thesis sizes they were a seventh of the GRU's
    robust step)."""
    import flax.linen as nn

    from advrepro.models.rnn import GRUCell, LSTMCell, RNNClassifier

    B, L, F, layer, hidden = 3, 12, 4, 8, 6
    x = jax.random.normal(jax.random.PRNGKey(1), (B, L, F))
    model = RNNClassifier(5, layer, hidden, cell)
    w = model.init(jax.random.PRNGKey(0), x)["params"]
    name, kind = ("GRUCell_0", GRUCell) if cell == "gru" else ("LSTMCell_0", LSTMCell)

    def written_out(w, x):
        e = nn.relu(nn.Dense(layer).apply({"params": w["Dense_0"]}, x))
        carry, _ = nn.RNN(kind(features=hidden), return_carry=True).apply({"params": {"cell": w[name]}}, e)
        h = carry[1] if cell == "lstm" else carry
        return nn.Dense(5).apply({"params": w["Dense_1"]}, h)

    np.testing.assert_allclose(model.apply({"params": w}, x), written_out(w, x), rtol=1e-6, atol=1e-6)
    grads = [jax.grad(lambda w, x, f=f: f(w, x).sum(), argnums=(0, 1))(w, x)
             for f in (lambda w, x: model.apply({"params": w}, x), written_out)]
    for a, b in zip(*(jax.tree_util.tree_leaves(g) for g in grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    input_grad = jax.jit(jax.grad(lambda x: model.apply({"params": w}, x).sum()))
    hlo = input_grad.lower(x).compile().as_text()
    assert f"f32[{L},{B},{layer}]" not in hlo and f"f32[{B},{L},{layer}]" not in hlo


def test_scalar_encoder_table_is_the_encoder_and_input_product():
    """models/rnn.py's table of a one-feature input: for every x, x * table[p, 0] + table[p, 1] with p the
    number of thresholds below x is relu(x * w + b) @ kernel + bias, with encoder weights of both signs and zero
    (a unit with w = 0 is on or off everywhere, by its bias's sign)."""
    from advrepro.models.rnn import scalar_encoder_table

    rng = np.random.default_rng(0)
    layer, products = 16, 12
    w = rng.normal(size=layer).astype(np.float32)
    w[[3, 7]] = 0.0
    b = rng.normal(size=layer).astype(np.float32)
    b[3], b[7] = 0.5, -0.5
    kernel, bias = (rng.normal(size=s).astype(np.float32) for s in ((layer, products), products))
    thresholds, table = scalar_encoder_table({"kernel": jnp.asarray(w[None]), "bias": jnp.asarray(b)},
                                             jnp.asarray(kernel), jnp.asarray(bias))
    assert table.shape == (layer + 1, 2, products)
    thresholds = np.asarray(thresholds)
    assert np.all(thresholds[:-1] <= thresholds[1:]) and np.isinf(thresholds[-2:]).all()  # w = 0: +inf, last
    finite = np.sort(-b[w != 0] / w[w != 0])
    x = np.concatenate([rng.uniform(-4, 4, 500), finite - 1e-3, finite + 1e-3, [-1e6, 1e6]]).astype(np.float32)
    piece = np.sum(thresholds[None] < x[:, None], axis=1)
    looked_up = x[:, None] * np.asarray(table)[piece, 0] + np.asarray(table)[piece, 1]
    direct = np.maximum(x[:, None] * w + b, 0) @ kernel + bias
    np.testing.assert_allclose(looked_up, direct, rtol=1e-4, atol=1e-4 * np.abs(direct).max())


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_model_of_a_one_feature_input_looks_its_encoder_up(cell):
    """With one input feature (the thesis's pixel sequences) the GRU and LSTM read their encoder and input
    product off a table per step (ScalarEncodedCell) instead of multiplying: the same weights' tree, the same
    logits and gradients (w.r.t. weights and input) as the model that multiplies (lookup=False, and the same
    weights with a second, zero-weighted input feature), to float rounding."""
    from advrepro.models.rnn import RNNClassifier

    B, L, layer, hidden = 3, 12, 8, 6
    x = jax.random.uniform(jax.random.PRNGKey(1), (B, L, 1), minval=-1, maxval=1)
    model, multiplying = RNNClassifier(5, layer, hidden, cell), RNNClassifier(5, layer, hidden, cell, lookup=False)
    w = model.init(jax.random.PRNGKey(0), x)["params"]
    w = dict(w, Dense_0=dict(w["Dense_0"], kernel=w["Dense_0"]["kernel"].at[0, 2].set(0.0)))  # a unit w = 0
    w_multiplying = multiplying.init(jax.random.PRNGKey(0), x)["params"]
    for a, b in zip(jax.tree_util.tree_leaves(model.init(jax.random.PRNGKey(0), x)["params"]),
                    jax.tree_util.tree_leaves(w_multiplying), strict=True):
        np.testing.assert_array_equal(a, b)

    def looked_up(w, x):
        return model.apply({"params": w}, x)

    def two_features(w, x):  # a second input feature, always 0, with zero weights
        kernel = jnp.concatenate([w["Dense_0"]["kernel"], jnp.zeros_like(w["Dense_0"]["kernel"])])
        return model.apply({"params": dict(w, Dense_0=dict(w["Dense_0"], kernel=kernel))},
                           jnp.concatenate([x, jnp.zeros_like(x)], -1))

    def multiplied(w, x):
        return multiplying.apply({"params": w}, x)

    assert "ScalarEncodedCell" in jax.jit(looked_up).lower(w, x).compile().as_text()
    for reference in (two_features, multiplied):
        assert "ScalarEncodedCell" not in jax.jit(reference).lower(w, x).compile().as_text()
        np.testing.assert_allclose(looked_up(w, x), reference(w, x), rtol=1e-5, atol=1e-6)
        grads = [jax.grad(lambda w, x, f=f: jnp.sin(f(w, x)).sum(), argnums=(0, 1))(w, x)
                 for f in (looked_up, reference)]
        for a, b in zip(*(jax.tree_util.tree_leaves(g) for g in grads), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
