"""Part M2 (seed 002, slides "Modelling adversarial training"): its figures, tables and claims, from
results/theory (the ODE and the simulation of `advrepro.theory`, the logistic regression)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..experiments import theory_runs
from ..theory import MixtureSpec, draw
from . import results
from .checks import Check

TRAINING_LABELS = {"plain": "plain", "at": "adversarial"}
QUANTITIES = (("R", "$R = w \\cdot B$"), ("b", "$b$"), ("E", "test error $E$"), ("S", "adversarial error $S$"))


def _runs(params: dict, scenarios) -> dict:
    return {r: results.theory_run(params, r) for r in theory_runs(params, tuple(scenarios))}


# --- Figures ---------------------------------------------------------------------------------------------------

def mixture(params: dict, fig_spec) -> plt.Figure:
    """Figure M2.1: points of the mixture in N dimensions (the slides' rho = 6), projected on the cluster direction
    B and on a random direction orthogonal to it, and the histogram of B . xi; drawn from the seed."""
    ill = params["theory"]["illustration"]
    rng = np.random.default_rng([params["seed"], 3])
    n_dim = ill["n_dim"]
    direction = np.zeros(n_dim)
    direction[0] = 1.0
    other = rng.standard_normal(n_dim)
    other[0] = 0.0
    other /= np.linalg.norm(other)
    spec = MixtureSpec(p=0.5, rho=ill["rho"], v1=params["theory"]["v1"], v2=params["theory"]["v2"])
    xi, tau = draw(spec, direction, ill["points"], rng)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
    palette = sns.color_palette("deep")
    for t, color in ((1, palette[0]), (-1, palette[3])):
        axes[0].scatter(xi[tau == t] @ direction, xi[tau == t] @ other, s=4, color=color, label=f"$\\tau = {t:+d}$")
        axes[1].hist(xi[tau == t] @ direction, bins=40, color=color, alpha=0.6)
    axes[0].set_xlabel("$B \\cdot \\xi$")
    axes[0].set_ylabel("$u \\cdot \\xi$, $u \\perp B$")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("$B \\cdot \\xi$")
    axes[1].set_ylabel("examples")
    fig.suptitle(f"$N = {n_dim}$, $\\rho = {ill['rho']:g}$, {ill['points']} examples", fontsize=8)
    fig.tight_layout()
    return fig


def dynamics(params: dict, fig_spec) -> plt.Figure:
    """Figures M2.2, M2.4: R, b, E and S over alpha, plain and adversarial training: the ODE as lines, the
    simulation's mean +- sd as markers (every tenth of the simulated range)."""
    runs = _runs(params, fig_spec.scenarios)
    fig, axes = plt.subplots(1, 4, figsize=(7.5, 2.4))
    palette = sns.color_palette("deep")
    for c, (name, run) in enumerate(runs.items()):
        label = TRAINING_LABELS[name.rsplit("-", 1)[1]]
        ode, sim = run["ode"], run["simulation"]
        alpha = np.asarray(sim["alpha"])
        pick = np.unique(np.linspace(0, len(alpha) - 1, 11).round().astype(int))
        for ax, (q, title) in zip(axes, QUANTITIES, strict=True):
            ax.plot(ode["alpha"], ode[q], color=palette[c], lw=1, label=f"{label}, ODE")
            ax.errorbar(alpha[pick], np.asarray(sim[f"{q}_mean"])[pick], yerr=np.asarray(sim[f"{q}_std"])[pick],
                        fmt="o", ms=3, color=palette[c], capsize=2, label=f"{label}, simulation")
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("$\\alpha$", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    return fig


def robustness(params: dict, fig_spec) -> plt.Figure:
    """Figures M2.3, M2.5: the adversarial error S(eps) at the end of training, plain against adversarial: the
    ODE's (R, b) as lines, the simulated networks' empirical error on fresh points as markers."""
    runs = _runs(params, fig_spec.scenarios)
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    palette = sns.color_palette("deep")
    for c, (name, run) in enumerate(runs.items()):
        label = TRAINING_LABELS[name.rsplit("-", 1)[1]]
        rob = run["robustness"]
        ax.plot(rob["epsilons"], rob["ode"], color=palette[c], label=f"{label}, ODE")
        ax.errorbar(rob["epsilons"], rob["empirical_mean"], yerr=rob["empirical_std"], fmt="o", ms=3,
                    color=palette[c], capsize=2, label=f"{label}, simulation")
    ax.set_xlabel("$\\epsilon$ ($L_2$)")
    ax.set_ylabel("adversarial error $S$")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return fig


def logistic_output(params: dict, fig_spec) -> plt.Figure:
    """Figure M2.6: histograms of w.x + b on the clean and on the perturbed test images, by label."""
    summary, arrays = results.logistic(params)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.8), sharey=True)
    palette = sns.color_palette("deep")
    first, second = summary["digits"]
    shown = summary["shown_epsilon"]
    for ax, key, title in ((axes[0], "clean_output", "unperturbed test images"),
                           (axes[1], "attacked_output", f"perturbed, $\\epsilon = {shown:g}$")):
        out = np.asarray(arrays[key])
        bins = np.linspace(out.min(), out.max(), 40)
        for t, digit, color in ((1, first, palette[0]), (-1, second, palette[3])):
            ax.hist(out[arrays["tau"] == t], bins=bins, alpha=0.6, color=color, label=f"{digit} ($\\tau = {t:+d}$)")
        ax.axvline(0, color="0.3", lw=0.8, ls="--")
        err = np.mean(np.sign(out) != arrays["tau"])
        ax.set_title(f"{title}: {100 * err:.1f}\\,% error", fontsize=8)
        ax.set_xlabel("$w \\cdot x + b$")
    axes[0].set_ylabel("test images")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def logistic_weights(params: dict, fig_spec) -> plt.Figure:
    """Figure M2.7: w, sign(w) and a perturbed example of each digit beside its original."""
    summary, arrays = results.logistic(params)
    side = int(math.isqrt(len(arrays["w"])))
    w = np.asarray(arrays["w"]).reshape(side, side)
    panels = [(w, "$w$", "RdBu_r", None), (np.sign(w), "sign($w$)", "RdBu_r", (-1, 1))]
    for i, digit in enumerate(summary["digits"]):
        panels += [(arrays["examples"][i].reshape(side, side), f"a {digit}", "gray", (-1, 1)),
                   (arrays["attacked_examples"][i].reshape(side, side),
                    f"perturbed, $\\epsilon = {summary['shown_epsilon']:g}$", "gray", (-1, 1))]
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5, 1.8))
    for ax, (img, title, cmap, lim) in zip(axes, panels, strict=True):
        bound = float(np.abs(img).max()) or 1.0
        vmin, vmax = lim if lim else (-bound, bound)
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


