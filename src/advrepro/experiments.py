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
    nested = {d.section for d in DATASETS.values()}  # a seed part's section inside this one (mnist.p4) is not read
    return data_keys(params, DATASETS[dataset].source) + [
        f"{section}.{k}" for k in config(params, dataset)
        if k not in ("models", "evaluation") and f"{section}.{k}" not in nested]


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
    variant: str | None = None  # the model variant (a key of the section's `variants`: BatchNorm, noise, LWTA,
                                # PNI); None: the plain model
    replicate: int = 0          # trains and evaluates with params.yaml's seed + replicate (seed 004's 3 seeds)


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

# Seed 003's stochastic ReLU networks: {additive, multiplicative} x {Gaussian, logistic} noise x 3 standard deviations
S3_NOISE = tuple(f"{mode}-{noise}-{std}" for mode in ("add", "mul") for noise in ("gauss", "logistic")
                 for std in ("0.025", "0.05", "0.1"))


def _noise_label(name: str) -> str:
    mode, noise, std = name.split("-")
    return f"{dict(add='add.', mul='mult.')[mode]} {dict(gauss='Gaussian', logistic='logistic')[noise]} {std}"


# Seed 001 (part R1): the rows of its Table 1; the defence sections and variants are fmnist.r1's.
SEED_SCENARIOS = (
    Scenario("pni", "noise injection", None, _AUG["none"], variant="pni"),
    Scenario("smooth", "smoothing", "smooth", _AUG["none"]),
    Scenario("smooth-pgd", "smoothing, PGD", "pool_pgd", _AUG["none"]),
    Scenario("smooth-pgd-fgsm", "smoothing, PGD, FGSM", "pool_pgd_fgsm", _AUG["none"]),
    Scenario("smooth-pgd-fgsm-cw", "smoothing, PGD, FGSM, CW", "pool_all", _AUG["none"]),
    Scenario("smooth-pool-pni", "smoothing, PGD, FGSM, CW + noise injection", "pool_all", _AUG["none"],
             variant="pni"),
    Scenario("lwta-pgd", "stochastic LWTA", "pgd_at", _AUG["none"], variant="lwta"),
    # Seed 003 (part S3): Conv-BatchNorm-activation networks; the variants are fmnist.s3's
    Scenario("det", "deterministic", None, _AUG["none"], variant="bn"),
    Scenario("fgsm", "deterministic + adversarial", "fgsm_mix", _AUG["none"], variant="bn"),
    *(Scenario(name, _noise_label(name), None, _AUG["none"], variant=name) for name in S3_NOISE),
    Scenario("sign", "deterministic binary", None, _AUG["none"], variant="sign"),
    Scenario("stoch-sign", "stochastic binary", None, _AUG["none"], variant="stoch-sign"),
)
# Seed 004 (part P4): each network of the depth sweep (mnist.p4's variants), clean then PGD adversarial training,
# at three seeds (params.yaml's seed + 0, 1, 2)
P4_NETWORKS = (("d1", "1 conv"), ("d2", "2 convs (shallow)"), ("d3", "3 convs (deep)"), ("d4", "4 convs"),
               ("d2-half", "2 convs, width $\\times\\frac{1}{2}$"), ("d2-double", "2 convs, width $\\times 2$"))
P4_REPLICATES = 3
P4_SCENARIOS = tuple(Scenario(f"{net}-s{r}", f"{label}, seed +{r}", "pgd_at", _AUG["dropout"], variant=net,
                              replicate=r) for net, label in P4_NETWORKS for r in range(P4_REPLICATES))
SEED_SCENARIOS += P4_SCENARIOS
SCENARIOS.update({s.name: s for s in SEED_SCENARIOS})


def p4_runs(network: str) -> tuple[str, ...]:
    """The scenarios (one per seed) of a network of part P4."""
    return tuple(f"{network}-s{r}" for r in range(P4_REPLICATES))
