"""Sanity checks of the evaluation, per experiment, and of the thesis's transcribed numbers
(paper/generated/sanity.tex).

After Carlini et al. 2019 ("On Evaluating Adversarial Robustness"): iterative attacks at least as strong as
single-step ones; accuracy non-increasing in epsilon; accuracy 0 when the ball is the whole input box;
a stronger run of the same attack (twice the PGD steps) finding less than a point more
(else the evaluation has not converged); a gradient-free attack finding less than a point more than the
gradient attacks (else gradient masking is suspected); the share of inputs whose input gradient is zero.
Every flag is explained in the generated text (`EXPLANATIONS`).
"""
from __future__ import annotations

from itertools import pairwise

from .. import paths
from ..attacks import ATTACKS, BOX, STRONG, epsilon_attacks
from ..experiments import DATASETS, TABLES, all_experiments
from ..io import write_text
from ..spec import evaluation_spec
from . import results

TOLERANCE = 0.01   # "less than one point"

# flag -> (what it says, why it can happen and what it means for the numbers)
EXPLANATIONS = {
    "pgd>fgsm": ("PGD-40 is weaker than FGSM at some $\\epsilon$",
                 "the thesis's PGD takes 40 steps of 0.01 from the clean input: it has not reached the ball's "
                 "surface at $\\epsilon = 0.3$ until step 30 and follows the local loss, which one step of the "
                 "ball's full size can beat. The worst case contains FGSM, so it is not affected."),
    "non-monotone": ("one of the thesis's attacks scores higher at a larger $\\epsilon$",
                     "FGSM's single step grows with $\\epsilon$ and overshoots, PGD-40's fixed step explores a "
                     "bigger ball with the same 40 steps: neither attack is monotone in $\\epsilon$. The worst "
                     "case is, by construction: an adversarial example of a smaller ball lies in the larger one."),
    "box": ("accuracy above 0 with the whole $[-1, 1]$ box allowed",
            "every input can be moved to any other, so a correct attack reaches 0 unless the model maps "
            "every reachable input to the true class; the remaining samples show where PGD did not converge."),
    "not converged": ("twice the PGD steps find more than one point more",
                      "the worst case is then an upper bound that more compute would lower."),
    "gradient masking": ("the gradient-free Square attack finds more than one point the gradient attacks missed",
                         "the gradients mislead the attacks: the gradient attacks' numbers overstate robustness."),
    "zero gradient": ("more than 1\\,\\% of the inputs have a zero input gradient",
                      "saturated outputs give the gradient attacks nothing to follow."),
}


def experiment_checks(params: dict, exp) -> dict:
    """{"zero", "box", "probe", "square" (fractions), "flags" (names of EXPLANATIONS)} of one experiment."""
    m = results.metrics(params, exp)
    acc, strong, n = m["accuracy"], m["strong"], m["n_samples"]
    ev = evaluation_spec(params, exp.dataset)
    eps, strong_eps = sorted(ev.epsilons), ev.strong_at
    pgd, fgsm = ATTACKS["pgd"], ATTACKS["fgsm"]
    found = strong["found"]
    probe = max(sum(found[f"{e:g}"].get(a.name, 0) for a in STRONG.values() if a.probe) for e in strong_eps) / n
    square = max(sum(found[f"{e:g}"].get(a.name, 0) for a in STRONG.values() if not a.gradient)
                 for e in strong_eps) / n
    per_eps = epsilon_attacks(DATASETS[exp.dataset].kind, ev)  # the L-infinity attacks this evaluation ran
    flags = []
    if pgd in per_eps and fgsm in per_eps and any(acc[pgd.key(e)] > acc[fgsm.key(e)] for e in eps):
        flags.append("pgd>fgsm")
    if any(acc[a.key(e2)] > acc[a.key(e1)] for a in per_eps for e1, e2 in pairwise(eps)):
        flags.append("non-monotone")
    if acc[BOX] > 0:
        flags.append("box")
    if probe >= TOLERANCE:
        flags.append("not converged")
    if square >= TOLERANCE:
        flags.append("gradient masking")
    if strong["zero_gradient"] > TOLERANCE:
        flags.append("zero gradient")
    return {"zero": strong["zero_gradient"], "box": acc[BOX], "probe": probe, "square": square, "flags": flags}


def _key_parts(key: str) -> tuple[str, float | None]:
    name, _, eps = key.partition("_")
    return name, float(eps) if eps else None


def _row_failures(row: dict[str, float]) -> dict[str, list]:
    """The checks one transcribed thesis row fails: the columns above clean accuracy, the epsilons where
    PGD is above FGSM, the attacks whose accuracy rises with epsilon."""
    series: dict[str, list[tuple[float, float]]] = {}
    for k, v in row.items():
        name, e = _key_parts(k)
        if e is not None:
            series.setdefault(name, []).append((e, v))
    fgsm = ATTACKS["fgsm"]
    return {"above clean": [k for k, v in row.items() if k != "plain" and v > row["plain"]],
            "pgd>fgsm": [e for e, v in series.get("pgd", []) if fgsm.key(e) in row and row[fgsm.key(e)] < v],
            "rising": [name for name, pts in series.items() if any(b[1] > a[1] for a, b in pairwise(sorted(pts)))]}


