"""The matmul and convolution FLOPs of a JAX function, read off its jaxpr, and the machine's matmul ceiling.

XLA's own cost analysis (`compiled.cost_analysis()`) counts the body of a loop once, whatever its trip count, so
it undercounts a recurrent model's scan over time and Algorithm 1's K inner steps; this walks the jaxpr instead and
multiplies every `scan` body by its length. A `while` with a trip count known only at run time is counted once
and reported (none occurs in the training steps). Elementwise work (gates, activations, the optimizer) is left out:
what remains is the part a BLAS kernel would do, 2 FLOPs per multiply-add.

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


def _count(jaxpr, times: int, shapes: Counter, unknown: list) -> int:
    """FLOPs of `jaxpr` run `times` times; adds to `shapes` and appends every `while` to `unknown`."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
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
            if name == "cond":  # one branch runs: the costliest
                total += max((_count(s, inner, shapes, unknown) for s in subs), default=0)
            else:
                total += sum(_count(s, inner, shapes, unknown) for s in subs)
    return total


def matmul_flops(fn, *args) -> tuple[int, Counter, int]:
    """(FLOPs of fn(*args)'s dot_general and conv ops, FLOPs per [m, k, n] product shape, while loops counted
    once)."""
    import jax

    shapes, unknown = Counter(), []
    total = _count(jax.make_jaxpr(fn)(*args).jaxpr, 1, shapes, unknown)
    return total, shapes, len(unknown)


def matmul_ceiling(shapes: Counter, seconds: float = 0.5) -> float:
    """FLOP/s of the machine's best single-precision matmul (PyTorch's BLAS, with torch's current thread count) at
    the product shapes of `shapes`, weighted by their FLOPs: the rate no implementation of the same products beats."""
    import torch

    top = shapes.most_common(8)  # the products that carry nearly all the FLOPs
    total_flops = sum(f for _, f in top)
    busy = 0.0
    for (m, k, n), flops in top:
        # a batch of the same product per call (torch.bmm), so that Python's call overhead (a microsecond)
        # does not count against a product of a few microseconds
        reps = max(1, 1_000_000 // (m * k * n))
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

