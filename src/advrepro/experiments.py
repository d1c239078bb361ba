"""The one list of experiments, tables and figures.

The Snakefile and the generated dvc.yaml both read this registry, so the two
workflow engines can never disagree about what the thesis needs.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import attacks as attack_registry
from . import data, spec
from .attacks import Column
from .defences import AUGMENTATIONS, Augmentation, Defence, defence_for
from .errors import UsageError
from .models import MODELS
from .spec import DefenceSpec

# The data sources and the processed datasets they write (data/): re-exported for the workflow files.
SOURCES = data.SOURCES
DATASETS = data.DATASETS


def source_datasets(source: str) -> list[str]:
    """The processed datasets one `prepare <source>` writes."""
    return [d.name for d in SOURCES[source].datasets]


def lookup(params: dict, dotted: str):
    node = params
    for key in dotted.split("."):
        node = node[key]
    return node


def config(params: dict, dataset: str) -> dict:
    """The params section (models, model, train, robust..., evaluation) of a dataset."""
    return lookup(params, DATASETS[dataset].section)


def data_keys(params: dict, source: str) -> list[str]:
    """Dotted params keys that shape a source's processed data (all but the experiment sections)."""
    return [f"{source}.{k}" for k in params[source] if k in ("data", "features", "augment")]


def train_keys(params: dict, dataset: str) -> list[str]:
    """Dotted params keys a training run depends on (dvc.yaml stage params, Snakemake rule params);
    the model list is not one of them: adding a model retrains nothing else."""
    section = DATASETS[dataset].section
    return data_keys(params, DATASETS[dataset].source) + [
        f"{section}.{k}" for k in config(params, dataset) if k not in ("models", "evaluation")]


def evaluation_keys(params: dict, dataset: str) -> list[str]:
    """Dotted params keys an evaluation depends on beyond its training's."""
    return [f"{DATASETS[dataset].section}.evaluation", "strong_evaluation"]


@dataclass(frozen=True)
class Scenario:
    """A (defence, augmentation) pair: how one row of a table was trained."""
    name: str                   # suffix of the experiment id
    label: str                  # row label, as the thesis writes it after the model name
    defence_spec: str | None    # params section with the defence's spec (its `algorithm` names the
                                # defence: alg1, alg2; epsilon, K, stepsize); None: plain training
    augmentation: Augmentation  # the regularization kind