R1_ROWS = ("plain", "pni", "smooth", "smooth-pgd", "smooth-pgd-fgsm", "smooth-pgd-fgsm-cw", "smooth-pool-pni",
           "lwta-pgd")
S3_CURVES = ("det", "fgsm", "add-gauss-0.05", "add-logistic-0.05")  # seed 003's Figures 5.3-5.5


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


@dataclass(frozen=True)
class SeedColumn:
    """A column of a seed's table: this run's metric (keys joined by "+" are summed, as seed 001's Table 2
    sums two PGD accuracies), its label, and the seed's column it is printed beside ("" = the seed has none)."""
    keys: str
    label: str
    source: str = ""


@dataclass(frozen=True)
class SeedTable:
    """A table of another seed's part (R1: seed 001, S3: seed 003): this run's accuracy (%) with the seed's
    number in grey. kind "columns": a row per scenario; kind "curves": a row per (scenario, attack) and a column
    per value of the attack's grid, each column's source file named by `source` + the attack."""
    id: str                        # the seed prefix and the seed's own numbering: R1_1, S3_1
    dataset: str
    scenarios: tuple[str, ...]
    columns: tuple[SeedColumn, ...]
    caption: str
    source: str = ""               # the seed's numbers: paper/sources/<source>.tsv
    kind: str = "columns"          # columns | curves | theory, logistic (part M2: seed 002's model, no classifier) |
                                   # plasticity, sweep (part P4: from the histories and metrics, over the seeds)
    source_scale: float = 1.0      # the seed's numbers times this are percent (fractions: 100)
    models: tuple[str, ...] = ()


ALL = "all"  # a figure over every experiment (Figure 5.25)
THEORY = "theory"  # the "dataset" of part M2's tables and figures: seed 002's model (params.yaml `theory`)


