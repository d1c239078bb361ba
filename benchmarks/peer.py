"""Training steps per second against a peer: this repository's JAX steps and the same models and the same
Algorithm 1 step written the way a PyTorch user would (benchmarks/torch_models.py: eager, the B x (C - 1) copies
as one batch), at the MNIST sizes of the offline and of the thesis profile.

    python benchmarks/peer.py [--sizes offline|thesis|both] [--steps 5] [--budget 20] [--threads 1]
                              [--models ff gru lstm s4]

For every model: samples/s of a plain step and of an Algorithm 1 step (the profile's robust K, epsilon and
stepsize, a copy towards each of the C - 1 wrong classes), in JAX (train.make_train_step, compiled ahead of time;
compile time printed apart) and in PyTorch eager (same sizes, same initial weights, same batch), both pinned to
the same cores, as many as --threads (1 by default; XLA's runtime would otherwise spread large loops over every
core), and their ratios. Each model at each size is measured in a process of its own (this script again, one
model): measured after the recurrent models in one process, the thesis-size S4 step took 20.7 s instead of 10.0 s.
Each measurement is the fastest of up to --steps calls after one untimed call (the machine may be shared: the
fastest call is the least disturbed), fewer when the calls run past --budget seconds (the thesis sizes: a
PyTorch LSTM step takes half a minute on one core). Neither attacks the copy j = y, whose margin is identically
zero (robust.wrong_class_copies). One difference in work:
the JAX attack of a deterministic FF, GRU or LSTM starts from one forward pass of the B samples for all their
copies (they all start at the sample; robust.targeted_copies: shared_start), where the PyTorch step, as a
PyTorch user writes it, runs its first forward pass on all B x (C - 1) copies (torch.func could share it too); and
the JAX loss runs the copies' forward pass without gradient, then each sample's worst copy forward and backward
again (robust.worst_copy_loss: the maximum's gradient flows through that copy alone), where PyTorch's
`ce.max(1).values.mean().backward()` runs the backward pass over all B x (C - 1) copies; and at the thesis
sizes, one input feature a step, the JAX GRU and LSTM read their encoder and input product off a table, the
piecewise-linear function of the scalar that they are (models/rnn.py: ScalarEncodedCell; the same function and
gradients), where PyTorch's nn.Linear and nn.LSTM / nn.GRU multiply (a [B, layer] x [layer, gates] product a
step, and its transpose for the gradient). One difference the other way: the JAX GRU and LSTM recompute their
gates' sigmoids and tanhs in the backward pass (models/rnn.py: remat; the gates' pre-activation sums are kept),
PyTorch's store them.

Then, for the Algorithm 1 steps: their product FLOPs against both libraries' matmul ceilings (flops.py), and for
every step below 2x PyTorch the time budget that 2x allows against where the JAX step spends its time (opsplit.py)
and two floors (products at XLA's ceiling, transcendental functions and elementwise arithmetic at XLA's best
rates): of the step's own work, and of the least work, nothing recomputed, that any JAX program of this algorithm
does; for S4 at the sizes where it convolves by FFT, both libraries' FFTs.

A benchmark, not a test: numbers depend on the machine and on what else runs on it; the ratios of one run are
what compares.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flops as flops_of  # noqa: E402
import opsplit  # noqa: E402

from advrepro import runtime  # noqa: E402
from advrepro.params import load_params  # noqa: E402

MODELS = ("ff", "gru", "lstm", "s4")


def timed(fn, steps: int, budget: float) -> tuple[float, int]:
    """(seconds per call, calls timed): the fastest of up to `steps` calls after one untimed call (on a shared
    machine the fastest is the least disturbed); the untimed call is the measurement when it alone runs past
    the budget."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > budget:
        return first, 1
    times, start = [], time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return min(times), len(times)


