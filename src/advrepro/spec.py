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
    """params.yaml's `model` section of a dataset: the sizes of every model trained on it."""
    layer: int
    hidden: int
    s4_layers: int
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
    key = experiment.scenario.defence_spec
    return ExperimentSpec(
        experiment=experiment,
        seed=params["seed"],
        architecture=_build(ArchitectureSpec, section["model"]),
        train=_build(TrainSpec, section["train"]),
        regularization=_build(RegularizationSpec, section["regularization"]),
        evaluation=evaluation_spec(params, experiment.dataset),
        defence=defence_spec(None if key is None else section[key]),
    )
