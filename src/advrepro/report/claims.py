"""The claims check: each quantitative claim of the thesis's text and conclusions, the thesis's
figure, this run's figure, and a verdict computed by the rule the claim states.

Verdicts as in checks.py.
Accuracies are means over the profile's models, in percent; this run's accuracy under attack is the
per-sample worst case over every attack (the thesis's: its PGD).
"""
from __future__ import annotations

import statistics

from ..attacks import ATTACKS, worst_key
from ..experiments import SCENARIOS, TABLES, Experiment, models, table_experiments
from . import results, timing
from .checks import VERDICTS, Check, tally

# The thesis states its claims at its own epsilons, under its PGD; this run's side of every robustness claim
# is the per-sample worst case over all attacks (evaluate.strong_worst_case). The registry owns the keys.
PGD_01, PGD_03 = ATTACKS["pgd"].key(0.1), ATTACKS["pgd"].key(0.3)
WORST_01, WORST_03 = worst_key(0.1), worst_key(0.3)
HEADLINE = next(t for t in TABLES if t.id == "5_1_eps03")  # Algorithm 1 trained at epsilon 0.3


def _acc(params: dict, dataset: str, scenario: str, column: str, model: str) -> float:
    return 100 * results.metrics(params, Experiment(dataset, model, SCENARIOS[scenario]))["accuracy"][column]


def _mean(params: dict, dataset: str, scenario: str, column: str) -> float:
    return statistics.fmean(_acc(params, dataset, scenario, column, m) for m in models(params, dataset))


def _thesis_mean(table_id: str, scenario: str, column: str) -> float:
    rows = results.thesis_numbers(table_id)
    return statistics.fmean(v[column] for (m, s), v in rows.items() if s == scenario and column in v)


def _pct(x: float) -> str:
    return f"{x:.1f}\\,\\%"