def bench_size(p: dict, label: str, models, args, out=print, header: bool = True) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch
    import torch_models as tm

    from advrepro import train
    from advrepro.defences import minmax
    from advrepro.experiments import SCENARIOS, Experiment
    from advrepro.models import MODELS as JAX_MODELS
    from advrepro.models import s4
    from advrepro.models.classifier import classifier_for, init_weights, to_sequence
    from advrepro.spec import experiment_spec

    cfg = p["mnist"]
    size, bs, C = cfg["data"]["image_size"], cfg["train"]["batch_size"], 10
    arch, rob, tr = cfg["model"], cfg["robust"], cfg["train"]
    rng = np.random.default_rng(0)
    x_img = rng.uniform(-1, 1, (bs, size, size, 1)).astype(np.float32)
    y_np = (np.arange(bs) % C).astype(np.int32)
    x, y = jnp.asarray(x_img), jnp.asarray(y_np)
    seq = np.asarray(to_sequence(x_img, arch["patch"]))
    xt, yt = torch.from_numpy(seq.copy()), torch.from_numpy(y_np.astype(np.int64))
    L, F_ = seq.shape[1:]
    if header:
        out(f"\n{label} sizes (MNIST): sequences [{L}, {F_}], layer {arch['layer']}, hidden {arch['hidden']}, "
            f"batch {bs}, Algorithm 1: K = {rob['K']}, C = {C} copies, epsilon {rob['epsilon']}; "
            f"{args.threads} thread{'s' if args.threads > 1 else ''}")
        out(f"{'model':6} {'step':6} {'JAX compile s':>13} {'JAX samples/s':>13} {'PyTorch samples/s':>17} "
            f"{'JAX/PyTorch':>11} {'calls':>9}")
    rows = []
    for model in models:
        row = {"sizes": label, "model": model, "batch": bs}
        for scen in ("plain", "alg1"):
            exp = Experiment("mnist", model, SCENARIOS[scen])
            spec = experiment_spec(p, exp)
            clf = classifier_for(spec, C)
            w = init_weights(clf, p["seed"], x_img)
            tx = train.optimizer(spec.train, w, JAX_MODELS[model].param_groups, 1000, 100)
            step = train.make_train_step(clf, tx, spec, C, steps_per_epoch=100)
            state = (w, tx.init(w))
            key, index = jax.random.PRNGKey(0), jnp.int32(10_000)  # past the epsilon ramp: the full epsilon
            t0 = time.perf_counter()
            compiled = step.lower(state, x, y, key, index).compile()
            compile_s = time.perf_counter() - t0
            holder = [state]

            def jax_step(compiled=compiled, holder=holder, key=key, index=index):
                holder[0], loss, _ = compiled(holder[0], x, y, key, index)
                jax.block_until_ready(loss)

            jax_s, jax_n = timed(jax_step, args.steps, args.budget)

            net = tm.load_flax(tm.build(model, L, F_, arch["layer"], arch["hidden"], C, arch["s4_layers"]), w)
            assert tm.parameter_count(net) == sum(a.size for a in jax.tree_util.tree_leaves(w)), model
            opt = tm.optimizer(net, tr["lr"], tr["weight_decay"], tr["ssm_lr"])
            if scen == "plain":
                torch_step = lambda net=net, opt=opt: tm.plain_step(net, opt, xt, yt)  # noqa: E731
            else:
                torch_step = lambda net=net, opt=opt: tm.alg1_step(net, opt, xt, yt, C, rob["epsilon"],  # noqa: E731
                                                                  rob["K"], rob["stepsize"])
            torch_s, torch_n = timed(torch_step, args.steps, args.budget)
            row[scen] = {"jax": bs / jax_s, "torch": bs / torch_s, "compile_s": compile_s}
            if scen == "alg1":  # the roofline table's figures (torch runs with args.threads, set in main)
                flops, shapes, loops = flops_of.matmul_flops(step, state, x, y, key, index)
                if loops:
                    out(f"  note: {loops} while loop(s) in the {model} step, their bodies counted once")
                # flops.py counts a cond's costliest branch, so every attack step as a full one: PyTorch's work.
                # The JAX attack of a mapped, deterministic model runs the first step's forward pass on the B
                # samples once, not on all C x B copies (robust.targeted_copies: shared_start). And the JAX
                # GRU and LSTM recompute their gates' elementwise functions in the backward pass (models/rnn.py:
                # remat), PyTorch's do not: the least work is the same step's with the gates stored.
                least_step, least, torch_clf, torch_like = step, flops, clf, flops
                if getattr(clf.model, "remat", False):
                    least_step = train.make_train_step(dataclasses.replace(clf, model=clf.model.clone(remat=False)),
                                                       tx, spec, C, steps_per_epoch=100)
                    least = flops_of.matmul_flops(least_step, state, x, y, key, index)[0]
                    # PyTorch's GRU and LSTM multiply their encoder and input product where the JAX ones of a
                    # one-feature input look them up (models/rnn.py: lookup): its FLOPs, the multiplying step's.
                    torch_clf = dataclasses.replace(clf, model=clf.model.clone(remat=False, lookup=False))
                    torch_step_fn = train.make_train_step(torch_clf, tx, spec, C, steps_per_epoch=100)
                    torch_like = flops_of.matmul_flops(torch_step_fn, state, x, y, key, index)[0]
                # The JAX loss runs its backward pass on each sample's worst copy alone (robust.worst_copy_loss:
                # the copies' forward pass without gradient, then the worst copies' forward and backward pass);
                # PyTorch's runs it on all C - 1 copies.
                torch_flops = torch_like + loss_backward_extra(torch_clf, w, jnp.asarray(seq), y, key, C - 1)
                shared_counts = Counter()  # the elementwise functions of the forward passes the first step shares
                if minmax.shares_first_step(clf):
                    forward = (clf.on_model_inputs().logits, w, jnp.asarray(seq))
                    shared = (C - 2) * flops_of.matmul_flops(*forward)[0]
                    flops, least = flops - shared, least - shared
                    shared_counts = Counter({k: (C - 2) * v for k, v in flops_of.elementwise_counts(*forward).items()})
                row[scen].update(flops=flops, least_flops=least, torch_flops=torch_flops,
                                 ceiling=flops_of.matmul_ceiling(shapes),
                                 xla_ceiling=flops_of.xla_matmul_ceiling(shapes), step_s=jax_s, torch_step_s=torch_s)
                if torch_s / jax_s < 2:  # below the target: where the JAX step's time goes (one call if slow)
                    row[scen]["split"] = opsplit.op_time_split(jax_step, calls=1 if jax_s > 2 else 3)
                    for name, fn in (("", step), ("least_", least_step)):
                        functions, arithmetic = flops_of.split_elementwise(
                            flops_of.elementwise_counts(fn, state, x, y, key, index) - shared_counts)
                        row[scen].update({f"{name}transcendentals": sum(functions.values()),
                                          f"{name}transcendental_s": flops_of.xla_transcendental_seconds(functions),
                                          f"{name}arithmetic": arithmetic,
                                          f"{name}arithmetic_s": flops_of.xla_arithmetic_seconds(arithmetic)})
                if model == "s4" and L > s4.DIRECT_CONV_MAX_L:  # convolutions by FFT: both libraries' FFTs
                    signals = bs * C * arch["layer"]
                    row[scen]["fft"] = (signals, L, *flops_of.fft_pair_seconds(signals, L))
            out(f"{model:6} {scen:6} {compile_s:13.1f} {bs / jax_s:13,.1f} {bs / torch_s:17,.1f} "
                f"{torch_s / jax_s:11.2f} {jax_n:4d}/{torch_n:<4d}", flush=True)
        rows.append(row)
    return rows


