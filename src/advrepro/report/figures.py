"""Seaborn/matplotlib figures of the paper, one function per kind of thesis figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import paths  # noqa: E402
from ..attacks import ATTACKS  # noqa: E402
from ..experiments import Experiment, attack_columns, defence_spec, figure_experiments, get_figure  # noqa: E402
from ..io import atomic_paths, unpack, write_text  # noqa: E402
from ..models import MODELS
from . import curves, depth, results, theory  # noqa: E402

# Fixed metadata: equal data give byte-identical PDFs.
PDF_METADATA = {"CreationDate": None, "Producer": "advrepro", "Creator": "advrepro"}


def _save(fig, figure_id: str, tex: str) -> None:
    """The PDF and its LaTeX block, both or neither."""
    try:
        with atomic_paths(paths.figure(figure_id), paths.figure_block(figure_id)) as (pdf_tmp, tex_tmp):
            fig.savefig(pdf_tmp, format="pdf", bbox_inches="tight", metadata=PDF_METADATA)
            write_text(tex_tmp, tex)
    finally:
        plt.close(fig)


def _scenario_label(exp: Experiment) -> str:
    return exp.scenario.label or "plain"


def _example(params: dict, fig_spec):
    """(experiment, examples, index): the example of the figure's class (the thesis shows the command
    four; UrbanSound8K's examples are one per fine class), else the first one the figure's first
    attack fools."""
    (exp,) = figure_experiments(params, fig_spec)
    ex = results.examples(exp)
    classes = ex.get("fine", ex["y"])
    if fig_spec.example_class is not None and fig_spec.example_class in classes:
        return exp, ex, int(np.flatnonzero(classes == fig_spec.example_class)[0])
    fooled = np.flatnonzero(ex[f"{fig_spec.attacks[0]}_pred"] != ex["y"])
    return exp, ex, int(fooled[0]) if len(fooled) else 0


def _subject(ex: dict, i: int) -> str:
    """What the example is: a class name and its binary label (UrbanSound8K), else the label."""
    if "fine" in ex:
        from ..data.urbansound import CLASSES

        return f"{CLASSES[ex['fine'][i]].replace('_', ' ')} (label {ex['y'][i]})"
    return f"label {ex['y'][i]}"


def _attack_title(ex: dict, attack: str, i: int) -> str:
    eps = f" $\\epsilon$={float(ex['epsilon']):g}" if ATTACKS[attack].per_epsilon else ""
    return f"{ATTACKS[attack].label.upper()}{eps} (predicted {ex[f'{attack}_pred'][i]})"


def _three_panels(original, adversarial, title: str, image_kw: dict) -> plt.Figure:
    """Original / adversarial / difference side by side."""
    diff = adversarial - original
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.7))
    lim = max(float(np.abs(diff).max()), 1e-6)
    panels = [(original, "gray", (-1, 1), "original"), (adversarial, "gray", (-1, 1), title),
              (diff, "RdBu_r", (-lim, lim), f"difference (max {lim:.2f})")]
    for ax, (img, cmap, (lo, hi), name) in zip(axes, panels, strict=True):
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, **image_kw)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    return fig


def example(params: dict, fig_spec) -> plt.Figure:
    """Original / adversarial / difference for the first test image the attack fools (Figures 5.2-5.4)."""
    exp, ex, i = _example(params, fig_spec)
    (attack,) = fig_spec.attacks
    fig = _three_panels(ex["x"][i, ..., 0], ex[f"{attack}_x"][i, ..., 0], _attack_title(ex, attack, i), {})
    fig.suptitle(f"{exp.label} model, {_subject(ex, i)}", fontsize=10, y=1.06)
    return fig


def spectrogram(params: dict, fig_spec) -> plt.Figure:
    """The same for a spectrogram of the command four: Mel bins up, time to the right (Figures 5.17, 5.18)."""
    exp, ex, i = _example(params, fig_spec)
    (attack,) = fig_spec.attacks
    fig = _three_panels(ex["x"][i].T, ex[f"{attack}_x"][i].T, _attack_title(ex, attack, i),
                        {"origin": "lower", "aspect": "auto", "interpolation": "nearest"})
    fig.suptitle(f"{exp.label} model, {_subject(ex, i)}", fontsize=10, y=1.06)
    return fig


def waveform(params: dict, fig_spec) -> plt.Figure:
    """A section of the raw waveform of the example, original and attacked (Figures 5.15, 5.16,
    5.21-5.24): `zoom` samples around the loudest one (the thesis plots short sections, where single
    samples are visible)."""
    exp, ex, i = _example(params, fig_spec)
    x = ex["x"][i, :, 0]
    section = min(fig_spec.zoom, len(x))
    centre = int(np.argmax(np.abs(x)))
    lo = max(0, min(len(x) - section, centre - section // 2))
    t = np.arange(lo, lo + section)
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    ax.plot(t, x[t], color="black", lw=1.2, label="original")
    for attack, colour in zip(fig_spec.attacks, ("tab:orange", "tab:blue"), strict=False):
        ax.plot(t, ex[f"{attack}_x"][i, t, 0], color=colour, lw=0.9, alpha=0.85, label=_attack_title(ex, attack, i))
    ax.set_xlabel("sample")
    ax.set_ylabel("amplitude (scaled)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{exp.label} model, {_subject(ex, i)}", fontsize=10)
    return fig


def _accuracy_frame(params: dict, exps: list[Experiment], label) -> pd.DataFrame:
    rows = []
    for exp in exps:
        acc = results.metrics(params, exp)["accuracy"]
        for col in attack_columns(params, exp.dataset):
            rows.append({"model": MODELS[exp.model].label, "setting": label(exp), "attack": col.label,
                         "accuracy (%)": 100 * acc[col.key]})
    return pd.DataFrame(rows)


def bars(params: dict, fig_spec) -> plt.Figure:
    """Accuracy per attack, one bar per model (thesis Figures 5.6, 5.7), one panel per scenario (A.3)."""
    df = _accuracy_frame(params, figure_experiments(params, fig_spec), _scenario_label)
    if len(fig_spec.scenarios) == 1:
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        sns.barplot(df, x="attack", y="accuracy (%)", hue="model", ax=ax, palette="deep")
        ax.set_ylim(0, 100)
        ax.legend(ncol=4, fontsize=8, loc="upper right")
        return fig
    grid = sns.catplot(df, kind="bar", x="attack", y="accuracy (%)", hue="model", col="setting", col_wrap=2,
                       height=2.4, aspect=1.5, palette="deep")
    grid.set(ylim=(0, 100))
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=30, labelsize=7, labelbottom=True)
    grid.figure.subplots_adjust(hspace=0.5)
    return grid.figure


def epochs(params: dict, fig_spec) -> plt.Figure:
    """Test accuracy and training loss per epoch (thesis Figures 5.8, 5.9, 5.19, A.4, A.5): one line per
    model, or per scenario when there are several; several of both give one column per model."""
    rows = []
    for exp in figure_experiments(params, fig_spec):
        for h in results.history(params, exp):
            rows.append({"model": MODELS[exp.model].label, "setting": _scenario_label(exp), "epoch": h["epoch"],
                         "test accuracy (%)": 100 * h["test_accuracy"], "training loss": h["train_loss"]})
    df = pd.DataFrame(rows)
    models = list(dict.fromkeys(df["model"]))
    hue = "setting" if len(fig_spec.scenarios) > 1 else "model"
    if hue == "setting" and len(models) > 1:  # rows: accuracy, loss; one column per model
        fig, axes = plt.subplots(2, len(models), figsize=(7.5, 4.6), squeeze=False)
        columns = [(df[df["model"] == m], axes[0, c], axes[1, c], m) for c, m in enumerate(models)]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0), squeeze=False)
        columns = [(df, axes[0, 0], axes[0, 1], models[0] if hue == "setting" else None)]
    for c, (part, acc_ax, loss_ax, title) in enumerate(columns):
        sns.lineplot(part, x="epoch", y="test accuracy (%)", hue=hue, marker="o", ax=acc_ax, palette="deep",
                     legend=c == 0)
        sns.lineplot(part, x="epoch", y="training loss", hue=hue, marker="o", ax=loss_ax, palette="deep",
                     legend=False)
        if title:
            acc_ax.set_title(title, fontsize=9)
        for ax in (acc_ax, loss_ax):
            ax.xaxis.get_major_locator().set_params(integer=True)
    if len(columns) > 1:
        columns[0][1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def settings(params: dict, fig_spec) -> plt.Figure:
    """Robust training with two (algorithm, K, stepsize) settings side by side (thesis Figures A.1, 5.20)."""
    def label(exp):
        r = defence_spec(params, exp)
        return f"{r.algorithm.upper()}, K={r.K}, step {r.stepsize:g}"

    exps = figure_experiments(params, fig_spec)
    df = _accuracy_frame(params, exps, label)
    n_models = len(set(df["model"]))
    grid = sns.catplot(df, kind="bar", x="attack", y="accuracy (%)", hue="setting", col="model",
                       col_wrap=min(2, n_models), height=2.4 if n_models > 1 else 3.0, aspect=1.5,
                       palette="muted")
    grid.set(ylim=(0, 100))
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=30, labelsize=7, labelbottom=True)
    grid.figure.subplots_adjust(hspace=0.5)
    return grid.figure


def grid(params: dict, fig_spec) -> plt.Figure:
    """The first test image of every class, as the models receive it (thesis Figure 5.10)."""
    data = results.test_inputs(fig_spec.dataset)
    x, y = data["x_test"], data["y_test"]
    classes, first = np.unique(y, return_index=True)
    cols = 9
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, 0.95 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, c, i in zip(axes.flat, classes, first, strict=False):
        ax.imshow((x[i] + 1) / 2, interpolation="nearest")
        ax.set_title(str(c), fontsize=7, pad=2)
    return fig


def timing(params: dict, fig_spec) -> plt.Figure:
    """Robust against plain seconds per epoch, every pair of runs, with the fitted ratio (Figure 5.25)."""
    from . import timing as study

    rows = study.pairs(params)
    df = pd.DataFrame([{"plain (s per epoch)": r["plain"], "robust (s per epoch)": r["robust"],
                        "data": r["dataset"], "model": MODELS[r["model"]].label,
                        "algorithm": r["algorithm"].replace("alg", "Algorithm ")} for r in rows])
    ratio = study.fitted_ratio(rows)
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    sns.scatterplot(df, x="plain (s per epoch)", y="robust (s per epoch)", hue="data", style="model", s=45, ax=ax,
                    palette="deep")
    lo = min(df["plain (s per epoch)"].min(), df["robust (s per epoch)"].min()) / 2
    hi = max(df["plain (s per epoch)"].max(), df["robust (s per epoch)"].max()) * 2
    line = np.array([lo, hi])
    ax.plot(line, line, color="grey", lw=0.8, ls=":", label="equal time")
    ax.plot(line, ratio * line, color="black", lw=1.0, label=f"fit: robust = {ratio:.1f} $\\times$ plain")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def _grid_values(params: dict, dataset: str, attack: str) -> list[float]:
    from ..spec import evaluation_spec

    return list(getattr(evaluation_spec(params, dataset), ATTACKS[attack].grid))


def curve(params: dict, fig_spec) -> plt.Figure:
    """Accuracy against the attack's strength (epsilon, or the fraction p of features removed), one line per
    scenario, the seed's own numbers dashed in grey beside them (seed 003's Figures 5.3-5.5). Further attacks of
    the figure are diagnostics, drawn dotted for the first scenario (the [0, 1]-clamped FGSM of the seed's
    library beside ours)."""
    from .seeds import source_numbers

    attack, *diagnostics = fig_spec.attacks
    grid = _grid_values(params, fig_spec.dataset, attack)
    seed = source_numbers(fig_spec.source) if fig_spec.source else {}
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    palette = sns.color_palette("deep")
    for c, exp in enumerate(figure_experiments(params, fig_spec)):
        acc = results.metrics(params, exp)["accuracy"]
        ax.plot(grid, [100 * acc[ATTACKS[attack].key(v)] for v in grid], marker="o", color=palette[c],
                label=_scenario_label(exp))
        theirs = seed.get(exp.scenario.name)
        if theirs:
            xs = sorted(float(k) for k in theirs)
            ax.plot(xs, [100 * theirs[f"{x:g}"] for x in xs], ls="--", marker=".", color=palette[c], alpha=0.45)
        for d in diagnostics if c == 0 else ():
            ax.plot(grid, [100 * acc[ATTACKS[d].key(v)] for v in grid], ls=":", marker="x", color=palette[c],
                    label=f"{_scenario_label(exp)}, {ATTACKS[d].label}")
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel("fraction $p$ removed" if ATTACKS[attack].grid == "missing_fractions" else "$\\epsilon$")
    ax.set_ylabel(f"accuracy under {ATTACKS[attack].label} (%)")
    ax.legend(fontsize=7, title="solid: this run; dashed: the seed", title_fontsize=7)
    return fig


def confidence(params: dict, fig_spec) -> plt.Figure:
    """Histograms of the clean max-softmax probability, correctly and wrongly classified test images stacked,
    one panel per model (seed 001's Figure 4, seed 003's Figure 5.8); the titles give the means."""
    exps = figure_experiments(params, fig_spec)
    fig, axes = plt.subplots(1, len(exps), figsize=(7.5, 2.8), squeeze=False, sharey=True)
    bins = np.linspace(0, 1, 21)
    for ax, exp in zip(axes[0], exps, strict=True):
        probs = results.examples(exp)["probabilities"]
        m = results.metrics(params, exp)
        correct = unpack(m["correct"]["plain"], m["n_samples"])
        top = probs.max(-1)
        ax.hist([top[correct], top[~correct]], bins=bins, stacked=True, color=["tab:green", "tab:red"],
                label=["correct", "wrong"])
        ax.set_title(f"{_scenario_label(exp)}\nmean {top.mean():.2f} (correct {top[correct].mean():.2f})",
                     fontsize=8)
        ax.set_xlabel("predicted-class probability")
    axes[0, 0].set_ylabel("test images")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def clean(params: dict, fig_spec) -> plt.Figure:
    """Clean test accuracy per scenario, the seed's numbers as grey markers (seed 003's Figure 5.6); the
    dashed line is the first scenario's (the deterministic baseline)."""
    from .seeds import source_numbers

    seed = source_numbers(fig_spec.source) if fig_spec.source else {}
    exps = figure_experiments(params, fig_spec)
    ours = [100 * results.metrics(params, e)["accuracy"]["plain"] for e in exps]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    xs = np.arange(len(exps))
    ax.bar(xs, ours, color=sns.color_palette("deep")[0], label="this run")
    theirs = [(x, 100 * seed[e.scenario.name]["accuracy"]) for x, e in zip(xs, exps, strict=True)
              if e.scenario.name in seed]
    if theirs:
        ax.scatter(*zip(*theirs, strict=True), color="0.45", marker="D", zorder=3, label="the seed")
    ax.axhline(ours[0], ls="--", color="0.3", lw=0.8)
    ax.set_xticks(xs, [_scenario_label(e) for e in exps], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("clean accuracy (%)")
    ax.legend(fontsize=7)
    return fig


def gallery(params: dict, fig_spec) -> plt.Figure:
    """Examples of the figure's attacks on one model, one per class: for each attack a row of adversarial
    images, titled with the prediction (green: still correct, red: fooled), below the originals (seed 001's
    Figures 1 and 3, seed 003's Figures 4.2, 4.3, 4.5)."""
    (exp,) = figure_experiments(params, fig_spec)
    ex = results.examples(exp)
    k = min(len(ex["y"]), 10)
    rows = [("original", ex["x"], ex["pred"], None)] + [
        (_gallery_title(ex, a), ex[f"{a}_x"], ex[f"{a}_pred"], a) for a in fig_spec.attacks]
    fig, axes = plt.subplots(len(rows), k, figsize=(7.5, 0.95 * len(rows) + 0.3), squeeze=False)
    for r, (name, xs, preds, _) in enumerate(rows):
        for i in range(k):
            ax = axes[r, i]
            ax.imshow(xs[i, ..., 0], cmap="gray", vmin=-1, vmax=1)
            ax.set_title(str(preds[i]), fontsize=7, color="tab:green" if preds[i] == ex["y"][i] else "tab:red", pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=7)
    fig.suptitle(f"{exp.label} model; above each image its predicted class, the true classes are "
                 f"{', '.join(map(str, ex['y'][:k]))}", fontsize=8)
    fig.tight_layout()
    return fig


def _gallery_title(ex: dict, attack: str) -> str:
    value = ex.get(f"{attack}_epsilon", ex["epsilon"])
    if not ATTACKS[attack].per_epsilon:
        return ATTACKS[attack].label
    name = "p" if ATTACKS[attack].grid == "missing_fractions" else "$\\epsilon$"
    return f"{ATTACKS[attack].label} {name}={float(value):g}"


def _class_name(dataset: str, y: int) -> str:
    """Fashion-MNIST's class names (the seeds' parts), else the label."""
    if dataset.startswith("fmnist"):
        from ..data.fmnist import CLASS_NAMES

        return CLASS_NAMES[y]
    return str(y)


def heatmap(params: dict, fig_spec) -> plt.Figure:
    """Seed 003's Figure 4.4: for the example image of each of the figure's classes, one row: the image, then per
    conv block whose output is still a map the L2 norm over its channels (evaluation.features)."""
    (exp,) = figure_experiments(params, fig_spec)
    ex = results.examples(exp)
    maps = sorted((k for k in ex if k.startswith("heat_block")), key=lambda k: int(k.removeprefix("heat_block")))
    rows = [int(np.flatnonzero(ex["y"] == c)[0]) for c in fig_spec.classes if c in ex["y"]]
    fig, axes = plt.subplots(len(rows), len(maps) + 1, figsize=(7.5, 1.7 * len(rows) + 0.3), squeeze=False)
    for r, i in enumerate(rows):
        probs = ex["heat_probs"][i]
        axes[r, 0].imshow(ex["x"][i, ..., 0], cmap="gray", vmin=-1, vmax=1)
        axes[r, 0].set_ylabel(f"{_class_name(exp.dataset, int(ex['y'][i]))}\npredicted "
                              f"{_class_name(exp.dataset, int(probs.argmax()))} ({probs.max():.2f})", fontsize=7)
        for c, name in enumerate(maps, 1):
            axes[r, c].imshow(ex[name][i], cmap="magma")
            if r == 0:
                axes[r, c].set_title(f"block {int(name.removeprefix('heat_block')) + 1} "
                                     f"({ex[name].shape[1]}x{ex[name].shape[2]})", fontsize=7)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("input", fontsize=7)
    fig.tight_layout()
    return fig


def embedding(params: dict, fig_spec) -> plt.Figure:
    """Seed 003's Figure 5.9: t-SNE (scikit-learn, exact gradient: no threads, so the same inputs give the same
    map; seeded from params.yaml) of the L2-normalised block features of the attacked test images, one panel
    per model, coloured by class."""
    from sklearn.manifold import TSNE

    exps = figure_experiments(params, fig_spec)
    fig, axes = plt.subplots(1, len(exps), figsize=(7.5, 2.9), squeeze=False)
    palette = sns.color_palette("tab10", 10)
    for ax, exp in zip(axes[0], exps, strict=True):
        ex = results.examples(exp)
        feats = ex["features"].astype(np.float64)
        feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        xy = TSNE(n_components=2, perplexity=30, init="pca", method="exact",
                  random_state=params["seed"]).fit_transform(feats)
        y = ex["features_y"]
        for c in np.unique(y):
            ax.scatter(*xy[y == c].T, s=3, color=palette[int(c) % 10], label=_class_name(exp.dataset, int(c)))
        ax.set_title(f"{_scenario_label(exp)}\n({ex['feature_block']}, {feats.shape[1]} features)", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(fontsize=6, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


KINDS = {"example": example, "waveform": waveform, "spectrogram": spectrogram, "grid": grid, "bars": bars,
         "epochs": epochs, "settings": settings, "timing": timing, "curve": curve, "confidence": confidence,
         "gallery": gallery, "clean": clean, "heatmap": heatmap, "embedding": embedding, **theory.KINDS,
         **depth.KINDS, **curves.KINDS}


def block(spec) -> str:
    """The figure environment main.tex inputs: the caption has one source, the registry."""
    return (f"% Generated by `advrepro figure {spec.id}`; the caption is in src/advrepro/experiments.py.\n"
            f"\\begin{{figure}}[H]\\centering\\includegraphics[width={spec.width:g}\\linewidth]"
            f"{{figures/figure_{spec.id}.pdf}}\n\\caption{{{spec.caption}}}\\label{{fig:{spec.id}}}\\end{{figure}}\n")


def write_figure(params: dict, figure_id: str) -> None:
    spec = get_figure(figure_id)
    sns.set_theme(style="whitegrid", context="paper")
    _save(KINDS[spec.kind](params, spec), figure_id, block(spec))