def claims(params: dict) -> list[Check]:
    out = []
    trained = [e for e in table_experiments(params, HEADLINE) if e.scenario.name == "alg1-eps03"]
    ours = statistics.fmean(100 * results.metrics(params, e)["accuracy"][WORST_03] for e in trained)
    out.append(Check("5.1", "Algorithm~1 keeps MNIST models close to 90\\,\\% under PGD $\\epsilon=0.3$ "
                     "(reproduced if the mean worst case over all attacks at $\\epsilon = 0.3$ of the models "
                     f"trained at $\\epsilon = 0.3$, {', '.join(e.label.split()[0] for e in trained)}, is at least "
                     "80\\,\\%)", _pct(_thesis_mean("5_1", "alg1", PGD_03)), _pct(ours), ours >= 80))
    ours = _mean(params, "mnist", "plain", WORST_03)
    out.append(Check("5.1", "Plainly trained MNIST models lose almost everything to PGD $\\epsilon=0.3$ "
                     "(mean below 20\\,\\%)", _pct(_thesis_mean("5_1", "plain", PGD_03)), _pct(ours), ours < 20))
    gains = [_acc(params, "mnist", "alg1", WORST_01, m) - _acc(params, "mnist", "plain", WORST_01, m)
             for m in models(params, "mnist")]
    out.append(Check("5.1", "Algorithm~1 raises PGD $\\epsilon=0.1$ accuracy over plain training on MNIST "
                     "(every model)", "all 4", f"{sum(g > 0 for g in gains)} of {len(gains)}",
                     all(g > 0 for g in gains)))
    natural = [_acc(params, "mnist", "alg1", "plain", m) - _acc(params, "mnist", "plain", "plain", m)
               for m in models(params, "mnist")]
    out.append(Check("6.1", "Robust training can act as a regularizer and raise natural accuracy on MNIST "
                     "(some model gains)", "yes (FF, LSTM)", f"best {max(natural):+.1f} points", max(natural) > 0))
    spatial = [_acc(params, "mnist", "alg1", "spatial", m) - _acc(params, "mnist", "plain", "spatial", m)
               for m in models(params, "mnist")]
    out.append(Check("5.1", "Robust training gives no advantage against the spatial attack (every model within "
                     "10 points of plain)", "no advantage", f"at most {max(spatial):+.1f} points",
                     max(spatial) <= 10))
    best_plain = [_acc(params, "gtsrb", "plain", "plain", m) >= max(_acc(params, "gtsrb", s, "plain", m) for s in
                  ("alg1", "reg", "alg1-reg")) for m in models(params, "gtsrb")]
    out.append(Check("5.2", "On GTSRB, plain training gives the best natural accuracy (every model)",
                     f"plain {_thesis_mean('5_3', 'plain', 'plain'):.1f}\\,\\% (mean)",
                     f"{sum(best_plain)} of {len(best_plain)}",
                     all(best_plain)))
    gtsrb_gain = max(_acc(params, "gtsrb", "alg1", WORST_01, m) - _acc(params, "gtsrb", "plain", WORST_01, m)
                     for m in models(params, "gtsrb"))
    out.append(Check("5.2", "On GTSRB, robust training brings no meaningful PGD robustness (no model gains more "
                     "than 10 points at $\\epsilon=0.1$)", "$\\le$ 3 points", f"at most {gtsrb_gain:+.1f} points",
                     gtsrb_gain <= 10))
    raw, db = _mean(params, "speech-raw", "plain", "plain"), _mean(params, "speech-meldb", "plain", "plain")
    out.append(Check("5.3", "On Speech Commands the raw waveform does far worse than Mel+dB (at least 20 points "
                     "lower)", f"{_thesis_mean('5_4', 'plain', 'plain'):.1f} vs.\\ "
                     f"{_thesis_mean('5_5', 'plain', 'plain'):.1f}\\,\\%", f"{raw:.1f} vs.\\ {db:.1f}\\,\\%",
                     raw <= db - 20))
    a1, a2 = _mean(params, "speech-meldb", "alg1", "plain"), _mean(params, "speech-meldb", "alg2", "plain")
    out.append(Check("5.3", "On Speech Commands Mel+dB, Algorithm~1 costs natural accuracy (over 10 points) while "
                     "Algorithm~2 retains it (within 10 points of plain)",
                     f"{_thesis_mean('5_5', 'alg1', 'plain'):.1f} / {_thesis_mean('5_6', 'alg2', 'plain'):.1f} vs.\\ "
                     f"{_thesis_mean('5_5', 'plain', 'plain'):.1f}\\,\\%", f"{a1:.1f} / {a2:.1f} vs.\\ {db:.1f}\\,\\%",
                     a1 < db - 10 and a2 >= db - 10))
    plain_pgd, alg1_pgd = _mean(params, "urban-mel", "plain", WORST_01), _mean(params, "urban-mel", "alg1", WORST_01)
    plain_nat, alg1_nat = _mean(params, "urban-mel", "plain", "plain"), _mean(params, "urban-mel", "alg1", "plain")
    out.append(Check("5.4", "On UrbanSound8K spectrograms, Algorithm~1 raises PGD $\\epsilon=0.1$ accuracy without "
                     "costing natural accuracy (more than 5 points)",
                     f"PGD {_thesis_mean('5_9', 'plain', PGD_01):.1f} $\\to$ "
                     f"{_thesis_mean('5_9', 'alg1', PGD_01):.1f}\\,\\%",
                     f"worst {plain_pgd:.1f} $\\to$ {alg1_pgd:.1f}, "
                     f"natural {plain_nat:.1f} $\\to$ {alg1_nat:.1f}\\,\\%",
                     alg1_pgd > plain_pgd and alg1_nat >= plain_nat - 5))
    diffs = [abs(_acc(params, "urban-meldb", "alg1", c, m) - _acc(params, "urban-meldb", "alg2", c, m))
             for m in models(params, "urban-meldb") for c in ("plain", WORST_01)]
    out.append(Check("A.4", "On UrbanSound8K Mel+dB, Algorithms 1 and 2 give very similar outcomes (mean "
                     "difference at most 5 points, natural and PGD $\\epsilon=0.1$)", "similar",
                     f"{statistics.fmean(diffs):.1f} points", statistics.fmean(diffs) <= 5))
    pairs = timing.pairs(params)
    ratio = timing.fitted_ratio(pairs)
    out.append(Check("5.5", "Robust training takes about an order of magnitude more time per epoch (fitted ratio "
                     "between 3 and 30)", "$\\approx 10\\times$", f"{ratio:.1f}$\\times$", 3 <= ratio <= 30))
    by_key = {(r["dataset"], r["model"], r["scenario"]): r["robust"] for r in pairs}
    rel = [by_key[(d, m, "alg2")] / by_key[(d, m, "alg1")] for (d, m, s) in by_key
           if s == "alg2" and (d, m, "alg1") in by_key]
    med = statistics.median(rel) if rel else float("nan")
    out.append(Check("5.5", "Algorithm~2 takes almost the same time as Algorithm~1 (median ratio within "
                     "0.8--1.25)", "$\\approx 1\\times$", f"{med:.2f}$\\times$" if rel else "--",
                     (0.8 <= med <= 1.25) if rel else None))
    return out


def render(params: dict) -> list[str]:
    """LaTeX macros: \\claimstable (the table) and \\claimscount ("n of m")."""
    rows = claims(params)
    lines = ["\\newcommand{\\claimstable}{%", "\\begin{tabular}{l p{0.43\\linewidth} p{0.13\\linewidth} "
             "p{0.15\\linewidth} l}", "\\toprule", "\\S & Claim (rule) & Thesis & This run & Verdict \\\\",
             "\\midrule"]
    for c in rows:
        lines.append(f"{c.section} & {c.statement} & {c.thesis} & {c.ours} & {VERDICTS[c.verdict]} \\\\")
    return lines + ["\\bottomrule", "\\end{tabular}}", f"\\newcommand{{\\claimscount}}{{{tally(rows)}}}"]