@dataclass(frozen=True)
class Figure:
    id: str
    kind: str            # report/figures.KINDS: example | waveform | ... | curve | confidence | heatmap | embedding
    dataset: str
    scenarios: tuple[str, ...]
    caption: str         # the paper's caption (the figure rule writes it with the figure)
    attacks: tuple[str, ...] = ()  # example kinds: pgd | fgsm | spatial
    # The models shown; () = all of the profile. Example kinds attack one model: the thesis's S4,
    # or the profile's first model if S4 is not run.
    models: tuple[str, ...] = ()
    example_class: int | None = None  # example kinds: the class shown (fine class where the data has one)
    classes: tuple[int, ...] = ()  # heatmap kind: the classes whose example images are shown, one row each
    zoom: int = 200  # waveform kind: samples shown around the loudest one
    source: str = ""  # the seed's own numbers the figure draws beside this run's (paper/sources/<source>.tsv)
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
    # Seed 001 (part R1)
    Figure("R1_1", "gallery", "fmnist-r1", ("plain",), "PGD examples on the plainly trained CNN (seed~001's "
           "Figure~1: $\\epsilon = 0.3$ in $[0, 1]$, 3 steps of 0.01).", attacks=("pgd",), width=0.95),
    Figure("R1_3", "gallery", "fmnist-r1", ("lwta-pgd",), "CW, PGD and FGSM examples on the stochastic LWTA "
           "network, correctly (green) and wrongly (red) classified (seed~001's Figure~3).",
           attacks=("cw", "pgd", "fgsm"), width=0.95),
    Figure("R1_4", "confidence", "fmnist-r1", ("plain", "lwta-pgd"), "Predicted-class probability on the clean "
           "test images, correctly and wrongly classified stacked (seed~001's Figure~4).", width=0.9),
    # Seed 003 (part S3)
    Figure("S3_4_2", "gallery", "fmnist-s3", ("det",), "Targeted iterative FGSM (least-likely class) on the "
           "deterministic network (seed~003's Figure~4.2).", attacks=("ilcm",), width=0.95),
    Figure("S3_4_3", "gallery", "fmnist-s3", ("det",), "Untargeted FGSM on the deterministic network (seed~003's "
           "Figure~4.3).", attacks=("fgsm",), width=0.95),
    Figure("S3_4_4", "heatmap", "fmnist-s3", ("det",), "Activation maps of the deterministic network: per conv "
           "block, the $L_2$ norm over channels, for an ankle boot (top) and a bag (bottom); the predicted class "
           "and its probability on the left (seed~003's Figure~4.4).", classes=(9, 8), width=0.95),
    Figure("S3_4_5", "gallery", "fmnist-s3", ("det",), "The missing-features attack (seed~003's Figure~4.5).",
           attacks=("missing",), width=0.95),
    Figure("S3_5_3", "curve", "fmnist-s3", S3_CURVES, "Accuracy under the targeted iterative attack (ILCM) over "
           "$\\epsilon$ (seed~003's Figure~5.3).", attacks=("ilcm",), source="S3/figure_5_3"),
    Figure("S3_5_4", "curve", "fmnist-s3", S3_CURVES, "Accuracy under untargeted FGSM over $\\epsilon$ "
           "(seed~003's Figure~5.4). Dotted: the diagnostic run, our FGSM on the deterministic network followed by "
           "the seed's library's clamp to $[0, 1]$, which leaves the $\\epsilon$-ball.", attacks=("fgsm", "fgsm01"),
           source="S3/figure_5_4"),
    Figure("S3_5_5", "curve", "fmnist-s3", S3_CURVES, "Accuracy under the missing-features attack over the "
           "fraction removed (seed~003's Figure~5.5).", attacks=("missing",), source="S3/figure_5_5"),
    Figure("S3_5_6", "clean", "fmnist-s3", ("det", "fgsm") + S3_NOISE, "Clean test accuracy of the deterministic, "
           "the FGSM-trained and the twelve stochastic ReLU networks (seed~003's Figure~5.6).",
           source="S3/figure_5_6"),
    Figure("S3_5_7", "epochs", "fmnist-s3", ("sign", "stoch-sign"), "Learning curves of the deterministic and the "
           "stochastic binary networks (seed~003's Figure~5.7).", width=0.95),
    Figure("S3_5_8", "confidence", "fmnist-s3", ("det", "fgsm", "add-gauss-0.1"), "Confidence on the clean test "
           "images (seed~003's Figure~5.8).", width=0.95),
    # Seed 002 (part M2)
    Figure("M2_1", "mixture", THEORY, (), "The data of seed~002's model in $N$ dimensions (the slides' picture: "
           "$\\rho = 6$, $v = 1$): the projection on the cluster direction $B$ against a random orthogonal direction, "
           "coloured by the label, and the histogram of $B \\cdot \\xi$.", width=0.9),
    Figure("M2_2", "dynamics", THEORY, ("s1",), "Scenario 1 ($p = 0.5$): the order parameters $R$ and $b$, the test "
           "error $E$ and the adversarial error $S$ ($\\epsilon = 1$) over the learning time $\\alpha$, plain and "
           "adversarial training; lines: the ODE, markers: the simulation at $N = 1000$ (mean $\\pm$ sd).",
           width=0.95),
    Figure("M2_3", "robustness", THEORY, ("s1",), "Scenario 1: the robustness curve $S(\\epsilon)$ at the end of "
           "training, plain against adversarial training; lines: the ODE's $(R, b)$, markers: the simulated "
           "networks' empirical error on fresh test points.", width=0.7),
    Figure("M2_4", "dynamics", THEORY, ("s2",), "Scenario 2 ($p = 0.7$), as Figure~\\ref{fig:M2_2}; the ODE runs on "
           "to $\\alpha = 1000$ (the simulation stops earlier).", width=0.95),
    Figure("M2_5", "robustness", THEORY, ("s2",), "Scenario 2: the robustness curve $S(\\epsilon)$ at the end of "
           "training.", width=0.7),
    Figure("M2_6", "logistic_output", THEORY, (), "The logistic regression's output $w \\cdot x + b$ on the "
           "unperturbed and the perturbed test images (the slides' two panels), at the $\\epsilon$ of the grid "
           "whose error is nearest to the slides' 40\\,\\%.", width=0.9),
    Figure("M2_7", "logistic_weights", THEORY, (), "The weights $w$, their signs (the perturbation's pattern), and a "
           "perturbed three and seven (after Goodfellow et al.).", width=0.95),
    # Seed 004 (part P4)
    Figure("P4_5_2", "plasticity", "mnist-p4", p4_runs("d2") + p4_runs("d3"), "The shallow (orange) and the deep "
           "(blue) network over the clean and the adversarial training epochs (seed~004's Figure~5.2): top, the "
           "training statistics (accuracy on the batches trained on, and on the clean training set); middle, the "
           "statistics under attack (test accuracy under PGD and the adversary's success rate, first test images); "
           "bottom, clean and PGD test accuracy together. Lines: mean over three seeds, bands: their range.",
           width=0.95),
    Figure("S3_5_9", "embedding", "fmnist-s3", ("det", "fgsm", "add-logistic-0.025"), "t-SNE of the block "
           "features (the first block with one vector per image) of the attacked test images, coloured by class, "
           "for the deterministic, the FGSM-trained and the additive-logistic ($\\sigma = 0.025$) networks "
           "(seed~003's Figure~5.9).", width=0.95),
)