def _thesis_rows():
    for table_id in dict.fromkeys(t.thesis_id for t in TABLES):
        for (model, scenario), row in results.thesis_numbers(table_id).items():
            yield table_id, model, scenario, row, _row_failures(row)


def thesis_checks() -> list[tuple[str, str, str, list[str]]]:
    """(thesis table, model, scenario, failures in words) for every transcribed row that fails a check."""
    out = []
    for table_id, model, scenario, row, fails in _thesis_rows():
        words = []
        if fails["above clean"]:
            words.append("above clean: " + ", ".join(f"{_label(k)} {row[k]:.1f} $>$ {row['plain']:.1f}"
                                                     for k in fails["above clean"]))
        if fails["pgd>fgsm"]:
            words.append("PGD $>$ FGSM at $\\epsilon$ " + ", ".join(f"{e:g}" for e in fails["pgd>fgsm"]))
        if fails["rising"]:
            words.append("rises with $\\epsilon$: " + ", ".join(ATTACKS[n].label for n in fails["rising"]))
        if words:
            out.append((table_id, model, scenario, words))
    return out


def thesis_counts() -> dict[str, int]:
    """How many thesis rows (cells, for PGD above FGSM) fail each check: the paper's summary sentence."""
    counts = {"rows": 0, "above clean": 0, "pgd>fgsm cells": 0, "rising": 0}
    for *_, fails in _thesis_rows():
        counts["rows"] += 1
        counts["above clean"] += bool(fails["above clean"])
        counts["pgd>fgsm cells"] += len(fails["pgd>fgsm"])
        counts["rising"] += bool(fails["rising"])
    return counts


def _label(key: str) -> str:
    name, e = _key_parts(key)
    return ATTACKS[name].label + ("" if e is None else f"{e:g}")


def render(params: dict) -> str:
    rows = [(exp, experiment_checks(params, exp)) for exp in all_experiments(params)]
    lines = ["% Generated by `advrepro sanity` from results/metrics and paper/thesis; do not edit.",
             "\\newcommand{\\sanitytable}{%",
             "\\begin{longtable}{llrrrrl}", "\\toprule",
             "Dataset & Model & 0-grad & $\\epsilon{=}2$ & PGD 2$\\times$ & Square & Flags \\\\", "\\midrule",
             "\\endhead"]
    for exp, c in rows:
        flags = ", ".join(c["flags"]) or "--"
        lines.append(f"{exp.dataset} & {exp.label} & {100 * c['zero']:.1f} & {100 * c['box']:.1f} & "
                     f"{100 * c['probe']:.1f} & {100 * c['square']:.1f} & {flags} \\\\")
    lines += ["\\bottomrule", "\\end{longtable}}"]
    seen = {f: sum(f in c["flags"] for _, c in rows) for f in EXPLANATIONS}
    items = [f"\\item \\textbf{{{f}}} ({n} of {len(rows)} experiments): {EXPLANATIONS[f][0]}; {EXPLANATIONS[f][1]}"
             for f, n in seen.items() if n]
    lines += ["\\newcommand{\\sanityflags}{%",
              "\\begin{itemize}" if items else "No experiment raises a flag.",
              *items, "\\end{itemize}}" if items else "}"]
    lines += [f"\\newcommand{{\\sanityunflagged}}{{{sum(not c['flags'] for _, c in rows)}}}",
              f"\\newcommand{{\\sanityexperiments}}{{{len(rows)}}}"]
    lines += ["\\newcommand{\\thesissanitytable}{%", "\\begin{longtable}{llp{0.62\\linewidth}}", "\\toprule",
              "Thesis table & Row & Failed checks \\\\", "\\midrule", "\\endhead"]
    for table_id, model, scenario, failures in thesis_checks():
        lines.append(f"{table_id.replace('_', '.')} & {model.upper()} {scenario} & {'; '.join(failures)} \\\\")
    lines += ["\\bottomrule", "\\end{longtable}}"]
    counts = thesis_counts()
    lines += [f"\\newcommand{{\\thesisrows}}{{{counts['rows']}}}",
              f"\\newcommand{{\\thesisaboveclean}}{{{counts['above clean']}}}",
              f"\\newcommand{{\\thesispgdoverfgsm}}{{{counts['pgd>fgsm cells']}}}",
              f"\\newcommand{{\\thesisrising}}{{{counts['rising']}}}"]
    return "\n".join(lines + [""])


def write_sanity(params: dict) -> None:
    write_text(paths.SANITY, render(params))
