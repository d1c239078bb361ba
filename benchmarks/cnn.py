"""Milliseconds per call of seed 003's all-convolutional network (advrepro.models.cnn), per variant.

    python benchmarks/cnn.py [--size 14] [--batches 64 500] [--repeats 10] [--variants relu bn gauss lwta pni]

For every batch size and variant: one forward pass (eval mode), one input gradient (of the summed
cross-entropy, eval mode: what an attack computes), one training step's gradient with respect to the weights
(train mode; BatchNorm's statistics updated), and, as the peer, the same input gradient of the same network
on the same parameters with every conv computed by XLA's convolution (`impl="xla"`, what nn.Conv calls).
Median of --repeats calls after one warm-up call; one CPU thread, as the pipeline runs. A benchmark, not a
test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from advrepro import runtime

VARIANTS = {  # name -> ModelSpec fields
    "relu": {},
    "bn": {"batch_norm": True},
    "gauss": {"noise": "gauss", "noise_std": 0.05},
    "lwta": {"activation": "lwta"},
    "pni": {"pni": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=14, choices=(14, 28), help="image height and width")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 500])
    ap.add_argument("--repeats", type=int, default=10, help="timed calls per measurement")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    runtime.configure("cpu", cache_dir="")

    import jax
    import jax.numpy as jnp

    from advrepro.models import ModelSpec, draws_noise
    from advrepro.models.cnn import build

    def timed(fn, *a):
        jax.block_until_ready(fn(*a))  # compile and warm up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*a))
            times.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(times)

    def functions(model, variables, rngs, y):
        """Jitted (forward, input gradient, training gradient) of one network."""
        params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}

        def ce(logits):
            return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).sum()

        def forward(x):
            return model.apply({"params": params, **state}, x, train=False, rngs=rngs)

        def train_loss(params, x):
            logits, new = model.apply({"params": params, **state}, x, train=True, rngs=rngs, mutable=["batch_stats"])
            return ce(logits) / x.shape[0], new

        return (jax.jit(forward), jax.jit(jax.grad(lambda x: ce(forward(x)))),
                jax.jit(jax.grad(train_loss, has_aux=True)), params)

    print(f"cnn {args.size}x{args.size}: {jax.devices()[0].device_kind}, one thread, median ms of {args.repeats} calls")
    print(f"{'variant':8} {'batch':>5} {'forward':>8} {'input grad':>10} {'train grad':>10} {'peer input grad':>15}")
    for bs in args.batches:
        kx, kn = jax.random.split(jax.random.PRNGKey(0))
        x = jax.random.uniform(kx, (bs, args.size, args.size, 1), minval=-1.0, maxval=1.0)
        y = jnp.arange(bs) % 10
        for name in args.variants:
            spec = ModelSpec(0, 0, **VARIANTS[name])
            rngs = {"noise": kn} if draws_noise(spec) else {}
            ours, peer = (build(spec, 10, impl=impl) for impl in ("im2col", "xla"))
            variables = ours.init({"params": jax.random.PRNGKey(1), **rngs}, x[:1])
            forward, input_grad, train_grad, params = functions(ours, variables, rngs, y)
            peer_grad = functions(peer, variables, rngs, y)[1]  # the same parameters
            row = [timed(forward, x), timed(input_grad, x), timed(train_grad, params, x), timed(peer_grad, x)]
            print(f"{name:8} {bs:5d} {row[0]:8.2f} {row[1]:10.2f} {row[2]:10.2f} {row[3]:15.2f}", flush=True)

if __name__ == "__main__":
    sys.exit(main())
