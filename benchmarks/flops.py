"""The matmul and convolution FLOPs of a JAX function, read off its jaxpr, and the machine's matmul ceiling.

XLA's own cost analysis (`compiled.cost_analysis()`) counts the body of a loop once, whatever its trip count, so
it undercounts a recurrent model's scan over time and Algorithm 1's K inner steps; this walks the jaxpr instead and
multiplies every `scan` body by its length. A `while` with a trip count known only at run time is counted once
and reported (none occurs in the training steps). The FLOPs are the part a BLAS kernel would do, 2 per
multiply-add; the elementwise work (gates, activations, the optimizer) is counted apart, in elements of each
function, and timed at XLA's best per-element rates.

benchmarks/peer.py prints both for every Algorithm 1 step it times.
"""
from __future__ import annotations

import math
import time
from collections import Counter


def _sub_jaxprs(value):
    """The jaxprs nested in one equation parameter (a cond's branches are a tuple of them)."""
    from jax.extend import core

    if isinstance(value, core.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, core.Jaxpr):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _sub_jaxprs(v)


# Elementwise functions that cost a polynomial or more per element (counted apart from the products: none of an
# implementation's elementwise work that must exist is cheaper to compute than these evaluations).
TRANSCENDENTAL = ("logistic", "tanh", "exp", "exp2", "log", "log1p", "expm1", "erf", "erf_inv", "sin", "cos")
# Elementwise arithmetic, each element one operation at most a vector unit's cost: the gates' products and sums,
# their derivatives, ReLU, the sign and projection of the attack, the optimizer (reductions and layout not counted).
ARITHMETIC = ("add", "add_any", "sub", "mul", "div", "neg", "max", "min", "select_n", "abs", "sign", "clamp",
              "square", "integer_pow", "sqrt", "rsqrt")


