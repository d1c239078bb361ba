"""Tests for advrepro.models.cnn: seed 003's all-convolutional network and its variants (BatchNorm, test-time
noise, sign / stochastic binary / LWTA activations, PNI)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advrepro.models import MODELS, ModelSpec, build_model, draws_noise
from advrepro.models.cnn import CNN, build, noise_variables, sign_ste

N = 10
NOISY = {
    "gauss-add": dict(noise="gauss", noise_std=0.05),
    "gauss-mul": dict(noise="gauss", noise_mode="mul", noise_std=0.05),
    "logistic-add": dict(noise="logistic", noise_std=0.05),
    "logistic-mul": dict(noise="logistic", noise_mode="mul", noise_std=0.05),
    "stochastic_sign": dict(activation="stochastic_sign"),
    "stochastic_sign-logistic": dict(activation="stochastic_sign", noise="logistic", noise_std=0.5),
    "lwta": dict(activation="lwta"),
    "pni": dict(pni=True),
}


def _model(**variant):
    return build_model("cnn", n_classes=N, layer=0, hidden=0, **variant)


def _images(n=3, size=14, seed=1):
    return jax.random.uniform(jax.random.PRNGKey(seed), (n, size, size, 1), minval=-1.0, maxval=1.0)


@functools.cache
def _weights(kind="plain", size=14):
    """Initial variables, shared by the variants with the same parameters (noise and the activations add
    none; BN and PNI do): initialising compiles the random draws of every kernel, slow on the CPU."""
    variant = {"plain": {}, "bn": dict(batch_norm=True), "pni": dict(pni=True)}[kind]
    model = _model(**variant)
    rngs = {"params": jax.random.PRNGKey(0), "noise": jax.random.PRNGKey(9)}
    return jax.jit(model.init)(rngs, _images(1, size))


def _init(model, x):
    """The shared parameters, with the noise layers' configuration (the "noise" collection) of this model."""
    v = _weights("bn" if model.batch_norm else "pni" if model.pni else "plain", x.shape[1])
    if model.noise != "none":
        v = {**v, "noise": noise_variables(model.noise, model.noise_mode, model.noise_std)}
    return v


def _apply(model, **kwargs):
    """model.apply, jitted (op by op, every primitive would compile on its own)."""
    return jax.jit(functools.partial(model.apply, **kwargs))


@pytest.mark.parametrize("size", [14, 28])
def test_logits_shape(size):
    model, x = _model(), _images(2, size)
    logits = _apply(model)(_init(model, x), x)
    assert logits.shape == (2, N) and logits.dtype == jnp.float32
    assert jnp.all(jnp.isfinite(logits))
    assert jnp.any(logits < 0)  # no ReLU on the logits


def test_other_sizes_refused():
    with pytest.raises(ValueError, match="20x20"):
        jax.eval_shape(_model().init, jax.random.PRNGKey(0), _images(1, 20))


def test_registry_entry_and_noise_flag():
    assert MODELS["cnn"].input == "image"
    assert not draws_noise(ModelSpec(0, 0, batch_norm=True, activation="sign"))
    assert all(draws_noise(ModelSpec(0, 0, **variant)) for variant in NOISY.values())


@pytest.mark.parametrize("variant,match", [
    (dict(noise="gauss"), "noise_std > 0"),
    (dict(noise="uniform", noise_std=0.1), "unknown noise 'uniform'"),
    (dict(noise="gauss", noise_std=0.1, noise_mode="div"), "unknown noise_mode 'div'"),
    (dict(activation="tanh"), "unknown activation 'tanh'"),
    (dict(activation="lwta", lwta_units=1), "lwta_units >= 2"),
    (dict(activation="lwta", lwta_units=3), "does not divide"),
    (dict(activation="stochastic_sign", noise="gauss", noise_std=0.1, noise_mode="mul"), "add"),
])
def test_bad_specs_refused(variant, match):
    with pytest.raises(ValueError, match=match):
        _model(**variant)