# Part M2's Figure 8 (seed 002's robustness curves, Göpfert et al.): one per dataset, every model trained on it
# (report/curves.py: from the per-sample results of the evaluations, no attack run again)
CURVE = "robustness_curve"
DATASET_PARTS = {"fmnist-r1": "R1", "fmnist-s3": "S3", "mnist-p4": "P4"}  # datasets of a seed part (else: thesis)
FIGURES += tuple(
    Figure(f"M2_8_{d.name.replace('-', '_')}", CURVE, d.name, (), f"Robustness curves on {d.label} "
           f"(\\texttt{{{d.name}}}): the per-sample worst-case accuracy of every model trained on it against "
           "$\\epsilon$, from 0 over the evaluation's grid (the strong evaluation where it ran); dotted, to the "
           "sanity check's whole $[-1, 1]$ box, where nothing was measured in between. Bands: the range over a "
           "network's seeds.", width=0.95)
    for d in DATASETS.values())

SEED_TABLES = (
    SeedTable("R1_1", "fmnist-r1", R1_ROWS,
              (SeedColumn("plain", "Natural", "plain"), SeedColumn("pgd_0.6", "PGD", "pgd"),
               SeedColumn("fgsm_0.6", "FGSM", "fgsm"), SeedColumn("cw", "CW", "cw"),
               SeedColumn("worst_0.0627", "Worst 8/255")),
              "Accuracy (\\%) of seed~001's training schemes (its Table~1) on Fashion-MNIST.", source="R1/table_1"),
    SeedTable("R1_2", "fmnist-r1", ("lwta-pgd",),
              (SeedColumn("plain", "Natural", "plain"), SeedColumn("pgd_0.6+pgd_l2_1", "PGD $L_\\infty$ + $L_2$",
                                                                   "pgd_aggregate"),
               SeedColumn("pgd_0.6", "PGD $L_\\infty$"), SeedColumn("pgd_l2_1", "PGD $L_2$"),
               SeedColumn("fgsm_0.6", "FGSM", "fgsm"), SeedColumn("cw", "CW", "cw")),
              "Accuracy (\\%) of the stochastic LWTA network (seed~001's Table~2), with the two PGD accuracies "
              "the seed summed into one number shown apart.", source="R1/table_2"),
    SeedTable("S3_1", "fmnist-s3", S3_CURVES,
              (SeedColumn("ilcm", "ILCM", "figure_5_3"), SeedColumn("fgsm", "FGSM", "figure_5_4"),
               SeedColumn("missing", "MF", "figure_5_5")),
              "Accuracy (\\%) under the attacks of seed~003's Figures~5.3--5.5 over the attack strength "
              "($\\epsilon$, or the fraction $p$ of features removed).", source="S3", kind="curves",
              source_scale=100.0),
    SeedTable("S3_2", "fmnist-s3", ("det", "fgsm") + S3_NOISE,
              (SeedColumn("plain", "Clean", "accuracy"), SeedColumn("worst_0.1", "Worst 0.1")),
              "Clean accuracy (\\%) of seed~003's models (its Figure~5.6) and the strong worst case at "
              "$\\epsilon = 0.1$ (expectation over noise draws for the stochastic ones).", source="S3/figure_5_6",
              source_scale=100.0),
    # Seed 002 (part M2): its slides print no numbers; the reference values are the model's own (SEEDS.md 2.3)
    SeedTable("M2_1", THEORY, ("s1", "s2"), (), "Seed~002's model at the end of the simulated training "
              "($\\alpha_{\\max}$) and at the fixed point: the order parameters $R$ and $b$, the test error $E$ and "
              "the adversarial error $S$ at the training $\\epsilon$; ODE against the simulation (mean $\\pm$ sd "
              "over the networks), with the Bayes-optimal reference.", kind="theory"),
    SeedTable("M2_2", THEORY, (), (), "The slides' logistic regression (MNIST 3 against 7): test error (\\%) under "
              "the exact worst-case $L_\\infty$ perturbation of a linear model (FGSM), $\\epsilon$ in $[-1, 1]$ and in "
              "$[0, 1]$ units.", kind="logistic"),
    # Seed 004 (part P4): the networks before and after adversarial training, mean and sd over three seeds
    SeedTable("P4_5_1", "mnist-p4", p4_runs("d2") + p4_runs("d3"), (), "Seed~004's shallow and deep networks "
              "before and after PGD adversarial training (its Table~5.1), accuracy (\\%), mean $\\pm$ sd over three "
              "seeds; the seed's number in grey.", source="P4/table_5_1", kind="plasticity"),
    SeedTable("P4_2", "mnist-p4", tuple(s.name for s in P4_SCENARIOS), (), "Depth and width against robustness "
              "(seed~004's Hypothesis~1, beyond its two networks): clean test accuracy (\\%) before and after PGD "
              "adversarial training, the strong worst case at the training $\\epsilon$, the adversary's success "
              "rate, mean $\\pm$ sd over three seeds.", kind="sweep"),
)