def loss_backward_extra(clf, weights, seq, y, key, n_copies: int) -> int:
    """Product FLOPs PyTorch's outer loss does beyond the JAX step's: its backward pass over all n_copies copies
    of the B samples, where the JAX step runs the worst copy of each sample forward and backward once more."""
    import jax
    import jax.numpy as jnp

    from advrepro.attacks.base import cross_entropy

    model = clf.on_model_inputs()
    forward = flops_of.matmul_flops(lambda w: model.train_logits(w, seq, key), weights)[0]
    both = flops_of.matmul_flops(jax.grad(lambda w: jnp.mean(cross_entropy(model.train_logits(w, seq, key), y))),
                                 weights)[0]
    return n_copies * (both - forward) - both


def table(rows: list[dict], out=print) -> None:
    """The README's table: Algorithm 1 samples/s of both, their ratio, and JAX plain / JAX Algorithm 1."""
    out("\n| sizes | model | JAX plain | PyTorch plain | JAX Alg. 1 | PyTorch Alg. 1 | JAX / PyTorch Alg. 1 "
        "| JAX plain / JAX Alg. 1 |")
    out("|---|---|---|---|---|---|---|---|")
    def num(v: float) -> str:
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

    for r in rows:
        pl, a1 = r["plain"], r["alg1"]
        out(f"| {r['sizes']} | {r['model'].upper()} | {num(pl['jax'])} | {num(pl['torch'])} | {num(a1['jax'])} | "
            f"{num(a1['torch'])} | {a1['jax'] / a1['torch']:.2f} | {pl['jax'] / a1['jax']:.0f} |")
    roofline(rows, out)


