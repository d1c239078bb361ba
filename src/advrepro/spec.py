"""The typed experiment spec: one experiment's validated params.yaml sections as frozen dataclasses.

`params.load_params` validates params.yaml (jsonschema, one-line errors) and resolves the profile into a
plain dict; `experiment_spec(params, experiment)` turns the sections one experiment reads into an
`ExperimentSpec`, once, at the entry point. Training, evaluation, the models, the attacks and the defences
take specs, never the dict: `spec` is configuration, `weights` are a model's Flax parameters.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _build(cls, section: Mapping[str, Any], **extra):
    """cls from a validated section (the schema allows no other keys); lists become tuples: specs are frozen."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}, **extra)


@dataclass(frozen=True)
class ArchitectureSpec:
    """params.yaml's `model` section of a dataset: the sizes of every model trained on it (the seed parts'
    CNNs have their own sizes: their sections have none)."""
    layer: int = 0
    hidden: int = 0
    s4_layers: int = 0
    patch: int | None = None             # images: pixels per sequence step along each axis
    conv_channels: int | None = None     # raw waveform: the strided 1-D convolution in front
    conv_kernel: int | None = None
    conv_stride: int | None = None
    frame_norm: tuple[str, ...] = ()     # representations (dataset name suffixes) that get a FrameNorm

    @property
    def conv(self) -> tuple[int, int, int] | None:
        return None if self.conv_kernel is None else (self.conv_channels, self.conv_kernel, self.conv_stride)


@dataclass(frozen=True)
class TrainSpec:
    batch_size: int
    epochs: int
    lr: float
    ssm_lr: float
    weight_decay: float
    schedule: str
    warmup_epochs: float
    grad_clip: float | None


@dataclass(frozen=True)
class RegularizationSpec:
    dropout: float
    noise_std: float | None = None       # images only: on-the-fly augmentation
    max_rotation: float | None = None
    max_scale: float | None = None


@dataclass(frozen=True)
class DefenceSpec:
    """A robust params section (`robust`, `robust_alg2`, ...): its `algorithm` names the defence."""
    algorithm: str
    epsilon: float
    K: int
    stepsize: float
    epsilon_warmup: float
    targets: int | None = None
    # The seeds' training schemes (001, 003)
    smoothing: float = 0.0               # label smoothing of the training loss
    pool: tuple[str, ...] = ()           # `pool`: the attacks a batch may be replaced by (pgd, fgsm, cw, noise)
    p_attack: float = 0.5                # `pool`: the probability that a batch is attacked
    cw_steps: int = 10                   # `pool`: CW's Adam steps in training
    clean_epochs: int = 0                # plain training for this many epochs first (seed 004: 12 clean, 20 AT)


@dataclass(frozen=True)
class StrongSpec:
    """params.yaml's `strong_evaluation`: the sizes of the strong attacks every evaluation runs."""
    pgd_steps: int           # PGD from a random start, step 2.5 epsilon / pgd_steps
    pgd_restarts: int
    apgd_steps: int          # APGD-CE and APGD-DLR
    apgd_targets: int        # APGD-DLR: the likeliest wrong classes attacked, one run each
    square_queries: int      # the gradient-free Square attack
    box_epsilon: float       # the sanity check's epsilon: 2 is the whole [-1, 1] box


@dataclass(frozen=True)
class EvaluationSpec:
    n_samples: int
    batch_size: int
    epsilons: tuple[float, ...]
    pgd_steps: int
    pgd_stepsize: float
    example_epsilon: float
    strong: StrongSpec
    spatial_rotations: tuple[float, ...] = ()
    spatial_translations: tuple[float, ...] = ()
    # The seeds' evaluations (001, 003) name their attacks and set their knobs; the thesis's sections
    # leave them out: () = every attack registered as a default one (plain, PGD, FGSM, spatial).
    attacks: tuple[str, ...] = ()
    missing_fractions: tuple[float, ...] = ()  # missing-features attack: the fractions p removed
    cw_steps: int = 50             # Carlini-Wagner L2: Adam steps per binary-search step
    cw_lr: float = 0.01
    cw_c: float = 1e-4             # initial trade-off constant c
    cw_search_steps: int = 5       # binary search over c
    cw_kappa: float = 0.0          # confidence
    l2_epsilons: tuple[float, ...] = ()  # L2-PGD: the radii (its steps: pgd_steps of l2_stepsize * eps)
    l2_step_factor: float = 0.25
    ilcm_steps: int = 10           # least-likely-class iterative FGSM: steps of ilcm_step_factor * eps
    ilcm_step_factor: float = 0.25
    eot_draws: int = 8             # stochastic models: PGD's gradient is the mean over this many noise draws
    strong_epsilons: tuple[float, ...] = ()  # where the strong worst case is computed; () = every epsilon
    confidence: bool = False       # keep every attacked sample's clean softmax output (the confidence figures)
    features: bool = False         # keep the example images' activation maps and the attacked samples' features

    @property
    def strong_at(self) -> tuple[float, ...]:
        return tuple(sorted(self.strong_epsilons or self.epsilons))


