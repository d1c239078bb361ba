"""The PyTorch peer of `make benchmark` (benchmarks/torch_models.py): the JAX models' parameter counts at the
offline and thesis sizes, the same logits from the same weights, and the same Algorithm 1 step."""
from __future__ import annotations

import importlib.util
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advrepro.models import build_model
from advrepro.params import resolve

from .conftest import ROOT

torch = pytest.importorskip("torch")


def benchmark_module(name):
    """A module of benchmarks/ (not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tm():
    return benchmark_module("torch_models")


def jax_params(name, x, layer, hidden, s4_layers=2, seed=1):
    model = build_model(name, n_classes=10, layer=layer, hidden=hidden, s4_layers=s4_layers)
    return model, model.init(jax.random.PRNGKey(seed), jnp.asarray(x))["params"]


@pytest.mark.parametrize("profile", ["offline", "thesis"])
@pytest.mark.parametrize("name", ["ff", "gru", "lstm", "s4"])
def test_parameter_counts(tm, raw_params, profile, name):
    """At the MNIST sizes the benchmark runs: the trainable elements of both implementations are equal."""
    cfg = resolve(raw_params, profile)["mnist"]
    side, patch, arch = cfg["data"]["image_size"], cfg["model"]["patch"], cfg["model"]
    length, features = (side // patch) ** 2, patch * patch
    model = build_model(name, n_classes=10, layer=arch["layer"], hidden=arch["hidden"], s4_layers=arch["s4_layers"])
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, length, features))))
    n_jax = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes["params"]))
    net = tm.build(name, length, features, arch["layer"], arch["hidden"], 10, arch["s4_layers"])
    assert tm.parameter_count(net) == n_jax


@pytest.mark.parametrize("length", [12, 200])  # S4: the Toeplitz convolution, and the FFT beyond L = 128
@pytest.mark.parametrize("name", ["ff", "gru", "lstm", "s4"])
def test_same_logits(tm, name, length):
    x = np.random.default_rng(0).uniform(-1, 1, (3, length, 4)).astype(np.float32)
    model, params = jax_params(name, x, 8, 6)
    expected = np.asarray(model.apply({"params": params}, jnp.asarray(x)))
    net = tm.load_flax(tm.build(name, length, 4, 8, 6, 10), params)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["ff", "gru"])
def test_same_algorithm1_loss(tm, name):
    """Given the same weights and batch, the PyTorch step's inner maximization and loss are the repository's
    (robust.wrong_class_copies and robust_loss): both attack the C - 1 wrong classes of every sample."""
    from advrepro.robust import robust_loss, wrong_class_copies

    rng = np.random.default_rng(1)
    x = rng.uniform(-0.5, 0.5, (4, 5, 4)).astype(np.float32)
    y = np.array([0, 3, 7, 9], np.int32)
    model, params = jax_params(name, x, 8, 6)
    logits = lambda w, xx, key=None: model.apply({"params": w}, xx)  # noqa: E731
    copies = wrong_class_copies(logits, params, jnp.asarray(x), jnp.asarray(y), 10, 0.1, 2, 0.05)
    loss, _ = robust_loss(lambda w, xx: logits(w, xx), params, jnp.asarray(x), copies, jnp.asarray(y),
                          algorithm="alg1")
    assert copies.shape == (9,) + x.shape
    net = tm.load_flax(tm.build(name, 5, 4, 8, 6, 10), params)
    opt = tm.optimizer(net, 1e-3, 1e-3, 1e-3)
    torch_loss, _ = tm.alg1_step(net, opt, torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), 10, 0.1, 2,
                                 0.05)
    assert float(torch_loss) == pytest.approx(float(loss), rel=1e-4)


def test_matmul_flops_count_every_trip_of_a_scan():
    """benchmarks/flops.py, behind the benchmark's roofline table: 2 FLOPs per multiply-add of every product and
    convolution, a scan's body times its length (XLA's own cost analysis counts a loop body once), a batched
    product as its batch of products; the matmul ceiling is a positive rate."""
    flops = benchmark_module("flops")
    a, b = jnp.ones((4, 3)), jnp.ones((3, 5))
    assert flops.matmul_flops(lambda a, b: a @ b, a, b)[0] == 2 * 4 * 3 * 5

    def scanned(a, b):
        return jax.lax.scan(lambda c, _: (c, c @ b), a, None, length=7)[1]

    total, shapes, loops = flops.matmul_flops(jax.jit(scanned), a, b)
    assert (total, dict(shapes), loops) == (7 * 2 * 4 * 3 * 5, {(4, 3, 5): 7 * 2 * 4 * 3 * 5}, 0)
    # a jit with XLA options (S4's steps: Classifier.jit), which JAX refuses to trace inside make_jaxpr
    with_options = jax.jit(scanned, compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""})
    assert flops.matmul_flops(with_options, a, b)[0] == total
    # products no output needs are not counted, in a scan's body too (a custom VJP's unused weight cotangent)
    dead = lambda a, b: jax.lax.scan(lambda c, _: (c, (c @ b, c.sum())[1]), a, None, length=7)[1]  # noqa: E731
    assert flops.matmul_flops(dead, a, b)[0] == 0
    assert flops.matmul_flops(lambda x: jnp.einsum("bij,bjk->bik", x, x), jnp.ones((6, 4, 4)))[0] == 2 * 6 * 4 ** 3
    x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 16))
    conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",  # noqa: E731
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert flops.matmul_flops(conv, x, k)[0] == 2 * (2 * 8 * 8 * 16) * (3 * 3 * 3)
    assert flops.matmul_ceiling(Counter({(256, 64, 256): 1}), seconds=0.05) > 1e9  # 1 GFLOP/s at least
    assert flops.xla_matmul_ceiling(Counter({(256, 64, 256): 1}), seconds=0.05) > 1e9
    # the transcendental functions of a scanned gate, every trip counted, and XLA's time for them
    gate = lambda h: jax.lax.scan(lambda c, _: (jnp.tanh(c) * jax.nn.sigmoid(c), None), h, None, length=7)[0]  # noqa: E731
    counts = flops.transcendental_counts(jax.jit(gate), jnp.ones((4, 3)))
    assert dict(counts) == {"tanh": 7 * 12, "logistic": 7 * 12}
    seconds = flops.xla_transcendental_seconds(Counter({"tanh": 10**6, "exp": 10**6}))
    assert 1e-6 < seconds < 1.0  # two million evaluations: between a picosecond and half a microsecond each
    # the arithmetic too; of a cond, the branch with the most evaluations (as its products: the costliest)
    assert flops.elementwise_counts(jax.jit(gate), jnp.ones((4, 3)))["mul"] == 7 * 12

    def branches(k, h):
        return jax.lax.cond(k == 0, lambda h: jnp.tanh(h) * h * h * h, lambda h: jnp.tanh(jnp.tanh(h)) + h, h)

    counts = flops.elementwise_counts(branches, 0, jnp.ones((4, 3)))
    assert {f: counts[f] for f in ("tanh", "mul", "add")} == {"tanh": 12, "mul": 36, "add": 0}
    assert 1e-6 < flops.xla_arithmetic_seconds(2 * 10**6) < 1.0


def test_op_time_split_sums_a_steps_operations_by_kind():
    """benchmarks/opsplit.py, behind the benchmark's budget table: XLA's operation names map to their kinds, and
    a compiled product-heavy function's profiled time is shares that sum to 1, most of them in products."""
    opsplit = benchmark_module("opsplit")
    names = {"ynn_fusion.3": "products", "dot.9": "products", "end: bitcast_dynamic-update-slice_fusion": "scan",
             "transpose_copy_fusion.2": "layout", "copy": "layout", "copy_bitcast_fusion.6": "layout",
             "fft.1": "fft", "add_divide_fusion": "other", "broadcast_clamp_fusion": "other"}
    assert {n: opsplit.kind_of(n) for n in names} == names
    a = jnp.ones((512, 512))
    fn = jax.jit(lambda a: jnp.tanh(a @ a @ a))
    run = lambda: jax.block_until_ready(fn(a))  # noqa: E731
    run()
    split = opsplit.op_time_split(run, calls=2)
    assert set(split) == set(opsplit.KINDS) and sum(split.values()) == pytest.approx(1.0)
    assert split["products"] > 0.5, split


