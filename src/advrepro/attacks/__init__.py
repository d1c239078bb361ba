"""Evaluation attacks: the protocol and the registry.

An attack is an `Attack`: a name, the label its table columns carry, and `make(logits_fn, ev)` ->
a pure, jittable fn(weights, x, y, rng, eps) -> adversarial x, where `ev` is the dataset's
`spec.EvaluationSpec` (params.yaml's evaluation section) and `rng` a PRNG key (every attack receives
one, so that a random start or restart needs no other interface). It alone owns its metric keys and
column labels (`key`, `columns`): "pgd_0.1" and "PGD0.1" at each evaluation epsilon, or one column
("spatial", "Spatial") for an attack without one.

One module per attack (pgd.py, fgsm.py, spatial.py), imported when an attack is made, so that the
report reads the registry without importing JAX. Adding an attack: its module and one line in ATTACKS;
every metrics file, table and figure then has its columns. The order of ATTACKS is the order of the
metrics files' keys and of the table columns. The gradient attacks are a loss, a signed-gradient step and
a projection onto the epsilon-ball intersected with [-1, 1], run in `lax.fori_loop` (after DeepMind's
adversarial_robustness attacks); all are untargeted but ILCM.

The thesis's evaluations run the default attacks (plain, PGD, FGSM, spatial); a section whose `attacks`
names others (the seeds' CW, PGD-L2, ILCM, missing features) runs exactly those. An attack's columns come
from the spec field its `grid` names: `epsilons`, or e.g. `l2_epsilons` for PGD-L2.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry, lazy_function

DATA_KINDS = ("image", "waveform", "spectrogram")


@dataclass(frozen=True)
class Column:
    """One metric of an evaluation: its key in the metrics files, its table label, the attack, epsilon,
    and how prose names it ("PGD 0.1")."""
    key: str
    label: str
    attack: str
    epsilon: float | None
    text: str


def lazy(module: str, attr: str = "make") -> Callable:
    """A function of `advrepro.attacks.<module>`, imported at the first call."""
    return lazy_function(f"{__name__}.{module}", attr)


@dataclass(frozen=True)
class Attack:
    name: str
    label: str
    make: Callable                    # (logits_fn, EvaluationSpec) -> fn(weights, x, y, rng, eps) -> x_adv
    per_epsilon: bool = True          # one column per evaluation epsilon, else one column
    kinds: tuple[str, ...] = DATA_KINDS  # the data kinds it applies to
    examples: bool = True             # its adversarial examples are kept for the figures
    grid: str = "epsilons"            # the EvaluationSpec field whose values are its columns (l2_epsilons, ...)
    default: bool = True              # evaluated where the evaluation section names no attacks (the thesis's)
    in_ball: bool = True              # its inputs stay in the epsilon-ball; False: a diagnostic, never in the
                                      # worst case or the sanity checks

    def key(self, epsilon: float | None = None) -> str:
        """The metric key of this attack at epsilon: "pgd_0.1" (the name alone without epsilon)."""
        return self.name if not self.per_epsilon else f"{self.name}_{epsilon:g}"

    def example_value(self, ev) -> float:
        """The epsilon (or fraction) of its example figures: evaluation.example_epsilon, or its grid's value
        nearest to it where the grid is its own (PGD-L2's radii, the missing fractions)."""
        if self.grid == "epsilons":
            return ev.example_epsilon
        return min(getattr(ev, self.grid), key=lambda v: abs(v - ev.example_epsilon))

    def columns(self, ev) -> list[Column]:
        if not self.per_epsilon:
            return [Column(self.key(), self.label, self.name, None, self.label)]
        # A label ending in a digit gets a space before epsilon ("PGD-L2 1", not "PGD-L21").
        sep = " " if self.label[-1:].isdigit() else ""
        return [Column(self.key(e), f"{self.label}{sep}{e:g}", self.name, e, f"{self.label} {e:g}")
                for e in getattr(ev, self.grid)]


def _clean(logits_fn, ev):
    """No attack: natural accuracy."""
    return lambda weights, x, y, rng, eps: x


ATTACKS: Registry[Attack] = Registry("attack", [
    Attack("plain", "Plain", _clean, per_epsilon=False, examples=False),  # the clean inputs
    Attack("pgd", "PGD", lazy("pgd")),
    Attack("fgsm", "FGSM", lazy("fgsm")),
    Attack("spatial", "Spatial", lazy("spatial"), per_epsilon=False, kinds=("image",)),
    # The seeds' attacks (001, 003): only where an evaluation section names them in `attacks`.
    Attack("cw", "CW", lazy("cw"), per_epsilon=False, default=False),              # L2, minimal perturbation
    Attack("pgd_l2", "PGD-L2", lazy("pgd_l2"), grid="l2_epsilons", default=False),
    Attack("ilcm", "ILCM", lazy("ilcm"), default=False),                           # least-likely class
    Attack("missing", "MF", lazy("missing"), grid="missing_fractions", default=False),  # eps = fraction p
    Attack("fgsm01", "FGSM-clamp", lazy("fgsm", "make_clamped"), default=False, in_ball=False),  # seed 003's bug
])


# The strong evaluation (evaluate.strong_worst_case): per epsilon, each attack runs, in this order, on the
# samples every attack before it (the thesis's FGSM and PGD included) left correctly classified; the
# worst case over all of them is the robust accuracy the claims use. Sizes: params.yaml's
# strong_evaluation. `gradient=False` marks the gradient-free check against gradient masking (run last);
# `probe` the convergence check (PGD with twice the steps), run after the other gradient attacks.
@dataclass(frozen=True)
class StrongAttack:
    name: str
    label: str
    make: Callable                    # as Attack.make
    gradient: bool = True
    probe: bool = False
    stochastic: bool = False          # only for models that draw noise at test time (EOT)


STRONG: Registry[StrongAttack] = Registry("strong attack", [
    StrongAttack("pgd_rs", "PGD-RS", lazy("pgd", "make_restarts")),      # random start, restarts
    StrongAttack("apgd_ce", "APGD-CE", lazy("apgd", "make_ce")),
    StrongAttack("apgd_dlr", "APGD-DLR", lazy("apgd", "make_dlr")),      # targeted; margin for 2 classes
    StrongAttack("pgd_2x", "PGD-RS 2x", lazy("pgd", "make_doubled"), probe=True),  # 2x the steps
    # Models that draw noise at test time: each step's gradient the mean over eot_draws noise draws
    StrongAttack("eot_pgd", "EOT-PGD", lazy("eot"), stochastic=True),
    StrongAttack("square", "Square", lazy("square"), gradient=False),
])
WORST = "worst"   # metric key prefix of the worst case: worst_0.1
BOX = "box"       # metric key of the sanity check at strong_evaluation.box_epsilon


def worst_key(epsilon: float) -> str:
    return f"{WORST}_{epsilon:g}"


def worst_columns(ev) -> list[Column]:
    """The worst-case columns at each evaluation epsilon ("worst_0.1", "Worst0.1", "the worst case at 0.1")."""
    return [Column(worst_key(e), f"Worst{e:g}", WORST, e, f"worst case {e:g}") for e in ev.strong_at]


def chosen(ev, kind: str) -> list[Attack]:
    """The attacks an evaluation spec runs on data of this kind, in ATTACKS' order: those its `attacks`
    names (an unknown name is a one-line error), else the default ones."""
    names = tuple(getattr(ev, "attacks", ()))
    for name in names:
        ATTACKS[name]
    return [a for a in ATTACKS.values() if kind in a.kinds and (a.name in names if names else a.default)]


def epsilon_attacks(kind: str, ev=None) -> list[Attack]:
    """The attacks with an L-infinity epsilon of `evaluation.epsilons` (FGSM, PGD): the thesis's part of the
    worst case. Without `ev` the default ones; with it, those the spec runs (`chosen`)."""
    pool = [a for a in ATTACKS.values() if a.default and kind in a.kinds] if ev is None else chosen(ev, kind)
    return [a for a in pool if a.per_epsilon and a.grid == "epsilons" and a.in_ball]


def columns(ev, kind: str, without: tuple[str, ...] = ()) -> list[Column]:
    """The metric columns of an evaluation spec on data of this kind, in the metrics files' order,
    leaving out the attacks `without` names."""
    return [c for a in chosen(ev, kind) if a.name not in without for c in a.columns(ev)]