_AUG = AUGMENTATIONS
SCENARIOS = {s.name: s for s in (
    Scenario("plain", "", None, _AUG["none"]),
    Scenario("alg1", "robust", "robust", _AUG["none"]),
    Scenario("reg", "regul.", None, _AUG["full"]),
    Scenario("alg1-reg", "robust+reg.", "robust", _AUG["full"]),
    Scenario("reg-reduced", "regul.", None, _AUG["reduced"]),
    Scenario("alg1-reg-reduced", "robust+reg.", "robust", _AUG["reduced"]),
    Scenario("alg2-small-step", "robust", "robust_small_step", _AUG["none"]),
    # MNIST at the thesis's training epsilon 0.3 (its headline claim); offline a longer ramp, see params.yaml
    Scenario("alg1-eps03", "robust $\\epsilon$=0.3", "robust_eps03", _AUG["none"]),
    # Speech Commands, Tables 5.6, 5.7: Algorithm 2, regularization applied to the spectrogram
    Scenario("alg2", "robust", "robust_alg2", _AUG["none"]),
    Scenario("specaug", "regul.", None, _AUG["spectrogram"]),
    Scenario("alg2-specaug", "robust+reg.", "robust_alg2", _AUG["spectrogram"]),
    # UrbanSound8K, Table 5.10: Algorithm 2 with the waveform regularization of Table 5.9
    Scenario("alg2-reg", "robust+reg.", "robust_alg2", _AUG["full"]),
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
        return f"{MODELS[self.model].label} {self.scenario.label}".strip()


@dataclass(frozen=True)
class Table:
    id: str              # thesis numbering with underscores: 5_1, A_1
    dataset: str
    scenarios: tuple[str, ...]
    caption: str
    without_attacks: tuple[str, ...] = ()  # attacks left out (Table A.1 has no spatial column)
    columns: tuple[str, ...] = ()  # metric keys shown, if not all of the evaluation (Table 5.8 skips FGSM0.2)
    labels: tuple[tuple[str, str], ...] = ()  # (scenario, row label) where the thesis words it differently
    models: tuple[str, ...] = ()   # the models shown; () = all of the profile
    thesis: str = ""               # the thesis table whose numbers it prints in grey; "" = its own id
    thesis_rows: tuple[tuple[str, str], ...] = ()  # (scenario, the thesis's scenario) where they differ

    @property
    def thesis_id(self) -> str:
        return self.thesis or self.id

    def thesis_scenario(self, scenario: str) -> str:
        return dict(self.thesis_rows).get(scenario, scenario)


ALL = "all"  # a figure over every experiment (Figure 5.25)


@dataclass(frozen=True)
class Figure:
    id: str
    kind: str            # example | waveform | spectrogram | grid | bars | epochs | settings | timing
    dataset: str
    scenarios: tuple[str, ...]
    caption: str         # the paper's caption (the figure rule writes it with the figure)
    attacks: tuple[str, ...] = ()  # example kinds: pgd | fgsm | spatial
    # The models shown; () = all of the profile. Example kinds attack one model: the thesis's S4,
    # or the profile's first model if S4 is not run.
    models: tuple[str, ...] = ()
    example_class: int | None = None  # example kinds: the class shown (fine class where the data has one)
    zoom: int = 200  # waveform kind: samples shown around the loudest one
    width: float = 0.85  # in the paper, of the line width


TABLES = (
    Table("5_1", "mnist", ("plain", "alg1", "reg", "alg1-reg"),
          "Accuracy (\\%) of the four scenarios on MNIST, Algorithm 1 (thesis Table 5.1)."),
    Table("5_2", "mnist", ("reg-reduced", "alg1-reg-reduced"),
          "Accuracy (\\%) on MNIST with the reduced set of regularizations "
          "(noise, rotation, dropout), Algorithm 1 (thesis Table 5.2)."),
    Table("A_1", "mnist", ("alg2-small-step",),
          "Accuracy (\\%) on MNIST, Algorithm 2 with more, smaller steps (thesis Table A.1).",
          without_attacks=("spatial",)),
    Table("5_1_eps03", "mnist", ("plain", "alg1-eps03"),
          "Accuracy (\\%) on MNIST, Algorithm 1 trained at the thesis's $\\epsilon = 0.3$ (the plain and "
          "robust rows of thesis Table 5.1).", models=("ff", "s4"), thesis="5_1",
          thesis_rows=(("alg1-eps03", "alg1"),)),
    Table("5_3", "gtsrb", ("plain", "alg1", "reg", "alg1-reg"),
          "Accuracy (\\%) on GTSRB (43 classes), Algorithm 1 (thesis Table 5.3)."),
    Table("5_4", "speech-raw", ("plain", "alg1", "reg"),
          "Accuracy (\\%) on Speech Commands digits, raw waveform, Algorithm 1 (thesis Table 5.4)."),
    Table("5_5", "speech-meldb", ("plain", "alg1", "reg", "alg1-reg"),
          "Accuracy (\\%) on Speech Commands digits, Mel spectrogram + AmplitudeToDB, Algorithm 1, "
          "regularization applied to the waveform (thesis Table 5.5)."),
    Table("5_6", "speech-meldb", ("plain", "alg2", "specaug", "alg2-specaug"),
          "Accuracy (\\%) on Speech Commands digits, Mel spectrogram + AmplitudeToDB, Algorithm 2, "
          "regularization applied to the spectrogram (thesis Table 5.6)."),
    Table("5_7", "speech-mel", ("plain", "alg2", "specaug", "alg2-specaug"),
          "Accuracy (\\%) on Speech Commands digits, Mel spectrogram without AmplitudeToDB, Algorithm 2, "
          "regularization applied to the spectrogram (thesis Table 5.7)."),
    Table("5_8", "urban-raw", ("plain", "alg1"),
          "Accuracy (\\%) on UrbanSound8K, dangerous vs.\\ benign, raw waveform, Algorithm 1 (thesis Table 5.8).",
          columns=("plain", "pgd_0.1", "pgd_0.2", "pgd_0.3", "fgsm_0.1", "fgsm_0.3")),
    Table("5_9", "urban-mel", ("plain", "alg1", "reg", "alg1-reg"),
          "Accuracy (\\%) on UrbanSound8K, dangerous vs.\\ benign, Mel spectrogram, Algorithm 1 "
          "(thesis Table 5.9)."),
    Table("5_10", "urban-mel", ("alg2", "alg2-reg"),
          "Accuracy (\\%) on UrbanSound8K, dangerous vs.\\ benign, Mel spectrogram, Algorithm 2 "
          "(thesis Table 5.10)."),
    Table("A_2", "urban-meldb", ("plain", "alg1", "alg2"),
          "Accuracy (\\%) on UrbanSound8K, dangerous vs.\\ benign, Mel spectrogram + AmplitudeToDB, "
          "Algorithms 1 and 2 (thesis Table A.2).", labels=(("alg1", "Alg.1"), ("alg2", "Alg.2"))),
)

FIGURES = (
    Figure("5_2", "example", "mnist", ("plain",), "PGD attack on MNIST (thesis Figure 5.2).",
           attacks=("pgd",), models=("s4",), width=0.8),
    Figure("5_3", "example", "mnist", ("plain",), "FGSM attack on MNIST (thesis Figure 5.3).",
           attacks=("fgsm",), models=("s4",), width=0.8),
    Figure("5_4", "example", "mnist", ("plain",), "Spatial attack on MNIST (thesis Figure 5.4).",
           attacks=("spatial",), models=("s4",), width=0.8),
    Figure("5_6", "bars", "mnist", ("plain",), "Accuracies reached by non-robust training on MNIST (thesis Figure "
           "5.6)."),
    Figure("5_7", "bars", "mnist", ("alg1",), "Accuracies reached by robust training, Algorithm~1, on MNIST (thesis "
           "Figure 5.7)."),
    Figure("5_8", "epochs", "mnist", ("plain",), "Test accuracy and training loss per epoch on MNIST, non-robust "
           "training (thesis Figure 5.8)."),
    Figure("5_9", "epochs", "mnist", ("alg1",), "Test accuracy and training loss per epoch on MNIST, robust training "
           "(thesis Figure 5.9). The training loss of robust training is Algorithm~1's worst-case loss."),
    Figure("A_1", "settings", "mnist", ("alg1", "alg2-small-step"), "Effect of the number of steps $K$ and the "
           "stepsize of the robust training algorithm on MNIST (thesis Figure A.1)."),
    Figure("5_10", "grid", "gtsrb", (), "One test image of every class, as the models receive it (thesis Figure "
           "5.10).", width=0.9),
    Figure("5_11", "example", "gtsrb", ("plain",), "PGD attack on GTSRB (thesis Figure 5.11).",
           attacks=("pgd",), models=("s4",), width=0.8),
    Figure("5_12", "example", "gtsrb", ("plain",), "FGSM attack on GTSRB (thesis Figure 5.12).",
           attacks=("fgsm",), models=("s4",), width=0.8),
    Figure("5_13", "example", "gtsrb", ("plain",), "Spatial attack on GTSRB (thesis Figure 5.13).",
           attacks=("spatial",), models=("s4",), width=0.8),
    Figure("5_14", "epochs", "gtsrb", ("plain", "alg1"), "Test accuracy and training loss per epoch of the FF model, "
           "plain against robust training (thesis Figure 5.14).", models=("ff",)),
    Figure("A_2", "epochs", "gtsrb", ("plain", "alg1", "reg", "alg1-reg"), "Test accuracy (top) and training loss "
           "(bottom) per epoch on GTSRB, the runs of Table~\\ref{tab:5_3} (thesis Figure A.2).", width=0.95),
    Figure("5_15", "waveform", "speech-raw", ("plain",), "PGD attack on the command \\emph{four}, a section of the "
           "raw waveform (thesis Figure 5.15).", attacks=("pgd",), models=("s4",), example_class=4),
    Figure("5_16", "waveform", "speech-raw", ("plain",), "FGSM and PGD on the same section of the command "
           "\\emph{four} (thesis Figure 5.16).", attacks=("fgsm", "pgd"), models=("s4",), example_class=4),
    Figure("5_17", "spectrogram", "speech-mel", ("plain",), "PGD attack on the Mel spectrogram of the command "
           "\\emph{four}: original, adversarial, difference (thesis Figure 5.17).",
           attacks=("pgd",), models=("s4",), example_class=4, width=0.8),
    Figure("5_18", "spectrogram", "speech-meldb", ("plain",), "PGD attack on the Mel spectrogram + AmplitudeToDB of "
           "the command \\emph{four} (thesis Figure 5.18).",
           attacks=("pgd",), models=("s4",), example_class=4, width=0.8),
    Figure("5_19", "epochs", "speech-raw", ("plain", "alg1", "reg"), "Test accuracy and training loss per epoch of "
           "the LSTM on the raw waveform (thesis Figure 5.19).", models=("lstm",)),
    Figure("5_20", "settings", "speech-meldb", ("alg1", "alg2"), "Algorithm~1 against Algorithm~2, GRU, Mel "
           "spectrogram + AmplitudeToDB (thesis Figure 5.20).", models=("gru",), width=0.6),
    Figure("A_3", "bars", "speech-meldb", ("plain", "alg1", "reg", "alg1-reg"), "Accuracies of Table~\\ref{tab:5_5} "
           "per attack (thesis Figure A.3).", width=0.9),
    Figure("A_4", "epochs", "speech-meldb", ("plain", "alg2", "specaug", "alg2-specaug"), "Test accuracy (top) and "
           "training loss (bottom) per epoch, the runs of Table~\\ref{tab:5_6} (thesis Figure A.4).", width=0.95),
    Figure("A_5", "epochs", "speech-mel", ("plain", "alg2", "specaug", "alg2-specaug"), "Test accuracy (top) and "
           "training loss (bottom) per epoch, the runs of Table~\\ref{tab:5_7} (thesis Figure A.5).", width=0.95),
    Figure("5_21", "waveform", "urban-raw", ("plain",), "PGD ($\\epsilon = 0.3$) on children playing (benign), a "
           "section of the raw waveform (thesis Figure 5.21).",
           attacks=("pgd",), models=("s4",), example_class=2, zoom=800),
    Figure("5_22", "waveform", "urban-raw", ("plain",), "The same attack, a closer section (thesis Figure 5.22).",
           attacks=("pgd",), models=("s4",), example_class=2, zoom=100),
    Figure("5_23", "waveform", "urban-raw", ("plain",), "PGD ($\\epsilon = 0.3$) on a dog barking (dangerous), a "
           "section of the raw waveform (thesis Figure 5.23).",
           attacks=("pgd",), models=("s4",), example_class=3, zoom=800),
    Figure("5_24", "waveform", "urban-raw", ("plain",), "The same attack, a closer section (thesis Figure 5.24).",
           attacks=("pgd",), models=("s4",), example_class=3, zoom=100),
    Figure("A_6", "settings", "urban-mel", ("alg1", "alg2"), "Algorithm~1 against Algorithm~2 on UrbanSound8K, Mel "
           "spectrogram (Tables~\\ref{tab:5_9} and \\ref{tab:5_10}; thesis Figure A.6)."),
    Figure("5_25", "timing", ALL, (), "Seconds per epoch, robust against plain training (thesis Figure 5.25), log "
           "scales.", width=0.7),
)


def models(params: dict, dataset: str) -> list[str]:
    return list(config(params, dataset)["models"])


def chosen_models(params: dict, dataset: str, wanted: tuple[str, ...]) -> list[str]:
    """The models of `wanted` the profile runs on the dataset (all of them if `wanted` is empty; the
    profile's first if it runs none of them)."""
    available = models(params, dataset)
    return ([m for m in wanted if m in available] or available[:1]) if wanted else available


def table_experiments(params: dict, table: Table) -> list[Experiment]:
    return [Experiment(table.dataset, m, SCENARIOS[s])
            for m in chosen_models(params, table.dataset, table.models) for s in table.scenarios]


def figure_experiments(params: dict, figure: Figure) -> list[Experiment]:
    if figure.dataset == ALL:
        return all_experiments(params)
    return [Experiment(figure.dataset, m, SCENARIOS[s]) for m in chosen_models(params, figure.dataset, figure.models)
            for s in figure.scenarios]


def figure_inputs(params: dict, figure: Figure) -> list[str]:
    """The result files a figure reads (one list for the Snakefile and dvc.yaml)."""
    from . import paths

    if figure.kind == "grid":
        return [paths.processed(figure.dataset)]
    files = {"example": paths.examples, "waveform": paths.examples, "spectrogram": paths.examples,
             "epochs": paths.history, "timing": paths.timing}.get(figure.kind, paths.metrics)
    return [files(e.id) for e in figure_experiments(params, figure)]


def all_experiments(params: dict) -> list[Experiment]:
    """Every experiment a table or figure needs, in a stable order, without repeats."""
    seen: dict[str, Experiment] = {}
    for table in TABLES:
        for exp in table_experiments(params, table):
            seen.setdefault(exp.id, exp)
    for figure in FIGURES:
        if figure.dataset != ALL:
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


def attack_columns(params: dict, dataset: str, without: tuple[str, ...] = ()) -> list[Column]:
    """The metric columns of a dataset's evaluation: every registered attack that applies to its kind
    of data (Plain, PGD and FGSM at each epsilon, Spatial for images) but those `without` names."""
    ev = spec.evaluation_spec(params, dataset)
    return attack_registry.columns(ev, DATASETS[dataset].kind, without)


def table_columns(params: dict, table: Table) -> list[Column]:
    """A table's columns: the evaluation's but table.without_attacks, narrowed to table.columns if it
    names some."""
    cols = attack_columns(params, table.dataset, table.without_attacks)
    return [c for c in cols if c.key in table.columns] if table.columns else cols


def defence_spec(params: dict, exp: Experiment) -> DefenceSpec | None:
    """The defence spec of a robust scenario (algorithm, epsilon, K, stepsize, ...); None for plain training."""
    key = exp.scenario.defence_spec
    return None if key is None else spec.defence_spec(config(params, exp.dataset)[key])


def defence(params: dict, exp: Experiment) -> Defence:
    """The defence an experiment trains with: its spec's `algorithm`, or plain training."""
    return defence_for(defence_spec(params, exp))