@pytest.fixture(scope="module")
def peer():
    return benchmark_module("peer")


def test_pytorch_loss_backward_work_is_counted(peer):
    """peer.loss_backward_extra: the product FLOPs by which the loss's backward pass over every copy (PyTorch's,
    and robust.worst_copy_loss's where rows are coupled) exceeds the worst copies' forward and backward pass
    (robust.worst_copy_loss with independent rows), read off both programs."""
    from advrepro import robust
    from advrepro.models.classifier import Classifier

    model = build_model("gru", n_classes=10, layer=8, hidden=6)
    copies = jax.random.normal(jax.random.PRNGKey(0), (9, 4, 5, 3))  # [C - 1, B, L, F]
    y = jnp.array([0, 3, 7, 9])
    w = model.init(jax.random.PRNGKey(1), copies[0])["params"]
    clf, key = Classifier(model, patch=None), jax.random.PRNGKey(2)
    fn = clf.training_logits(key)

    class AllRows:
        batched_copies = False

        def __call__(self, weights, x):
            return fn(weights, x)

    def work(f):
        return peer.flops_of.matmul_flops(jax.grad(lambda w: jnp.mean(robust.worst_copy_loss(f, w, copies, y))), w)[0]

    extra = peer.loss_backward_extra(clf, w, copies[0], y, key, 9)
    assert extra > 0 and work(AllRows()) - work(fn) == extra


def test_budget_verdicts(peer):
    """The budget table's verdict: "not shown" where the step beats its own floor (the ceiling was none); else
    "no" only where even the least-work floor (nothing recomputed) is above half the PyTorch step; otherwise the
    time left for the rest."""
    def verdict(step_s, flops, least_flops):
        row = {"sizes": "s", "model": "gru", "batch": 1, "alg1": dict(
            torch_step_s=2.0, step_s=step_s, split=dict.fromkeys(peer.opsplit.KINDS, 0.2), flops=flops,
            least_flops=least_flops, xla_ceiling=1.0, transcendental_s=0.05, least_transcendental_s=0.05,
            arithmetic_s=0.05, least_arithmetic_s=0.05)}
        lines = []
        peer.budget([row], out=lines.append)
        return lines[-1].rstrip(" |").rsplit("| ", 1)[1]

    assert verdict(1.5, 1.3, 1.0) == "no"                                  # least-work floor 1.1 s > 1 s budget
    assert verdict(1.5, 0.7, 0.6) == "only if the rest fits in 200.0 ms"  # own floor 0.8 s
    assert verdict(1.5, 1.2, 0.6) == "only with the gates stored, if the rest fits in 300.0 ms"
    assert verdict(0.5, 1.2, 0.6) == "not shown: the step beats its floor"
    assert verdict(1.0, 1.3, 1.0) == "not shown: the step beats its floor"  # least-work floor above budget too