SEED_PARTS = ("R1", "M2", "S3", "P4")  # the other seeds' parts: seed 001 (R1), 002 (M2), 003 (S3), 004 (P4)


def part_of(item) -> str:
    """The part a table or figure belongs to: its id's seed prefix ("R1_1" -> "R1"), else "thesis"."""
    prefix = item.id.split("_", 1)[0]
    return prefix if prefix in SEED_PARTS else "thesis"


def active(params: dict, items) -> tuple:
    """The tables or figures of the parts params.yaml's `seed_parts` runs (the thesis's always); a robustness curve
    only where the part of its dataset runs too."""
    parts = {"thesis", *params.get("seed_parts", SEED_PARTS)}
    return tuple(i for i in items if part_of(i) in parts
                 and (getattr(i, "kind", "") != CURVE or DATASET_PARTS.get(i.dataset, "thesis") in parts))


def models(params: dict, dataset: str) -> list[str]:
    return list(config(params, dataset)["models"])


def chosen_models(params: dict, dataset: str, wanted: tuple[str, ...]) -> list[str]:
    """The models of `wanted` the profile runs on the dataset (all of them if `wanted` is empty; the
    profile's first if it runs none of them)."""
    available = models(params, dataset)
    return ([m for m in wanted if m in available] or available[:1]) if wanted else available


