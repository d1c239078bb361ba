"""Part P4 (seed 004, master thesis "the plasticity hypothesis"): depth against robustness. Its Table 5.1, the depth
sweep, Figure 5.2 and the claims, from the networks' training histories (the per-epoch probe: clean training
accuracy, PGD on the first test images, the adversary's success rate) and their metrics (the strong worst case),
each network at three seeds (mean, sd)."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .. import paths
from ..attacks import worst_key
from ..errors import DataError
from ..experiments import P4_NETWORKS, SCENARIOS, Experiment, chosen_models, defence_spec, p4_runs
from .checks import Check

P4 = "mnist-p4"
SHALLOW, DEEP = "d2", "d3"
LABELS = dict(P4_NETWORKS)


@dataclass(frozen=True)
class Run:
    """One trained network of part P4, the figures the tables read (fractions; success None where the attacked
    images held no correctly classified one)."""
    train_before: float        # clean accuracy on the training set, end of the clean phase
    test_before: float
    success_before: float | None  # the adversary's success rate, the seed's PGD-200 (probe.phase_steps)
    train_after_adv: float     # accuracy on the attacked training batches of the last epoch
    train_after: float         # clean accuracy on the training set at the end
    test_after: float
    success_after: float | None
    worst: float               # the strong evaluation's worst case at the training epsilon (metrics)
    parameters: int
    history: list


def _field(entry: dict, key: str, exp: Experiment):
    if key not in entry:
        raise DataError(f"{paths.history(exp.id)}: epoch {entry.get('epoch')} has no {key!r} (trained without the "
                        f"probe of mnist.p4); run `advrepro train {exp.id}` again")
    return entry[key]


def parameters(params: dict, exp: Experiment) -> int:
    """The network's parameter count, from its traced initializer (no computation)."""
    import jax
    import jax.numpy as jnp

    from ..data import SOURCES
    from ..models.classifier import classifier_for, init_weights
    from ..spec import experiment_spec

    spec = experiment_spec(params, exp)
    size = params["mnist"]["data"]["image_size"]
    clf = classifier_for(spec, SOURCES["mnist"].n_classes)
    shapes = jax.eval_shape(lambda: init_weights(clf, spec.seed, jnp.zeros((1, size, size, 1))))
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes))


def run(params: dict, scenario: str) -> Run:
    from . import results

    model = chosen_models(params, P4, ())[0]
    exp = Experiment(P4, model, SCENARIOS[scenario])
    history = results.history(params, exp)
    clean = defence_spec(params, exp).clean_epochs
    before, after = history[clean - 1], history[-1]
    eps = results.metrics(params, exp)
    return Run(train_before=_field(before, "train_clean_accuracy", exp), test_before=before["test_accuracy"],
               success_before=_field(before, "phase_adversary_success", exp),
               train_after_adv=after["train_accuracy"], train_after=_field(after, "train_clean_accuracy", exp),
               test_after=after["test_accuracy"], success_after=_field(after, "phase_adversary_success", exp),
               worst=eps["accuracy"][worst_key(params["mnist"]["p4"]["pgd_at"]["epsilon"])],
               parameters=parameters(params, exp), history=history)


def runs(params: dict, network: str) -> list[Run]:
    return [run(params, s) for s in p4_runs(network)]


def _values(rs: list[Run], field: str) -> list[float]:
    return [100 * getattr(r, field) for r in rs if getattr(r, field) is not None]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "--"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} $\\pm$ {sd:.1f}"


def _count(n: int) -> str:
    return f"{n:,}".replace(",", "\\,")


def _exceeds(a: list[float], b: list[float]) -> bool:
    """mean(a) > mean(b) by more than twice the standard error of the difference (seed-to-seed spread)."""
    if not a or not b:
        return False
    se = math.sqrt((statistics.pvariance(a) if len(a) > 1 else 0.0) / len(a)
                   + (statistics.pvariance(b) if len(b) > 1 else 0.0) / len(b))
    return statistics.fmean(a) - statistics.fmean(b) > 2 * se


# --- Tables ----------------------------------------------------------------------------------------------------

ROWS = (("train_before", "Train accuracy (clean, before AT)"),
        ("test_before", "Test accuracy (before AT)"),
        ("train_after_adv", "Train accuracy after AT, on the attacked training batches"),
        ("train_after", "Train accuracy after AT, clean"),
        ("test_after", "Test accuracy (after AT)"),
        ("success_before", "Adversary's success (\\%), before AT"),
        ("success_after", "Adversary's success (\\%), after AT"),
        ("worst", "Worst case at the training $\\epsilon$, after AT"))


