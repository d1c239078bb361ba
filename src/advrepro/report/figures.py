"""Seaborn/matplotlib figures of the paper, one function per kind of thesis figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import paths  # noqa: E402
from ..experiments import (MODEL_LABELS, Experiment, attack_columns, column_label,  # noqa: E402
                           figure_experiments, get_figure, robust_config)
from ..io import atomic_path  # noqa: E402
from . import results  # noqa: E402

# Fixed metadata: equal data give byte-identical PDFs.
PDF_METADATA = {"CreationDate": None, "Producer": "advrepro", "Creator": "advrepro"}


def _save(fig, figure_id: str) -> None:
    with atomic_path(paths.figure(figure_id)) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata=PDF_METADATA)
    plt.close(fig)


def _attack_key(params: dict, dataset: str, attack: str) -> str:
    eps = params[dataset]["evaluation"]["example_epsilon"]
    return attack if attack == "spatial" else f"{attack}_{eps:g}"


def example(params: dict, fig_spec) -> plt.Figure:
    """Original / adversarial / difference for the first test image the attack fools."""
    (exp,) = figure_experiments(params, fig_spec)
    ex = results.examples(exp)
    key = _attack_key(params, exp.dataset, fig_spec.attack)
    fooled = np.flatnonzero(ex[f"{key}_pred"] != ex["y"])
    i = int(fooled[0]) if len(fooled) else 0
    original, adversarial = ex["x"][i, ..., 0], ex[f"{key}_x"][i, ..., 0]
    diff = adversarial - original
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.7))
    lim = max(float(np.abs(diff).max()), 1e-6)
    panels = [(original, "gray", (-1, 1), f"original (label {ex['y'][i]})"),
              (adversarial, "gray", (-1, 1), f"{column_label(key)} (predicted {ex[f'{key}_pred'][i]})"),
              (diff, "RdBu_r", (-lim, lim), f"difference (max {lim:.2f})")]
    for ax, (img, cmap, (lo, hi), title) in zip(axes, panels):
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{exp.label} model", fontsize=10)
    return fig


def _accuracy_frame(params: dict, exps: list[Experiment], label) -> pd.DataFrame:
    rows = []
    for exp in exps:
        acc = results.metrics(exp)["accuracy"]
        for col in attack_columns(params, exp.dataset):
            rows.append({"model": MODEL_LABELS[exp.model], "setting": label(exp), "attack": column_label(col),
                         "accuracy (%)": 100 * acc[col]})
    return pd.DataFrame(rows)


def bars(params: dict, fig_spec) -> plt.Figure:
    """Accuracy per attack, one bar per model (thesis Figures 5.6, 5.7)."""
    df = _accuracy_frame(params, figure_experiments(params, fig_spec), lambda e: e.scenario.name)
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    sns.barplot(df, x="attack", y="accuracy (%)", hue="model", ax=ax, palette="deep")
    ax.set_ylim(0, 100)
    ax.legend(ncol=4, fontsize=8, loc="upper right")
    return fig


def epochs(params: dict, fig_spec) -> plt.Figure:
    """Test accuracy and training loss per epoch, one line per model (thesis Figures 5.8, 5.9)."""
    rows = []
    for exp in figure_experiments(params, fig_spec):
        for h in results.history(exp):
            rows.append({"model": MODEL_LABELS[exp.model], "epoch": h["epoch"],
                         "test accuracy (%)": 100 * h["test_accuracy"], "training loss": h["train_loss"]})
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
    sns.lineplot(df, x="epoch", y="test accuracy (%)", hue="model", marker="o", ax=axes[0], palette="deep")
    sns.lineplot(df, x="epoch", y="training loss", hue="model", marker="o", ax=axes[1], palette="deep",
                 legend=False)
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def stepsize(params: dict, fig_spec) -> plt.Figure:
    """Robust training with two (algorithm, K, stepsize) settings side by side (thesis Figure A.1)."""
    def label(exp):
        r = robust_config(params, exp)
        return f"{r['algorithm'].upper()}, K={r['K']}, step {r['stepsize']:g}"

    exps = figure_experiments(params, fig_spec)
    df = _accuracy_frame(params, exps, label)
    grid = sns.catplot(df, kind="bar", x="attack", y="accuracy (%)", hue="setting", col="model",
                       col_wrap=2, height=2.4, aspect=1.5, palette="muted")
    grid.set(ylim=(0, 100))
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=30, labelsize=7, labelbottom=True)
    grid.figure.subplots_adjust(hspace=0.5)
    return grid.figure


KINDS = {"example": example, "bars": bars, "epochs": epochs, "stepsize": stepsize}


def write_figure(params: dict, figure_id: str) -> None:
    spec = get_figure(figure_id)
    sns.set_theme(style="whitegrid", context="paper")
    _save(KINDS[spec.kind](params, spec), figure_id)