def theory_runs(params: dict, scenarios: tuple[str, ...] = ()) -> list[str]:
    """Part M2's runs (s1-plain, s1-at, ...), of the given scenarios or all; none when M2 is not run."""
    if "M2" not in params.get("seed_parts", SEED_PARTS):
        return []
    from .theory import run_names

    return [r for r in run_names(params["theory"]) if not scenarios or r.rsplit("-", 1)[0] in scenarios]


def theory_inputs(params: dict, item) -> list[str]:
    """The result files of part M2 a table or figure reads: the runs of its scenarios, or the logistic
    regression's files; the data illustration (Figure M2.1) draws its own points and reads none."""
    from . import paths

    if item.kind in ("logistic", "logistic_output", "logistic_weights"):
        return list(paths.LOGISTIC)
    if item.kind == "mixture":
        return []
    return [paths.theory(r) for r in theory_runs(params, item.scenarios)]


def table_experiments(params: dict, table: Table | SeedTable) -> list[Experiment]:
    if table.dataset == THEORY:
        return []
    return [Experiment(table.dataset, m, SCENARIOS[s])
            for m in chosen_models(params, table.dataset, table.models) for s in table.scenarios]


def figure_experiments(params: dict, figure: Figure) -> list[Experiment]:
    if figure.dataset == ALL:
        return all_experiments(params)
    if figure.kind == CURVE:
        return [e for e in all_experiments(params) if e.dataset == figure.dataset]
    if figure.dataset == THEORY:
        return []
    return [Experiment(figure.dataset, m, SCENARIOS[s]) for m in chosen_models(params, figure.dataset, figure.models)
            for s in figure.scenarios]


def figure_inputs(params: dict, figure: Figure) -> list[str]:
    """The result files a figure reads (one list for the Snakefile and dvc.yaml)."""
    from . import paths

    if figure.kind == "grid":
        return [paths.processed(figure.dataset)]
    if figure.dataset == THEORY:
        return theory_inputs(params, figure)
    files = {"example": paths.examples, "waveform": paths.examples, "spectrogram": paths.examples,
             "epochs": paths.history, "plasticity": paths.history, "timing": paths.timing}.get(figure.kind,
                                                                                             paths.metrics)
    return [files(e.id) for e in figure_experiments(params, figure)]


def all_experiments(params: dict) -> list[Experiment]:
    """Every experiment a table or figure needs, in a stable order, without repeats."""
    seen: dict[str, Experiment] = {}
    for table in TABLES + active(params, SEED_TABLES):
        for exp in table_experiments(params, table):
            seen.setdefault(exp.id, exp)
    for figure in active(params, FIGURES):
        if figure.dataset != ALL and figure.kind != CURVE:  # those two draw the experiments of the others
            for exp in figure_experiments(params, figure):
                seen.setdefault(exp.id, exp)
    return list(seen.values())


def get_experiment(params: dict, exp_id: str) -> Experiment:
    for exp in all_experiments(params):
        if exp.id == exp_id:
            return exp
    known = ", ".join(e.id for e in all_experiments(params))
    raise UsageError(f"unknown experiment {exp_id!r}; known: {known}")


def seed_table_inputs(params: dict, table: SeedTable) -> list[str]:
    """The result files a seed table reads: its experiments' metrics, or part M2's result files."""
    from . import paths

    if table.dataset == THEORY:
        return theory_inputs(params, table)
    exps = table_experiments(params, table)
    histories = [paths.history(e.id) for e in exps] if table.kind in HISTORY_TABLES else []
    return [paths.metrics(e.id) for e in exps] + histories


HISTORY_TABLES = ("plasticity", "sweep")  # seed table kinds that read the training histories too (part P4)


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