def plasticity_table(params: dict, table) -> list[str]:
    """Table P4.5.1: the seed's four rows, the training accuracy on the clean data beside the attacked, the
    adversary's success rate before and after, the strong worst case; shallow and deep, mean +- sd over seeds."""
    from .seeds import source_numbers  # seeds imports this module

    seed = source_numbers(table.source)
    nets = {SHALLOW: runs(params, SHALLOW), DEEP: runs(params, DEEP)}
    lines = ["\\begin{tabular}{lrr}", "\\toprule", "Condition & Shallow (2 convs) & Deep (3 convs) \\\\", "\\midrule"]
    for field, label in ROWS:
        cells = []
        for name, column in ((SHALLOW, "shallow"), (DEEP, "deep")):
            mine = _mean_sd(_values(nets[name], field))
            ref = seed.get(field, {}).get(column)
            cells.append(mine if ref is None or math.isnan(ref) else f"{mine} \\thesis{{{ref:.2f}}}")
        lines.append(f"{label} & " + " & ".join(cells) + " \\\\")
    lines.append("Parameters & " + " & ".join(_count(nets[n][0].parameters) for n in (SHALLOW, DEEP)) + " \\\\")
    return lines + ["\\bottomrule"]


def sweep_table(params: dict, table) -> list[str]:
    """Table P4.2: every network of the sweep: parameters, clean test accuracy before and after AT, the change,
    the worst case and the adversary's success after AT, mean +- sd over seeds."""
    lines = ["\\begin{tabular}{lrrrrrr}", "\\toprule",
             "Network & Parameters & Before AT & After AT & Change & Worst case & Success \\\\", "\\midrule"]
    for network, label in P4_NETWORKS:
        rs = runs(params, network)
        change = [100 * (r.test_after - r.test_before) for r in rs]
        lines.append(f"{label} & {_count(rs[0].parameters)} & " + " & ".join([
            _mean_sd(_values(rs, "test_before")), _mean_sd(_values(rs, "test_after")), _mean_sd(change),
            _mean_sd(_values(rs, "worst")), _mean_sd(_values(rs, "success_after"))]) + " \\\\")
    return lines + ["\\bottomrule"]


TABLE_KINDS = {"plasticity": plasticity_table, "sweep": sweep_table}


# --- Figure 5.2 ------------------------------------------------------------------------------------------------

PANELS = (("training", (("train_accuracy", "trained batches"), ("train_clean_accuracy", "clean training set"))),
          ("under attack", (("test_pgd_accuracy", "test accuracy under PGD"),
                            ("adversary_success", "adversary's success"))),
          ("both", (("test_accuracy", "clean test accuracy"), ("test_pgd_accuracy", "test accuracy under PGD"))))


def plasticity(params: dict, fig_spec) -> plt.Figure:
    """Figure P4.5.2: three panels over the epochs (training; under attack; clean and attacked test accuracy),
    deep in blue, shallow in orange, solid and dashed for a panel's two statistics; mean over seeds, range as a
    band; a dotted line where adversarial training starts."""
    palette = sns.color_palette("deep")
    colours = {DEEP: palette[0], SHALLOW: palette[1]}
    clean = params["mnist"]["p4"]["pgd_at"]["clean_epochs"]
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 6.6), sharex=True)
    for network in (SHALLOW, DEEP):
        rows = [{"epoch": h["epoch"], **{k: 100 * h[k] for _, stats in PANELS for k, _ in stats
                                         if h.get(k) is not None}} for r in runs(params, network) for h in r.history]
        df = pd.DataFrame(rows).groupby("epoch")
        for ax, (title, stats) in zip(axes, PANELS, strict=True):
            for (key, label), style in zip(stats, ("-", "--"), strict=True):
                mean, lo, hi = df[key].mean(), df[key].min(), df[key].max()
                ax.plot(mean.index, mean.values, style, color=colours[network], marker="o", markersize=2.5,
                        label=f"{LABELS[network]}: {label}")
                ax.fill_between(mean.index, lo.values, hi.values, color=colours[network], alpha=0.15, linewidth=0)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("%")
    for ax in axes:
        ax.axvline(clean + 0.5, color="0.4", linestyle=":", linewidth=1)
        ax.legend(fontsize=6, ncol=2)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[-1].set_xlabel(f"epoch (1--{clean}: clean training, then PGD adversarial training)")
    fig.tight_layout()
    return fig


KINDS = {"plasticity": plasticity}


# --- Claims ----------------------------------------------------------------------------------------------------

def _pm(values: list[float]) -> str:
    return _mean_sd(values).replace(" $\\pm$ ", "$\\pm$")