def _count(jaxpr, times: int, shapes: Counter, unknown: list, elementwise: Counter | None = None) -> int:
    """FLOPs of `jaxpr` run `times` times; adds to `shapes`, counts the elements of every transcendental function
    and arithmetic operation into `elementwise` and appends every `while` to `unknown`."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if (name in TRANSCENDENTAL or name in ARITHMETIC) and elementwise is not None:
            elementwise[name] += math.prod(eqn.outvars[0].aval.shape) * times
        if name == "dot_general":
            (lhs_contract, _), (lhs_batch, _) = eqn.params["dimension_numbers"]
            lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
            k = math.prod(lhs[i] for i in lhs_contract)
            out = math.prod(eqn.outvars[0].aval.shape)
            flops = 2 * out * k * times
            n = math.prod(rhs) // max(1, k * math.prod(lhs[i] for i in lhs_batch))
            shapes[(out // max(n, 1), k, n)] += flops  # as one [m, k] x [k, n] product
            total += flops
        elif name == "conv_general_dilated":
            kernel = eqn.invars[1].aval.shape
            out_channels = kernel[eqn.params["dimension_numbers"].rhs_spec[0]]
            per_output = math.prod(kernel) // out_channels // eqn.params["feature_group_count"]
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * per_output * times
        else:
            inner = times * (eqn.params["length"] if name == "scan" else 1)
            if name == "while":
                unknown.append(eqn)
            subs = [s for v in eqn.params.values() for s in _sub_jaxprs(v)]
            if name == "cond":  # one branch runs: the costliest, its products and its elementwise functions
                # (every attack step counted as a full one; benchmarks/peer.py takes off what the first one shares)
                branches = []  # (FLOPs, elementwise counts) of each branch, walked once
                for s in subs:
                    counts = Counter()
                    branches.append((_count(s, inner, shapes, unknown, counts), counts))
                total += max((flops for flops, _ in branches), default=0)
                if elementwise is not None and branches:
                    elementwise.update(max((counts for _, counts in branches), key=lambda c: sum(c.values())))
            else:
                total += sum(_count(s, inner, shapes, unknown, elementwise) for s in subs)
    return total


def _fastest(call, seconds: float, at_least: int) -> float:
    """Seconds of the fastest call of `call` after one untimed call: at least `at_least` calls, more while
    within `seconds` (on a shared machine the fastest is the least disturbed)."""
    call()
    times, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(times) < at_least:
        t1 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t1)
    return min(times)


def _traceable(fn):
    """The function a jax.jit wraps: a jit compiled with XLA options (`Classifier.jit`, S4's) cannot be traced
    inside another trace, make_jaxpr's included; the function it wraps traces to the same operations. Only a
    jit's: jax.grad's function names its primal as __wrapped__ too."""
    return fn.__wrapped__ if hasattr(fn, "lower") and hasattr(fn, "__wrapped__") else fn


def _live_jaxpr(fn, *args):
    """fn(*args)'s jaxpr without the equations none of its outputs needs (scan bodies included): a hand-written
    cotangent (S4's custom VJPs) computes every input's, and where only the input's is used (the attack's
    gradient) XLA drops the rest, so counting them would count work no program does."""
    import jax
    from jax._src.interpreters import partial_eval as pe  # dce_jaxpr: JAX's own dead-code elimination

    jaxpr = jax.make_jaxpr(_traceable(fn))(*args).jaxpr
    return pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))[0]


def matmul_flops(fn, *args) -> tuple[int, Counter, int]:
    """(FLOPs of fn(*args)'s dot_general and conv ops, FLOPs per [m, k, n] product shape, while loops counted
    once)."""
    shapes, unknown = Counter(), []
    total = _count(_live_jaxpr(fn, *args), 1, shapes, unknown)
    return total, shapes, len(unknown)


def elementwise_counts(fn, *args) -> Counter:
    """{function: elements evaluated} of fn(*args)'s transcendental functions (sigmoid, tanh, exp, erf, ...) and
    elementwise arithmetic (ARITHMETIC), every scan body times its length, of a cond the branch that evaluates
    most: the gates, activations and their arithmetic that an implementation of the same step must evaluate."""
    counts = Counter()
    _count(_live_jaxpr(fn, *args), 1, Counter(), [], counts)
    return counts


def split_elementwise(counts: Counter) -> tuple[Counter, int]:
    """({transcendental function: elements}, elementwise arithmetic operations) of elementwise_counts' counts."""
    return (Counter({k: v for k, v in counts.items() if k in TRANSCENDENTAL}),
            sum(v for k, v in counts.items() if k in ARITHMETIC))


def transcendental_counts(fn, *args) -> Counter:
    """elementwise_counts' transcendental functions."""
    return split_elementwise(elementwise_counts(fn, *args))[0]


def _per_element_seconds(f, size: int, depth: int, operations: int = 1) -> float:
    """Seconds a function `f` of `operations` elementwise operations takes per operation at XLA's best on an array
    of `size` float32 (in the cache): the faster of `f` applied `depth` times in a row, fused into one kernel, and
    applied once in each of `depth` trips of a loop, one kernel a trip. Deep fusions of a transcendental function
    run slower per element than one evaluation a kernel (2.0 against 0.58 ns for a sigmoid on a Zen 3 core); cheap
    arithmetic runs fastest fused."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def chain(v):
        for _ in range(depth):
            v = f(v)
        return v

    x = jnp.asarray(np.random.default_rng(0).uniform(0.1, 0.9, size).astype(np.float32))
    best = min(_fastest(lambda fn=fn: jax.block_until_ready(fn(x)), 0.0, 20)
               for fn in (jax.jit(chain), jax.jit(lambda v: jax.lax.fori_loop(0, depth, lambda i, v: f(v), v))))
    return best / (size * depth * operations)


def xla_arithmetic_seconds(elements: int, size: int = 1 << 16, depth: int = 16) -> float:
    """Seconds XLA's CPU kernels need for `elements` elementwise arithmetic operations at their best (a multiply
    and an add, timed per operation: _per_element_seconds); no JAX program doing them is faster on this device."""
    return elements * _per_element_seconds(lambda v: v * 0.999 + 0.001, size, depth, operations=2)


def xla_transcendental_seconds(counts: Counter, size: int = 1 << 16, depth: int = 16) -> float:
    """Seconds XLA's CPU kernels need for the evaluations in `counts` at their best (each function applied to its
    own output again, timed per element: _per_element_seconds); the least time any JAX program evaluating them
    can take on this device."""
    import jax
    import jax.numpy as jnp

    # exp and its kin on a negative argument, so that nothing overflows
    functions = {"logistic": jax.nn.sigmoid, "tanh": jnp.tanh, "exp": lambda v: jnp.exp(-v),
                 "exp2": lambda v: jnp.exp2(-v), "log": lambda v: jnp.log(1.5 + v), "log1p": jnp.log1p,
                 "expm1": lambda v: jnp.expm1(-v),
                 "erf": jax.lax.erf, "erf_inv": lambda v: jax.lax.erf_inv(0.5 * v), "sin": jnp.sin, "cos": jnp.cos}
    return sum(n * _per_element_seconds(functions[name], size, depth) for name, n in counts.items() if n)


def matmul_ceiling(shapes: Counter, seconds: float = 2.0) -> float:
    """FLOP/s of the machine's best single-precision matmul (PyTorch's BLAS, with torch's current thread count) at
    the product shapes of `shapes`, weighted by their FLOPs: the rate no implementation of the same products beats."""
    import torch

    top = shapes.most_common(8)  # the products that carry nearly all the FLOPs
    total_flops = sum(f for _, f in top)
    busy = 0.0
    for (m, k, n), flops in top:
        # a batch of the same product per call (torch.bmm), so that Python's call overhead (a microsecond)
        # does not count against a product of a few microseconds
        reps = max(1, 16_000_000 // (m * k * n))
        a, b = torch.randn(reps, m, k), torch.randn(reps, k, n)
        for _ in range(3):
            torch.bmm(a, b)
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / len(top) or calls < 3:
            torch.bmm(a, b)
            calls += 1
        per_product = (time.perf_counter() - t0) / calls / reps
        busy += flops / (2 * m * k * n) * per_product
    return total_flops / busy


def xla_matmul_ceiling(shapes: Counter, seconds: float = 2.0) -> float:
    """FLOP/s of XLA's own single-precision matmul on this device at the product shapes of `shapes`, weighted by
    their FLOPs, as `matmul_ceiling` measures PyTorch's: the rate JAX's products reach when nothing else runs.
    Each product runs in a compiled loop of `reps` (the loop's own elementwise work, timed alone, is taken off);
    each step's left operand depends on the last product, so that XLA can neither hoist nor fold it."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def loop(m, n, reps, with_product):
        def run(lhs, rhs):
            def body(i, acc):
                a = lhs + 1e-7 * acc[:, :1]  # depends on the last product: nothing to hoist or fold
                return acc + (a @ rhs if with_product else a[:, :1])

            return jax.lax.fori_loop(0, reps, body, jnp.zeros((m, n if with_product else 1)))

        return jax.jit(run)

    top = shapes.most_common(8)
    total_flops = sum(f for _, f in top)
    busy = 0.0
    for (m, k, n), flops in top:
        rng = np.random.default_rng(0)
        lhs0 = jnp.asarray(rng.standard_normal((m, k), np.float32))
        rhs0 = jnp.asarray(rng.standard_normal((k, n), np.float32))
        reps = max(1, 64_000_000 // (m * k * n))  # a call of milliseconds: its dispatch (tens of µs) is noise
        per_call = []
        for with_product in (True, False):
            fn = loop(m, n, reps, with_product)
            run = lambda fn=fn, a=lhs0, b=rhs0: jax.block_until_ready(fn(a, b))  # noqa: E731
            per_call.append(_fastest(run, seconds / len(top) / 2, 3))
        per_product = max(per_call[0] - per_call[1], per_call[0] * 0.01) / reps
        busy += flops / (2 * m * k * n) * per_product
    return total_flops / busy


def fft_pair_seconds(rows: int, length: int, seconds: float = 1.0) -> tuple[float, float]:
    """(XLA's, PyTorch's) seconds for S4's long-sequence convolution core: a real FFT of `rows` signals of
    `length` samples zero-padded to 2 * length, a product and the inverse FFT (models/s4.causal_convolution), both
    on the current device and threads; the fastest of the calls within `seconds`."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    n = 2 * length
    signal = np.random.default_rng(0).standard_normal((rows, length), np.float32)
    xla_fn = jax.jit(lambda u: jnp.fft.irfft(jnp.fft.rfft(u, n) * 1.5, n)[..., :length])
    u, ut = jnp.asarray(signal), torch.from_numpy(signal)

    return (_fastest(lambda: jax.block_until_ready(xla_fn(u)), seconds / 2, 2),
            _fastest(lambda: torch.fft.irfft(torch.fft.rfft(ut, n=n) * 1.5, n=n)[..., :length], seconds / 2, 2))