KINDS = {"mixture": mixture, "dynamics": dynamics, "robustness": robustness, "logistic_output": logistic_output,
         "logistic_weights": logistic_weights}


# --- Tables ----------------------------------------------------------------------------------------------------

def _f(x: float) -> str:
    return f"{x:.4f}".replace("-", "$-$")


def theory_table(params: dict, table) -> list[str]:
    """Table M2.1: per scenario and training, the ODE and the simulation at alpha_max, the fixed point, and the
    Bayes-optimal reference."""
    lines = ["\\begin{tabular}{llrrrrr}", "\\toprule",
             "Scenario & Where & $\\alpha$ & $R$ & $b$ & $E$ & $S$ \\\\", "\\midrule"]
    for name, run in _runs(params, table.scenarios).items():
        scenario, training = name.rsplit("-", 1)
        head = f"{scenario}, $p = {run['spec']['p']:g}$, {TRAINING_LABELS[training]}"
        end, sim, sd = run["end"]["ode"], run["end"]["simulation"], run["end"]["simulation_std"]
        alpha = run["end"]["alpha"]
        lines.append(f"{head} & ODE & {alpha} & " + " & ".join(_f(end[q]) for q in "RbES") + " \\\\")
        lines.append(f" & simulation & {alpha} & " + " & ".join(f"{_f(sim[q])} $\\pm$ {sd[q]:.3f}" for q in "RbES")
                     + " \\\\")
        fixed = run["fixed_point"]
        lines.append(" & fixed point & $\\infty$ & " + " & ".join(_f(fixed[q]) for q in "RbES") + " \\\\")
        if training == "plain":
            lines.append(f" & Bayes & & 1 & {_f(run['bayes']['b'])} & {_f(run['bayes']['E'])} & \\\\")
        lines.append("\\midrule")
    lines[-1] = "\\bottomrule"
    return lines


def logistic_table(params: dict, table) -> list[str]:
    """Table M2.2: the test error at each epsilon of the grid, and the epsilon where it reaches the slides'
    40 %."""
    summary, _ = results.logistic(params)
    eps = summary["epsilons"]
    reach = summary["epsilon_at_target"]
    target = 100 * summary["target_error"]
    reach_text = "not reached" if reach is None else f"{reach:.3f} ({reach / 2:.3f} in $[0, 1]$)"
    return ["\\begin{tabular}{l" + "r" * len(eps) + "}", "\\toprule",
            "$\\epsilon$ in $[-1, 1]$ & " + " & ".join(f"{e:g}" for e in eps) + " \\\\",
            "$\\epsilon$ in $[0, 1]$ & " + " & ".join(f"{e / 2:g}" for e in eps) + " \\\\", "\\midrule",
            "test error (\\%) & " + " & ".join(f"{100 * e:.1f}" for e in summary["test_error"]) + " \\\\",
            "\\midrule", f"\\multicolumn{{{len(eps) + 1}}}{{l}}{{{target:.0f}\\,\\% test error at $\\epsilon$ = "
            f"{reach_text}; {summary['n_train']} training and {summary['n_test']} test images}} \\\\",
            "\\bottomrule"]


TABLE_KINDS = {"theory": theory_table, "logistic": logistic_table}


# --- Claims ----------------------------------------------------------------------------------------------------