def p4_claims(params: dict) -> list[Check]:
    """SEEDS.md 4.4's claims, and Hypothesis 1 over the depth sweep. A difference counts only where it exceeds
    twice its standard error over the three seeds."""
    from scipy.stats import spearmanr

    nets = {n: runs(params, n) for n, _ in P4_NETWORKS}
    sh, dp = nets[SHALLOW], nets[DEEP]
    out = []
    before = _values(sh, "success_before") + _values(dp, "success_before")
    after = _values(sh, "success_after") + _values(dp, "success_after")
    halved = bool(before and after) and statistics.fmean(after) <= statistics.fmean(before) / 2
    out.append(Check("1", "PGD adversarial training lowers the adversary's success rate (PGD-200 at the training "
                     "$\\epsilon$, first test images) to at most half (mean over both networks and the seeds)",
                     "56 $\\to$ 12\\,\\%", f"{_pm(before)} $\\to$ {_pm(after)}\\,\\%", halved))
    drop = [100 * (r.test_before - r.test_after) for r in sh]
    out.append(Check("2", "Adversarial training lowers the shallow network's clean test accuracy (the drop over the "
                     "seeds exceeds twice its standard error)", "98.80 $\\to$ 94.91",
                     f"{_pm(_values(sh, 'test_before'))} $\\to$ {_pm(_values(sh, 'test_after'))}",
                     _exceeds(drop, [0.0])))
    deep_drop = [100 * (r.test_before - r.test_after) for r in dp]
    holds = _exceeds(drop, deep_drop) and _exceeds(_values(dp, "test_after"), _values(sh, "test_after"))
    out.append(Check("3", "Hypothesis 1 on the seed's two networks: the deep network loses less clean test accuracy "
                     "in adversarial training than the shallow one and ends above it",
                     "$-1.03$ vs.\\ $-3.89$; 97.33 vs.\\ 94.91",
                     f"{-statistics.fmean(deep_drop):+.2f} vs.\\ {-statistics.fmean(drop):+.2f}; "
                     f"{_pm(_values(dp, 'test_after'))} vs.\\ {_pm(_values(sh, 'test_after'))}", holds))
    out.append(Check("4", "Before adversarial training the deep network is less accurate than the shallow one, on "
                     "the training and the test data", "98.70 vs.\\ 99.50; 98.36 vs.\\ 98.80",
                     f"{_pm(_values(dp, 'train_before'))} vs.\\ {_pm(_values(sh, 'train_before'))}; "
                     f"{_pm(_values(dp, 'test_before'))} vs.\\ {_pm(_values(sh, 'test_before'))}",
                     _exceeds(_values(sh, "train_before"), _values(dp, "train_before"))
                     and _exceeds(_values(sh, "test_before"), _values(dp, "test_before"))))
    depths = [(int(n[1]), r) for n in ("d1", "d2", "d3", "d4") for r in nets[n]]
    rho_acc = spearmanr([d for d, _ in depths], [r.test_after for _, r in depths])
    rho_worst = spearmanr([d for d, _ in depths], [r.worst for _, r in depths])
    means = " / ".join(f"{statistics.fmean(_values(nets[n], 'test_after')):.1f}" for n in ("d1", "d2", "d3", "d4"))
    out.append(Check("H1", "Hypothesis 1 over the sweep (1--4 convs, three seeds each): the clean test accuracy after "
                     "adversarial training rises with depth (Spearman $\\rho > 0$, $p < 0.05$) while the worst case at "
                     "the training $\\epsilon$ does not fall ($\\rho \\geq 0$)", "(future work)",
                     f"{means}; $\\rho$ = {rho_acc.statistic:.2f} ($p$ = {rho_acc.pvalue:.2g}), worst case "
                     f"$\\rho$ = {rho_worst.statistic:.2f}",
                     bool(rho_acc.statistic > 0 and rho_acc.pvalue < 0.05 and rho_worst.statistic >= 0)))
    d2, wide = _values(nets[SHALLOW], "test_after"), _values(nets["d2-double"], "test_after")
    gain_depth = statistics.fmean(_values(dp, "test_after")) - statistics.fmean(d2)
    gain_width = statistics.fmean(wide) - statistics.fmean(d2)
    out.append(Check("H2", "Hypothesis 2 (depth, not width): one more conv raises the clean test accuracy after "
                     "adversarial training more than twice the width does", "(conjecture)",
                     f"{gain_depth:+.2f} vs.\\ {gain_width:+.2f} points", gain_depth > gain_width))
    out.append(Check("5", "Adversarially trained features transfer worse (the seed's Table 4.1: MAC network on CLEVR "
                     "with ResNet-152 features; neither the data nor the networks are available offline, no "
                     "verdict)", "47.24 vs.\\ 99.0\\,\\%", "--", None))
    return out
