"""Training and attack throughput per model (samples/s), at the active profile's sizes.

    python benchmarks/throughput.py [--params params.yaml] [--profile offline] [--steps 20]

Prints, for every model: plain training step, Algorithm 1 step (the robust profile's K),
the thesis's PGD (pgd_steps steps), every strong-evaluation attack (strong_evaluation's sizes) and, as the
peer, Foolbox's PGD with the same steps, in samples/s after one warm-up call (compile time is printed
separately). A benchmark, not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import sys
import time

from advrepro import runtime
from advrepro.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile")
    ap.add_argument("--steps", type=int, default=20, help="timed calls per measurement")
    ap.add_argument("--models", nargs="*", help="subset of models (default: params' list)")
    args = ap.parse_args()
    p = load_params(args.params, args.profile)
    runtime.configure(p["device"])

    import jax
    import jax.numpy as jnp
    import numpy as np

    from advrepro import train
    from advrepro.attacks import STRONG
    from advrepro.attacks.pgd import pgd
    try:
        import foolbox as fb
    except ImportError:  # a dev dependency
        fb = None
    from advrepro.experiments import SCENARIOS, Experiment
    from advrepro.models import MODELS
    from advrepro.models.classifier import classifier_for, init_weights
    from advrepro.spec import experiment_spec

    cfg = p["mnist"]
    size, bs = cfg["data"]["image_size"], cfg["train"]["batch_size"]
    ev = cfg["evaluation"]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (bs, size, size, 1)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, bs).astype(np.int32))
    xe = jnp.asarray(rng.uniform(-1, 1, (ev["batch_size"], size, size, 1)).astype(np.float32))
    ye = jnp.asarray(rng.integers(0, 10, ev["batch_size"]).astype(np.int32))
    print(f"profile {p['profile']}: {jax.devices()[0].device_kind}, images {size}x{size}, train batch {bs}, "
          f"robust K={cfg['robust']['K']}, PGD {ev['pgd_steps']} steps, eval batch {ev['batch_size']}")
    print(f"{'model':6} {'scenario':8} {'compile s':>9} {'samples/s':>10}")

    def timed(fn, n_samples):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.steps):
            out = fn()
        jax.block_until_ready(out)
        return compile_s, args.steps * n_samples / (time.perf_counter() - t0)

    for model in args.models or cfg["models"]:
        for scen in ("plain", "alg1"):
            exp = Experiment("mnist", model, SCENARIOS[scen])
            spec = experiment_spec(p, exp)
            clf = classifier_for(spec, 10)
            w = init_weights(clf, p["seed"], np.asarray(x))
            tx = train.optimizer(spec.train, w, MODELS[exp.model].param_groups, 1000)
            step = train.make_train_step(clf, tx, spec, 10, steps_per_epoch=100)
            state = (w, tx.init(w))
            key = jax.random.PRNGKey(0)
            c, s = timed(lambda step=step, state=state, key=key: step(state, x, y, key, jnp.int32(1000))[1], bs)
            print(f"{model:6} {scen:8} {c:9.1f} {s:10.1f}", flush=True)
        attack = clf.jit(lambda w_, xx, yy, clf=clf: pgd(clf.logits, w_, xx, yy, 0.1, ev["pgd_steps"],
                                                         ev["pgd_stepsize"]))
        c, s = timed(lambda attack=attack, w=w: attack(w, xe, ye), ev["batch_size"])
        print(f"{model:6} {'pgd-' + str(ev['pgd_steps']):8} {c:9.1f} {s:10.1f}", flush=True)
        for a in STRONG.values():  # the strong evaluation's attacks, at strong_evaluation's sizes, epsilon 0.1
            fn = clf.jit(a.make(clf.logits, spec.evaluation))
            c, s = timed(lambda fn=fn, w=w: fn(w, xe, ye, jax.random.PRNGKey(0), jnp.float32(0.1)), ev["batch_size"])
            print(f"{model:6} {a.name:8} {c:9.1f} {s:10.1f}", flush=True)
        if fb is not None:  # the peer: Foolbox's PGD, same steps, on the same JAX logits (not jitted by Foolbox)
            fmodel = fb.JAXModel(lambda z, clf=clf, w=w: clf.logits(w, z), bounds=(-1, 1))
            fpgd = fb.attacks.LinfPGD(abs_stepsize=ev["pgd_stepsize"], steps=ev["pgd_steps"], random_start=False)
            c, s = timed(lambda fmodel=fmodel, fpgd=fpgd: fpgd(fmodel, xe, ye, epsilons=0.1)[1], ev["batch_size"])
            print(f"{model:6} {'foolbox':8} {c:9.1f} {s:10.1f}   (Foolbox 3 LinfPGD-{ev['pgd_steps']})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