def m2_claims(params: dict) -> list[Check]:
    """SEEDS.md 2.3's predictions of the model, each decided from this run's ODE and simulation, and the slides'
    two empirical statements."""
    runs = _runs(params, ())
    fx = {name: run["fixed_point"] for name, run in runs.items()}
    out = []
    if {"s1-plain", "s1-at"} <= set(runs):
        p, a = fx["s1-plain"], fx["s1-at"]
        r50 = {k: runs[k]["ode"]["R"][50] for k in ("s1-plain", "s1-at") if len(runs[k]["ode"]["R"]) > 50}
        faster = len(r50) == 2 and r50["s1-at"] > r50["s1-plain"]
        out.append(Check("1", "Balanced classes: adversarial training barely moves the end point (fixed points' $E$ "
                         "within 0.005, $S(1)$ within 0.01) but speeds up the growth of $R$ ($R(50)$ higher)",
                         "0.1612 vs.\\ 0.1610; $R(50)$ 0.864 vs.\\ 0.770",
                         f"{a['E']:.4f} vs.\\ {p['E']:.4f}; $R(50)$ " + (" vs.\\ ".join(
                             f"{r50[k]:.3f}" for k in ("s1-at", "s1-plain")) if len(r50) == 2 else "--"),
                         abs(a["E"] - p["E"]) <= 0.005 and abs(a["S"] - p["S"]) <= 0.01 and faster))
    if {"s2-plain", "s2-at"} <= set(runs):
        p, a = fx["s2-plain"], fx["s2-at"]
        out.append(Check("2", "Imbalanced classes: adversarial training moves the threshold towards the minority "
                         "cluster (fixed point $b$ at least 0.5 lower) and trades clean error for adversarial "
                         "error ($E$ higher, $S(1)$ lower)", "$b$ $-1.47$ vs.\\ $-0.41$; $E$ 0.210 vs.\\ 0.141; "
                         "$S$ 0.330 vs.\\ 0.440", f"$b$ ${a['b']:.2f}$ vs.\\ ${p['b']:.2f}$; $E$ {a['E']:.3f} vs.\\ "
                         f"{p['E']:.3f}; $S$ {a['S']:.3f} vs.\\ {p['S']:.3f}",
                         a["b"] <= p["b"] - 0.5 and a["E"] > p["E"] and a["S"] < p["S"]))
        run = runs["s2-at"]
        b_ode, b_sim = np.asarray(run["ode"]["b"]), np.asarray(run["simulation"]["b_mean"])
        overshoot = b_ode.min() < a["b"] - 0.3 and b_sim.min() < a["b"] - 0.3
        e_ode = np.asarray(run["ode"]["E"])
        rising = int(np.argmax(np.diff(e_ode) > 0))  # E first falls; its transient peak comes after it rises
        peak = rising + int(np.argmax(e_ode[rising:]))
        out.append(Check("3", "Imbalanced classes, adversarial training: $b$ overshoots its fixed point (by more than "
                         "0.3, in the ODE and in the simulation's mean) before it relaxes",
                         "$b$ to $\\approx -2.26$ near $\\alpha = 150$, then $-1.47$",
                         f"ODE ${b_ode.min():.2f}$ at $\\alpha = {int(np.argmin(b_ode))}$, "
                         f"simulation ${b_sim.min():.2f}$; "
                         f"$E$ peaks at $\\alpha = {peak}$", overshoot))
    agree = []
    for name, run in runs.items():
        end, sim = run["end"]["ode"], run["end"]["simulation"]
        agree.append((name, abs(sim["R"] - end["R"]), abs(sim["b"] - end["b"])))
    worst_r, worst_b = max(a[1] for a in agree), max(a[2] for a in agree)
    out.append(Check("4", "The ODE describes the simulated training at $N = "
                     f"{params['theory']['n_dim']}$: at $\\alpha_{{\\max}}$ the simulation's mean $R$ and $b$ lie "
                     "within 0.05 and 0.1 of the ODE in every run", "(derivation)",
                     f"largest gaps {worst_r:.3f} ($R$), {worst_b:.3f} ($b$)", worst_r <= 0.05 and worst_b <= 0.1))
    monotone = all(np.all(np.diff(np.asarray(run["robustness"]["ode"])) >= 0) and
                   np.all(np.diff(np.asarray(run["robustness"]["empirical_mean"])) >= -0.01) for run in runs.values())
    out.append(Check("5", "The robustness curve $S(\\epsilon)$ increases monotonically (Göpfert et al.; the ODE's "
                     "exactly, the simulation's within 0.01)", "monotone", "yes" if monotone else "no", monotone))
    summary, _ = results.logistic(params)
    reach = summary["epsilon_at_target"]
    out.append(Check("6", "Logistic regression on MNIST 3 vs.\\ 7: the perturbation of every test image gives "
                     "40\\,\\% test error (the slides give no $\\epsilon$; reported, no verdict)", "40\\,\\%",
                     "not reached" if reach is None else f"at $\\epsilon$ = {reach:.3f} ({reach / 2:.3f} in $[0, 1]$)",
                     None))
    return out
