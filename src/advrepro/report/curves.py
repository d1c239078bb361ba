"""Robustness curves (Göpfert et al. 2019; seed 002's slides, part M2's Figure 8): the worst-case accuracy of every
trained model of a dataset against epsilon, from the per-sample results its evaluation already holds (no attack is
run again).

At epsilon = 0 the curve is the natural accuracy. At each epsilon of the evaluation's grid a sample counts as robust
when it is correct clean, under every attack of the grid at this and every smaller epsilon (an adversarial example
of a smaller ball lies in the larger one), and under the strong evaluation's cascade where it was computed: the
curve is a per-sample worst case and never rises. Its last point is the sanity check's whole [-1, 1] box (every
attack at the box's epsilon, where nothing can stay correct); the segment up to it is dotted, since nothing was
measured in between.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..attacks import BOX, epsilon_attacks, worst_key
from ..data import DATASETS
from ..experiments import P4_SCENARIOS, figure_experiments
from ..io import unpack
from ..models import MODELS
from ..spec import evaluation_spec
from . import results


def curve_points(params: dict, exp) -> tuple[list[tuple[float, float]], tuple[float, float] | None]:
    """([(epsilon, worst-case accuracy)] from 0 over the evaluation's grid, (box epsilon, accuracy) or None)."""
    m = results.metrics(params, exp)
    n = m["n_samples"]
    bits = {k: unpack(v, n) for k, v in m["correct"].items()}
    ev = evaluation_spec(params, exp.dataset)
    robust = bits["plain"].copy()
    points = [(0.0, round(float(robust.mean()), 6))]  # rounded as the metrics files are
    for eps in sorted(ev.epsilons):
        for attack in epsilon_attacks(DATASETS[exp.dataset].kind, ev):
            robust &= bits[attack.key(eps)]
        if worst_key(eps) in bits:
            robust &= bits[worst_key(eps)]
        points.append((eps, round(float(robust.mean()), 6)))
    box = (ev.strong.box_epsilon, round(float(bits[BOX].mean()), 6)) if BOX in bits else None
    return points, box


def _group(exp) -> str:
    """The line a model belongs to: its scenario (by name: several share a row label), the replicates of one
    network (part P4) together."""
    if exp.scenario in P4_SCENARIOS:
        return exp.scenario.label.rsplit(", seed", 1)[0]
    return exp.scenario.name


def robustness_curve(params: dict, fig_spec) -> plt.Figure:
    """One panel per model, one line per scenario (a network's seeds: their mean, the range as a band)."""
    exps = figure_experiments(params, fig_spec)
    rows, boxes = [], {}
    for exp in exps:
        points, box = curve_points(params, exp)
        model = MODELS[exp.model].label
        rows += [{"model": model, "training": _group(exp), "epsilon": e, "accuracy (%)": 100 * a} for e, a in points]
        if box is not None:
            boxes.setdefault((model, _group(exp)), []).append(box)
    df = pd.DataFrame(rows)
    models = list(dict.fromkeys(df["model"]))
    trainings = list(dict.fromkeys(df["training"]))
    palette = dict(zip(trainings, sns.color_palette("deep", len(trainings)) if len(trainings) <= 10
                       else sns.color_palette("husl", len(trainings)), strict=True))
    fig, axes = plt.subplots(1, len(models), figsize=(7.5, 3.0), squeeze=False, sharey=True)
    grid_max = float(df["epsilon"].max())
    box_x = 1.3 * grid_max  # the box's point, drawn past the grid (its epsilon is on the tick label)
    for ax, model in zip(axes[0], models, strict=True):
        part = df[df["model"] == model]
        sns.lineplot(part, x="epsilon", y="accuracy (%)", hue="training", palette=palette, marker="o",
                     errorbar=("pi", 100), ax=ax, legend=ax is axes[0, -1])
        for (m, training), bx in boxes.items():
            if m != model:
                continue
            last = part[(part["training"] == training) & (part["epsilon"] == grid_max)]["accuracy (%)"].mean()
            ax.plot([grid_max, box_x], [last, 100 * np.mean([a for _, a in bx])], ls=":", marker="x",
                    color=palette[training])
        ticks = sorted(set(part["epsilon"]))
        positive = [t for t in ticks if t > 0]
        if positive and max(positive) / min(positive) > 100:  # a grid over decades (seed 003's): symmetric log
            ax.set_xscale("symlog", linthresh=min(positive))
        ax.set_xlim(0, 1.05 * box_x)
        box_eps = next(iter(boxes.values()))[0][0] if boxes else None
        ax.set_xticks(ticks + ([box_x] if box_eps is not None else []),
                      [f"{t:g}" for t in ticks] + ([f"{box_eps:g}\n(box)"] if box_eps is not None else []),
                      fontsize=6, rotation=90 if len(ticks) > 6 else 0)
        ax.set_ylim(0, 100)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("$\\epsilon$")
    if len(trainings) > 6:  # many lines: the legend beside the panels
        axes[0, -1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    elif len(trainings) > 1:
        axes[0, -1].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


KINDS = {"robustness_curve": robustness_curve}