def test_xla_convolution_peer_agrees():
    """The reshape/im2col convs compute what XLA's convolution computes, on the same parameters."""
    x = _images(2, 28)
    ours, peer = (build(ModelSpec(0, 0), N, impl=impl) for impl in ("im2col", "xla"))
    v = _init(ours, x)
    np.testing.assert_allclose(_apply(ours)(v, x), _apply(peer)(v, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_input_gradient_matches_finite_differences(batch_norm):
    """d(r . logits)/dx against central differences along random directions, in float64 (eval mode, as the
    attacks use it; with BN after one training step, so that the running statistics are not trivial)."""
    model = _model(batch_norm=batch_norm)
    v = _init(model, _images())
    with jax.enable_x64(True):
        x = _images().astype(jnp.float64)
        v = jax.tree.map(lambda a: a.astype(jnp.float64), v)
        if batch_norm:
            _, new = model.apply(v, x, train=True, mutable=["batch_stats"])
            v = {**v, **new}
        r = jax.random.normal(jax.random.PRNGKey(2), (x.shape[0], N), jnp.float64)
        f = jax.jit(lambda x: (model.apply(v, x) * r).sum())
        g = jax.jit(jax.grad(f))(x)
        assert g.dtype == jnp.float64 and jnp.any(g != 0)
        h = 1e-6  # small: a larger step crosses some ReLU's kink (the network is piecewise linear)
        for k in range(3):
            d = jax.random.normal(jax.random.PRNGKey(10 + k), x.shape, jnp.float64)
            d = d / jnp.linalg.norm(d)
            fd = (f(x + h * d) - f(x - h * d)) / (2 * h)
            np.testing.assert_allclose(float(jnp.vdot(g, d)), float(fd), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("variant", list(NOISY))
def test_noise_is_a_function_of_the_key(variant):
    model, x = _model(**NOISY[variant]), _images()
    v, apply = _init(model, x), _apply(model)
    a, b, c = (apply(v, x, rngs={"noise": jax.random.PRNGKey(k)}) for k in (1, 1, 2))
    assert a.shape == (x.shape[0], N) and jnp.all(jnp.isfinite(a))
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert not np.allclose(a, c)
    with pytest.raises(Exception, match="noise"):  # a stochastic model without its noise key: an error
        jax.eval_shape(model.apply, v, x)


def test_noise_variants_share_one_program():
    """Kind, mode and scale of the noise are runtime values of the weights: every noise variant lowers to the
    same XLA program (one compilation in the persistent cache serves them all), and each still draws its own
    noise: the values `draw_noise` gives, added or multiplied as the variant says."""
    x, key = _images(), jax.random.PRNGKey(5)
    texts = []
    for variant in ("gauss-add", "logistic-mul"):
        model = _model(batch_norm=True, **NOISY[variant])
        texts.append(jax.jit(_apply(model)).lower(_init(model, x), x, rngs={"noise": key}).as_text())
    assert texts[0] == texts[1]
    a = jnp.linspace(0.5, 1.5, 3 * 100 * 100).reshape(1, 100, 100, 3)
    for kind in ("gauss", "logistic"):
        out = {}
        for mode in ("add", "mul"):
            config = noise_variables(kind, mode, 0.1)["config"]
            out[mode] = CNN(N).apply({}, a, config, method=CNN._noisy, rngs={"noise": key})
        z = a - out["add"]  # the same key: the same draw, added or multiplied
        assert abs(float(z.mean())) < 0.003 and abs(float(z.std()) - 0.1) < 0.003, kind
        np.testing.assert_allclose(out["mul"], a * (1 + z), rtol=1e-5, atol=1e-6)
    gauss, logistic = (a - CNN(N).apply({}, a, noise_variables(k, "add", 0.1)["config"], method=CNN._noisy,
                                        rngs={"noise": key}) for k in ("gauss", "logistic"))
    excess = lambda z: float(((z - z.mean()) ** 4).mean() / z.var() ** 2 - 3)  # noqa: E731
    assert abs(excess(gauss)) < 0.2 and abs(excess(logistic) - 1.2) < 0.3  # Gaussian 0, logistic 1.2


def test_deterministic_cnn_ignores_the_noise_key():
    model, x = _model(batch_norm=True), _images()
    v, apply = _init(model, x), _apply(model)
    a, b = (apply(v, x, rngs={"noise": jax.random.PRNGKey(k)}) for k in (1, 2))
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes() == np.asarray(apply(v, x)).tobytes()


def test_classifier_contract():
    """As train.py and the attacks see it: a stochastic CNN with BatchNorm through `Classifier`."""
    from advrepro.models.classifier import Classifier

    model, x = _model(batch_norm=True, noise="logistic", noise_std=0.1), _images()
    clf = Classifier(model, patch=None, stochastic=True, collections=("batch_stats", "noise"))
    w = _init(model, x)
    logits = jax.jit(clf.logits)
    a, b, c = (logits(w, x, jax.random.PRNGKey(k)) for k in (1, 1, 2))
    assert a.shape == (x.shape[0], N)
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes() and not np.allclose(a, c)
    assert clf.train_logits(w, x, jax.random.PRNGKey(1)).shape == (x.shape[0], N)
    moved = clf.updated_stats(w, x, jax.random.PRNGKey(1))
    assert not np.allclose(moved["batch_stats"]["bn0"]["mean"], w["batch_stats"]["bn0"]["mean"])


def test_lwta_one_winner_per_block_at_test_time():
    model, x = _model(activation="lwta"), _images()
    v, key = _init(model, x), jax.random.PRNGKey(3)
    activated = [f"block{i}" for i in (0, 1, 3, 4, 5)]  # the 14x14 stack's convs with an activation
    for train in (False, True):
        _, state = _apply(model, train=train, mutable=["intermediates"])(v, x, rngs={"noise": key})
        for name in activated:
            y = state["intermediates"][name][0]
            active = (y.reshape(*y.shape[:-1], -1, 2) != 0).sum(-1)  # U = 2 competitors per block
            if not train:
                assert jnp.all(active == 1), name
            else:  # the Gumbel-softmax relaxation passes a soft mixture, not a one-hot
                assert jnp.any(active > 1), name


def test_batch_norm_running_statistics():
    model, x = _model(batch_norm=True), _images(4)
    v = _init(model, x)
    train = _apply(model, train=True, mutable=["batch_stats"])
    _, new = train(v, x)
    _, new2 = train({**v, **new}, x)
    m0, m1, m2 = (s["batch_stats"]["bn0"]["mean"] for s in (v, new, new2))
    assert np.all(m0 == 0) and np.any(m1 != 0)
    np.testing.assert_allclose(m2, 1.9 * m1, rtol=1e-5)  # momentum 0.9: 0.1 m, then 0.9 * 0.1 m + 0.1 m
    trained, evaluate = {**v, **new}, _apply(model)
    # eval mode uses the running statistics: other statistics, other logits; one image's logits do not depend
    # on the rest of the batch (they do in training mode, through the batch statistics)
    eval_new, eval_old = evaluate(trained, x), evaluate(v, x)
    assert not np.allclose(eval_new, eval_old)
    np.testing.assert_allclose(evaluate(trained, x[:1])[0], eval_new[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(train(trained, x[:2])[0][0], train(trained, x)[0][0])


def test_pni_scale_is_trained():
    model, x = _model(pni=True), _images()
    v = _init(model, x)
    alphas = [k for k, p in v["params"].items() if "pni_alpha" in p]
    assert len(alphas) == 7 and all(float(v["params"][k]["pni_alpha"]) == 0.25 for k in alphas)
    loss = lambda p: model.apply({"params": p}, x, train=True, rngs={"noise": jax.random.PRNGKey(1)}).var()
    g = jax.jit(jax.grad(loss))(v["params"])
    assert all(float(g[k]["pni_alpha"]) != 0 for k in alphas)


def test_sign_straight_through():
    a = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(sign_ste(a), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(jax.grad(lambda a: sign_ste(a).sum())(a), [0, 1, 1, 1, 0])  # hard-tanh'


def test_stochastic_sign_mean_and_gradient():
    """y in {-1, +1} with P(y = 1) = sigmoid(a) (no spec noise: the standard logistic); the gradient is that of
    E[y] = 2 sigmoid(a) - 1."""
    model = CNN(N, activation="stochastic_sign")
    a = jnp.tile(jnp.array([-2.0, 0.0, 1.0]), (4000, 1))

    def act(a, key):
        return model.apply({}, a, method=lambda m, a: m._activate(a, False), rngs={"noise": key})

    y = act(a, jax.random.PRNGKey(0))
    assert set(np.unique(np.asarray(y))) == {-1.0, 1.0}
    expected = 2 * jax.nn.sigmoid(a[0]) - 1
    np.testing.assert_allclose(y.mean(0), expected, atol=0.05)
    g = jax.grad(lambda a: act(a, jax.random.PRNGKey(0)).sum())(a[:1])
    np.testing.assert_allclose(g[0], 2 * jax.nn.sigmoid(a[0]) * (1 - jax.nn.sigmoid(a[0])), rtol=1e-6)


def test_sign_activation():
    """The deterministic binary network: +-1 activations, a non-zero (straight-through) input gradient."""
    model, x = _model(activation="sign"), _images()
    v = _init(model, x)
    _, state = _apply(model, mutable=["intermediates"])(v, x)
    assert set(np.unique(np.asarray(state["intermediates"]["block0"][0]))) <= {-1.0, 1.0}
    g = jax.jit(jax.grad(lambda x: model.apply(v, x)[:, 0].sum()))(x)
    assert jnp.any(g != 0)


def test_feature_arrays_of_seed_003_analyses():
    """evaluate.feature_arrays: the L2 channel norms of the blocks that are still maps (14x14: 12, 10, 5, 3), the
    examples' softmax, and the first one-vector block's output (the conv to 48 channels) per attacked sample."""
    from advrepro.evaluate import feature_arrays
    from advrepro.models.classifier import Classifier

    model, x = _model(batch_norm=True, noise="gauss", noise_std=0.05), _images(7)
    clf = Classifier(model, patch=None, stochastic=True, collections=("batch_stats", "noise"))
    w = _init(model, x)
    out = feature_arrays(clf, w, x[:2], np.asarray(x), np.arange(7) % N, 4, seed=0)
    assert [k for k in out if k.startswith("heat_block")] == [f"heat_block{i}" for i in range(4)]
    assert [out[f"heat_block{i}"].shape for i in range(4)] == [(2, 12, 12), (2, 10, 10), (2, 5, 5), (2, 3, 3)]
    assert np.all(out["heat_block0"] >= 0)
    np.testing.assert_allclose(out["heat_probs"].sum(-1), 1, rtol=1e-5)
    assert out["features"].shape == (7, 48) and str(out["feature_block"]) == "block4"
    assert list(out["features_y"]) == list(np.arange(7) % N)
    again = feature_arrays(clf, w, x[:2], np.asarray(x), np.arange(7) % N, 4, seed=0)
    assert out["features"].tobytes() == again["features"].tobytes()   # the noise keys come from the seed
