"""Seed 002's solvable model (advrepro.theory, part M2): the closed forms against quadrature, the errors against
Monte Carlo, the ODE against shared/SEEDS.md §2.3's reference integration and against a small simulation, the
fixed point against the ODE's long-time limit, and the slides' logistic regression on synthetic digits."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from advrepro import theory
from advrepro.theory import MixtureSpec

# SEEDS.md 2.4: (mu, v, tau) -> <delta>, <delta^2>, closed form = quadrature to 10 digits
DELTA_REFERENCE = [((0.3, 1.0, 1), (0.5770683423, 0.5891300872)), ((-0.7, 0.5, -1), (-0.4284785676, 0.3978275493)),
                   ((1.2, 2.0, 1), (0.3027863360, 0.2961962434)), ((0.0, 1.0, -1), (-0.6514700159, 0.6744443562))]
# SEEDS.md 2.3 (LSODA from R = b = 0): alpha 200 -> (R, b, E, S at eps = 1), and the fixed point (R, b, E, S)
ODE_REFERENCE = {
    (0.5, 0.0): ((0.9870, 0.0, 0.1618, 0.5052), (0.9905, 0.0, 0.1610, 0.5038)),
    (0.5, 1.0): ((0.9896, 0.0, 0.1612, 0.5041), (0.9897, 0.0, 0.1612, 0.5041)),
    (0.7, 0.0): ((0.9826, -0.4109, 0.1423, 0.4426), (0.9906, -0.4070, 0.1407, 0.4403)),
    (0.7, 1.0): ((0.8852, -2.2349, 0.2741, 0.3091), (0.9908, -1.4697, 0.2100, 0.3296)),
}


def _quad(f, mu, v):
    """<f(x)> for x ~ N(mu, v), by adaptive quadrature."""
    pdf = lambda x: math.exp(-(x - mu) ** 2 / (2 * v)) / math.sqrt(2 * math.pi * v)  # noqa: E731
    return integrate.quad(lambda x: f(x) * pdf(x), -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)[0]


@pytest.mark.parametrize(("args", "want"), DELTA_REFERENCE)
def test_delta_moments_closed_form_equal_quadrature(args, want):
    mu, v, tau = args
    mean, mean_sq = theory.delta_moments(mu, v, tau)
    np.testing.assert_allclose([mean, mean_sq], want, atol=1e-10)
    d = lambda x: float(theory.delta(np.float64(x), tau))  # noqa: E731
    np.testing.assert_allclose([_quad(d, mu, v), _quad(lambda x: d(x) ** 2, mu, v)], want, atol=1e-9)


def test_gauss_averages_against_quadrature_over_a_range():
    def e(x):
        return math.exp(-x * x)

    functions = (e, lambda x: special.erf(x) * e(x), lambda x: e(x) ** 2, lambda x: special.erf(x) * e(x) ** 2,
                 lambda x: special.erf(x) ** 2 * e(x) ** 2)
    for mu, v in ((-2.0, 0.1), (0.5, 3.0), (1.7, 0.7)):
        want = [_quad(f, mu, v) for f in functions]
        np.testing.assert_allclose(theory.gauss_averages(mu, v), want, rtol=1e-9, atol=1e-12)


def test_errors_equal_monte_carlo():
    """E and S at fixed (R, b): the formulas against the empirical error of a network with that overlap."""
    spec = MixtureSpec(p=0.7, rho=2.0, v1=1.0, v2=1.5)
    rng = np.random.default_rng(0)
    n_dim, r, b = 50, 0.6, -0.3
    direction = np.eye(n_dim)[0]
    w = r * direction + math.sqrt(1 - r * r) * np.eye(n_dim)[1]
    errors = theory.empirical_errors(spec, w[None], np.array([b]), direction[None], [0.0, 0.5, 1.0], 200_000, rng)[0]
    want = [theory.test_error(r, b, spec), *theory.adversarial_error(r, b, np.array([0.5, 1.0]), spec)]
    np.testing.assert_allclose(errors, want, atol=0.004)   # 200k samples: sd about 0.001
    assert theory.adversarial_error(r, b, 0.0, spec) == theory.test_error(r, b, spec)
    assert np.all(np.diff(theory.adversarial_error(r, b, np.linspace(0, 3, 13), spec)) > 0)


@pytest.mark.parametrize("case", list(ODE_REFERENCE))
def test_ode_reproduces_the_reference_integration(case):
    p, eps = case
    spec = MixtureSpec(p=p, epsilon=eps)
    (at200, fixed) = ODE_REFERENCE[case]
    r, b = theory.solve(spec, np.array([0.0, 200.0]))
    got = (r[-1], b[-1], theory.test_error(r[-1], b[-1], spec), theory.adversarial_error(r[-1], b[-1], 1.0, spec))
    np.testing.assert_allclose(got, at200, atol=1e-4)
    fr, fb = theory.fixed_point(spec, (float(r[-1]), float(b[-1])))
    np.testing.assert_allclose((fr, fb, theory.test_error(fr, fb, spec), theory.adversarial_error(fr, fb, 1.0, spec)),
                               fixed, atol=1e-4)


def test_fixed_point_is_the_odes_long_time_limit():
    spec = MixtureSpec(p=0.7, epsilon=1.0)
    r, b = theory.solve(spec, np.array([0.0, 2000.0]))
    fixed = theory.fixed_point(spec, (0.9, -2.0))
    np.testing.assert_allclose(fixed, (r[-1], b[-1]), atol=1e-4)
    assert max(abs(x) for x in theory.rates(*fixed, spec)) < 1e-10


@pytest.mark.parametrize(("p", "eps"), [(0.5, 1.0), (0.7, 1.0), (0.7, 0.0)])
def test_small_simulation_follows_the_ode(p, eps):
    """SEEDS.md 2.4: N = 200, alpha up to 20, 5 networks; their mean R and b within 0.05 of the ODE started at
    their mean R(0)."""
    spec = MixtureSpec(p=p, epsilon=eps)
    sim = theory.simulate(spec, 200, 20, 5, np.random.default_rng(1))
    r, b = theory.solve(spec, sim["alpha"], r0=float(sim["R"][:, 0].mean()))
    assert sim["R"].shape == (5, 21)
    assert np.max(np.abs(sim["R"].mean(0) - r)) < 0.05
    assert np.max(np.abs(sim["b"].mean(0) - b)) < 0.05
    again = theory.simulate(spec, 200, 20, 5, np.random.default_rng(1))
    assert again["R"].tobytes() == sim["R"].tobytes()   # one seed, one trajectory


def test_run_writes_what_the_report_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    section = dict(rho=2.0, v1=1.0, v2=1.0, eta_w=0.04, eta_b=0.2, epsilon=1.0,
                   scenarios={"s1": {"p": 0.5, "alpha_max": 5}}, ode_alpha_max=20, n_dim=50, seeds=2,
                   test_points=500, robustness_epsilons=[0, 1, 2])
    assert theory.run_names(section) == ["s1-plain", "s1-at"]
    out = theory.write_run(section, "s1-at", seed=0)
    assert (tmp_path / "results/theory/s1-at.json").is_file()
    assert out["spec"]["epsilon"] == 1.0 and len(out["ode"]["alpha"]) == 21 and len(out["simulation"]["alpha"]) == 6
    assert out["end"]["alpha"] == 5 and len(out["robustness"]["empirical_mean"]) == 3
    assert theory.run(section, "s1-at", seed=0) == out and theory.run(section, "s1-at", seed=1) != out
    from advrepro.errors import UsageError

    with pytest.raises(UsageError, match="unknown theory run 's3-at'; known: s1-plain, s1-at"):
        theory.run_spec(section, "s3-at")


def test_logistic_regression_on_synthetic_digits():
    """Two 'digits' that differ in one bright stroke: the linear model separates them, its exact L-infinity attack
    raises the error monotonically, and the target error's epsilon is interpolated on the grid."""
    rng = np.random.default_rng(0)
    labels = np.repeat([3, 7, 1], 200)
    images = rng.uniform(-1, -0.6, (600, 8, 8)).astype(np.float32)
    images[labels == 3, 2:4, :] = 0.8
    images[labels == 7, :, 5:7] = 0.8
    section = dict(digits=[3, 7], steps=150, lr=0.05, test_fraction=0.25,
                   epsilons=[0, 0.1, 0.2, 0.4, 0.8, 1.2], target_error=0.4)
    out = theory.logistic(images, labels, section, seed=0)
    s = out["summary"]
    assert s["n_train"] == 300 and s["n_test"] == 100 and s["train_error"] == 0 and s["test_error"][0] == 0
    assert all(a <= b for a, b in zip(s["test_error"], s["test_error"][1:], strict=False))
    assert s["test_error"][-1] > 0.4
    eps, err = np.asarray(s["epsilons"]), np.asarray(s["test_error"])
    k = int(np.argmax(err >= 0.4))
    assert eps[k - 1] <= s["epsilon_at_target"] <= eps[k]
    assert out["arrays"]["w"].shape == (64,) and out["arrays"]["attacked_examples"].shape == (2, 64)
    assert np.all(np.abs(out["arrays"]["attacked_examples"]) <= 1)