@dataclass(frozen=True)
class VariantSpec:
    """An image model's variant (a scenario's `variant` section): BatchNorm, the activation, test-time noise
    (seeds 001, 003). The defaults are the plain model."""
    batch_norm: bool = False
    activation: str = "relu"      # relu | sign | stochastic_sign | lwta
    noise: str = "none"           # none | gauss | logistic
    noise_mode: str = "add"       # add | mul
    noise_std: float = 0.0
    pni: bool = False
    lwta_units: int = 2
    convs: int = 2                # seed 004's convnet: its depth (3x3 convolutions) and conv width factor
    width_scale: float = 1.0

    @property
    def stochastic(self) -> bool:
        from .models import draws_noise

        return draws_noise(self)


@dataclass(frozen=True)
class ProbeSpec:
    """A section's `probe` (seed 004): after every epoch, PGD of `steps` steps (of 2.5 epsilon / steps) at `epsilon`
    on the first `samples` test images, and the clean accuracy on the whole training set, into the history; at the
    end of each training phase (clean, adversarial) also PGD of `phase_steps` steps (the seed's 200-step attacker)."""
    samples: int
    epsilon: float
    steps: int
    phase_steps: int


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything one experiment's training and evaluation read."""
    experiment: Any                      # experiments.Experiment (dataset, model, scenario)
    seed: int
    architecture: ArchitectureSpec
    train: TrainSpec
    regularization: RegularizationSpec
    evaluation: EvaluationSpec
    defence: DefenceSpec | None          # None: plain training
    variant: VariantSpec = VariantSpec()  # image models: BatchNorm, activation, noise
    probe: ProbeSpec | None = None       # per-epoch attack statistics in the history (seed 004)

    @property
    def id(self) -> str:
        return self.experiment.id

    def training_dict(self) -> dict:
        """What training reads, as plain data (the resume fingerprint): all but the evaluation."""
        out = dataclasses.asdict(self)
        del out["evaluation"]
        return out


def evaluation_spec(params: dict, dataset: str) -> EvaluationSpec:
    """A dataset's evaluation section with the shared strong-evaluation sizes."""
    from .experiments import config

    return _build(EvaluationSpec, config(params, dataset)["evaluation"],
                  strong=_build(StrongSpec, params["strong_evaluation"]))


def defence_spec(section: Mapping[str, Any] | None) -> DefenceSpec | None:
    return None if section is None else _build(DefenceSpec, section)


def experiment_spec(params: dict, experiment) -> ExperimentSpec:
    """The spec of one experiment, from validated and resolved params (`params.load_params`)."""
    from .experiments import config

    section = config(params, experiment.dataset)
    key, variant = experiment.scenario.defence_spec, experiment.scenario.variant
    return ExperimentSpec(
        experiment=experiment,
        seed=(params["seed"] + experiment.scenario.replicate) % 2**32,  # a uint32, as JAX's PRNGKey takes
        architecture=_build(ArchitectureSpec, section.get("model", {})),
        train=_build(TrainSpec, section["train"]),
        regularization=_build(RegularizationSpec, section["regularization"]),
        evaluation=evaluation_spec(params, experiment.dataset),
        defence=defence_spec(None if key is None else section[key]),
        variant=VariantSpec() if variant is None else _build(VariantSpec, section["variants"][variant]),
        probe=_build(ProbeSpec, section["probe"]) if "probe" in section else None,
    )
