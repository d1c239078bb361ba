"""The one list of experiments, tables and figures.

The Snakefile and the generated dvc.yaml both read this registry, so the two
workflow engines can never disagree about what the thesis needs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

MODEL_LABELS = {"ff": "FF", "gru": "GRU", "lstm": "LSTM", "s4": "S4"}


@dataclass(frozen=True)
class Scenario:
    name: str            # suffix of the experiment id
    label: str           # row label, as the thesis writes it after the model name
    robust_key: str | None   # params key holding epsilon, K, stepsize
    regularization: str  # none | full | reduced


SCENARIOS = {s.name: s for s in (
    Scenario("plain", "", None, "none"),
    Scenario("alg1", "robust", "robust", "none"),
    Scenario("reg", "regul.", None, "full"),
    Scenario("alg1-reg", "robust+reg.", "robust", "full"),
    Scenario("reg-reduced", "regul.", None, "reduced"),
    Scenario("alg1-reg-reduced", "robust+reg.", "robust", "reduced"),
    Scenario("alg2-small-step", "robust", "robust_small_step", "none"),
)}


@dataclass(frozen=True)
class Experiment:
    dataset: str
    model: str
    scenario: Scenario

    @property
    def id(self) -> str:
        return f"{self.dataset}-{self.model}-{self.scenario.name}"

    @property
    def label(self) -> str:
        return f"{MODEL_LABELS[self.model]} {self.scenario.label}".strip()


@dataclass(frozen=True)
class Table:
    id: str              # thesis numbering with underscores: 5_1, A_1
    dataset: str
    scenarios: tuple[str, ...]
    caption: str
    spatial: bool = True  # image datasets add the spatial-attack column


@dataclass(frozen=True)
class Figure:
    id: str
    kind: str            # example | bars | epochs | stepsize
    dataset: str
    scenarios: tuple[str, ...]
    caption: str
    attack: str = ""     # for kind == example: pgd | fgsm | spatial
    model: str = "s4"    # for kind == example: the attacked model


TABLES = (
    Table("5_1", "mnist", ("plain", "alg1", "reg", "alg1-reg"),
          "Accuracy (\\%) of the four scenarios on MNIST, Algorithm 1 (thesis Table 5.1)."),
    Table("5_2", "mnist", ("reg-reduced", "alg1-reg-reduced"),
          "Accuracy (\\%) on MNIST with the reduced set of regularizations "
          "(noise, rotation, dropout), Algorithm 1 (thesis Table 5.2)."),
    Table("A_1", "mnist", ("alg2-small-step",),
          "Accuracy (\\%) on MNIST, Algorithm 2 with more, smaller steps (thesis Table A.1).",
          spatial=False),
)

FIGURES = (
    Figure("5_2", "example", "mnist", ("plain",), "PGD attack on MNIST: original, adversarial, difference "
           "(thesis Figure 5.2).", attack="pgd"),
    Figure("5_3", "example", "mnist", ("plain",), "FGSM attack on MNIST: original, adversarial, difference "
           "(thesis Figure 5.3).", attack="fgsm"),
    Figure("5_4", "example", "mnist", ("plain",), "Spatial attack on MNIST: original, adversarial, difference "
           "(thesis Figure 5.4).", attack="spatial"),
    Figure("5_6", "bars", "mnist", ("plain",), "Accuracies reached by non-robust training on MNIST "
           "(thesis Figure 5.6)."),
    Figure("5_7", "bars", "mnist", ("alg1",), "Accuracies reached by robust training (Algorithm 1) on MNIST "
           "(thesis Figure 5.7)."),
    Figure("5_8", "epochs", "mnist", ("plain",), "Test accuracy per epoch on MNIST, non-robust training "
           "(thesis Figure 5.8)."),
    Figure("5_9", "epochs", "mnist", ("alg1",), "Test accuracy per epoch on MNIST, robust training "
           "(thesis Figure 5.9)."),
    Figure("A_1", "stepsize", "mnist", ("alg1", "alg2-small-step"), "Effect of the number of steps and the "
           "stepsize of the robust training algorithm on MNIST (thesis Figure A.1)."),
)


def models(params: dict, dataset: str) -> list[str]:
    return list(params[dataset]["models"])


def table_experiments(params: dict, table: Table) -> list[Experiment]:
    return [Experiment(table.dataset, m, SCENARIOS[s])
            for m in models(params, table.dataset) for s in table.scenarios]


def figure_experiments(params: dict, figure: Figure) -> list[Experiment]:
    available = models(params, figure.dataset)
    if figure.kind == "example":  # the thesis attacks S4; fall back to the first model if S4 is not run
        available = [figure.model if figure.model in available else available[0]]
    chosen = available
    return [Experiment(figure.dataset, m, SCENARIOS[s]) for m in chosen for s in figure.scenarios]


def figure_inputs(params: dict, figure: Figure) -> list[str]:
    """The result files a figure reads (one list for the Snakefile and dvc.yaml)."""
    from . import paths

    files = {"example": paths.examples, "epochs": paths.history}.get(figure.kind, paths.metrics)
    return [files(e.id) for e in figure_experiments(params, figure)]


def all_experiments(params: dict) -> list[Experiment]:
    """Every experiment a table or figure needs, in a stable order, without repeats."""
    seen: dict[str, Experiment] = {}
    for table in TABLES:
        for exp in table_experiments(params, table):
            seen.setdefault(exp.id, exp)
    for figure in FIGURES:
        for exp in figure_experiments(params, figure):
            seen.setdefault(exp.id, exp)
    return list(seen.values())


def get_experiment(params: dict, exp_id: str) -> Experiment:
    for exp in all_experiments(params):
        if exp.id == exp_id:
            return exp
    known = ", ".join(e.id for e in all_experiments(params))
    raise UsageError(f"unknown experiment {exp_id!r}; known: {known}")


def get_table(table_id: str) -> Table:
    for table in TABLES:
        if table.id == table_id:
            return table
    raise UsageError(f"unknown table {table_id!r}; known: {', '.join(t.id for t in TABLES)}")


def get_figure(figure_id: str) -> Figure:
    for figure in FIGURES:
        if figure.id == figure_id:
            return figure
    raise UsageError(f"unknown figure {figure_id!r}; known: {', '.join(f.id for f in FIGURES)}")


def attack_columns(params: dict, dataset: str, spatial: bool = True) -> list[str]:
    """Metric keys of a table's columns: Plain, PGD at each epsilon, FGSM at each epsilon, Spatial."""
    eps = params[dataset]["evaluation"]["epsilons"]
    cols = ["plain"] + [f"pgd_{e:g}" for e in eps] + [f"fgsm_{e:g}" for e in eps]
    return cols + (["spatial"] if spatial else [])


def column_label(key: str) -> str:
    if key == "plain":
        return "Plain"
    if key == "spatial":
        return "Spatial"
    attack, eps = key.split("_")
    return f"{attack.upper()}{eps}"


def robust_config(params: dict, exp: Experiment) -> dict | None:
    """epsilon, K, stepsize and algorithm of a robust scenario; None for plain training."""
    key = exp.scenario.robust_key
    return None if key is None else dict(params[exp.dataset][key])