def roofline(rows: list[dict], out=print) -> None:
    """How far each Algorithm 1 step is from the matmul ceilings: its matmul and convolution FLOPs per sample
    (flops.py: the JAX step's, less the first step's forward pass over C - 2 of the C - 1 copies that a mapped
    deterministic model shares; PyTorch's: the same step with every copy's first forward pass, the loss's
    backward pass over every copy, and for the GRU and LSTM with the gates stored, not recomputed), the rate
    each reaches on them, the rate of the best matmul at the same shapes (PyTorch's BLAS) and of XLA's own, and
    the rate the JAX step's products would need for 2x PyTorch. Where that is above XLA's ceiling, no JAX
    program with the same products on this backend gets there: only less work would."""
    out("\n| sizes | model | JAX Alg. 1 MFLOP / sample | PyTorch Alg. 1 MFLOP / sample | JAX GFLOP/s "
        "| PyTorch GFLOP/s | BLAS ceiling GFLOP/s | XLA ceiling GFLOP/s | 2x PyTorch needs | within XLA's reach |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a1 = r["alg1"]
        per_sample, torch_per_sample = a1["flops"] / r["batch"], a1["torch_flops"] / r["batch"]
        jax_rate, torch_rate = per_sample * a1["jax"] / 1e9, torch_per_sample * a1["torch"] / 1e9
        needs = 2 * per_sample * a1["torch"] / 1e9
        ceiling, xla = a1["ceiling"] / 1e9, a1["xla_ceiling"] / 1e9
        out(f"| {r['sizes']} | {r['model'].upper()} | {per_sample / 1e6:,.1f} | {torch_per_sample / 1e6:,.1f} | "
            f"{jax_rate:.1f} | {torch_rate:.1f} | {ceiling:.0f} | {xla:.0f} | {needs:.1f} | "
            f"{'yes' if needs < xla else 'no'} |")
    budget(rows, out)


def budget(rows: list[dict], out=print) -> None:
    """The 2x target as a time budget for every step below it: half the PyTorch step. Against it, where the JAX
    step spends its time now (opsplit.py: JAX's profiler, the step's operations summed by kind and scaled to its
    measured time) and two floors, each its products at XLA's matmul ceiling plus its transcendental function
    evaluations (sigmoid, tanh, exp, erf) and its elementwise arithmetic operations (multiplies, adds, selects,
    maxima: flops.ARITHMETIC), both counted off the jaxpr, every scan trip included, the forward passes the
    attack's first step shares taken off as from the products, each at XLA's best per-element rate on a
    cache-sized array: the floor of the JAX step's own work (recomputation included), and the least-work floor,
    of the same step with nothing recomputed (the GRU's and LSTM's gates stored), the least work any JAX program
    of this algorithm does. Where the step beats its own floor, the ceiling measured for its product shapes alone
    was not one, and nothing is shown. Where the least-work floor is above the budget, the target is out of
    JAX's reach here ("no"). Otherwise the verdict says how much time is left for everything else (the scan's
    stacked values, layout copies, reductions, loop overhead): after the step's own
    floor, or, where that is above the budget, after the least-work floor, with the gates stored."""
    if not any("split" in r["alg1"] for r in rows):  # every step at 2x PyTorch or above: no budget to show
        return
    out("\n| sizes | model | 2x PyTorch budget ms | JAX step ms | products | layout | scan | fft | other "
        "| floor: products ms | floor: transcendentals ms | floor: arithmetic ms | floor ms | least-work floor ms "
        "| 2x reachable |")
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a1 = r["alg1"]
        if "split" not in a1:  # at 2x PyTorch or above
            continue
        budget_ms, step_ms = 1e3 * a1["torch_step_s"] / 2, 1e3 * a1["step_s"]
        shares = " | ".join(f"{step_ms * a1['split'][k]:.1f}" for k in opsplit.KINDS)
        products_ms, functions_ms = 1e3 * a1["flops"] / a1["xla_ceiling"], 1e3 * a1["transcendental_s"]
        arithmetic_ms = 1e3 * a1["arithmetic_s"]
        floor_ms = products_ms + functions_ms + arithmetic_ms
        least_ms = 1e3 * (a1["least_flops"] / a1["xla_ceiling"] + a1["least_transcendental_s"]
                          + a1["least_arithmetic_s"])
        if step_ms < floor_ms:  # the products ran above the ceiling measured for their shapes: no bound then
            verdict = "not shown: the step beats its floor"
        elif least_ms > budget_ms:
            verdict = "no"
        elif floor_ms > budget_ms:
            verdict = f"only with the gates stored, if the rest fits in {budget_ms - least_ms:.1f} ms"
        else:
            verdict = f"only if the rest fits in {budget_ms - floor_ms:.1f} ms"
        out(f"| {r['sizes']} | {r['model'].upper()} | {budget_ms:.1f} | {step_ms:.1f} | {shares} | {products_ms:.1f} | "
            f"{functions_ms:.1f} | {arithmetic_ms:.1f} | {floor_ms:.1f} | {least_ms:.1f} | {verdict} |")
    for r in rows:
        if "fft" in r["alg1"]:
            rows_, length, xla_s, torch_s = r["alg1"]["fft"]
            out(f"\n{r['sizes']} S4: one FFT convolution core (rfft, product, irfft of {rows_:,} rows of {length} "
                f"samples, padded to {2 * length}): XLA {1e3 * xla_s:.0f} ms, PyTorch {1e3 * torch_s:.0f} ms "
                f"(PyTorch / XLA {torch_s / xla_s:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--sizes", default="both", choices=("offline", "thesis", "both"))
    ap.add_argument("--steps", type=int, default=5, help="timed calls per measurement, at most")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per measurement before fewer calls")
    ap.add_argument("--threads", type=int, default=1, help="threads of both (default 1: the pipeline's JAX jobs)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    # Internal: measure the one model of --models at --sizes in this process, and write its rows here as JSON.
    ap.add_argument("--rows", help=argparse.SUPPRESS)
    ap.add_argument("--header", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads < 1 or args.steps < 1:
        ap.error("--threads and --steps: at least 1")
    profiles = ("offline", "thesis") if args.sizes == "both" else (args.sizes,)
    if not args.rows:
        return measure_apart(args, profiles)
    if args.threads > 1:  # before runtime.configure, which turns Eigen's thread pool off
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=true").strip()
    # Both on the same cores, as many as --threads: XLA splits its work for as many threads as the affinity allows
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    runtime.configure("cpu", cache_dir="")
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rows = bench_size(load_params(args.params, args.sizes), args.sizes, args.models, args, header=args.header)
    Path(args.rows).write_text(json.dumps(rows))


def measure_apart(args, profiles) -> int:
    """Every model at every size in a process of its own (this script with --rows), its lines as they come, then
    the tables of all."""
    import tempfile
    from importlib.metadata import version

    print(f"JAX vs PyTorch {version('torch')} eager, training steps in samples/s, on {runtime.machine()['cpu']}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        for profile in profiles:
            for i, model in enumerate(args.models):
                out = Path(tmp) / f"{profile}-{model}.json"
                cmd = [sys.executable, __file__, "--params", args.params, "--sizes", profile, "--models", model,
                       "--steps", str(args.steps), "--budget", str(args.budget), "--threads", str(args.threads),
                       "--rows", str(out)] + (["--header"] if i == 0 else [])
                if subprocess.run(cmd).returncode != 0:
                    print(f"error: the {profile} {model} measurement failed", file=sys.stderr)
                    return 1
                rows += json.loads(out.read_text())
    table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
