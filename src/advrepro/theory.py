"""Seed 002's solvable model of adversarial training (shared/SEEDS.md §2.2): a normalised linear classifier
erf(w.xi - b) on a two-Gaussian mixture, trained online on worst-case (L2, radius epsilon) perturbed examples.
In the limit of large N the order parameters R = w.B and b follow two ODEs in the learning time alpha = mu / N;
this module has their right-hand side in closed form, the test and adversarial errors, the fixed point, and the
simulation of the same online learning at finite N that checks them.

The loss is the quadratic loss 1/2 (erf(x) - tau)^2 (an assumption: the slides never write it; the paper's
Deviations say so), so delta = -dL/dx = (tau - erf(x)) 2/sqrt(pi) exp(-x^2), and its Gaussian averages have closed
forms (Owen's T for the square). numpy and scipy only: the ODE takes milliseconds, the simulation seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

SQRT_PI = math.sqrt(math.pi)


@dataclass(frozen=True)
class MixtureSpec:
    """One training run of the model: the data (prior p of class +1, centre separation rho, variances v1, v2), the
    learning rates and the training epsilon (0: plain training)."""
    p: float
    rho: float = 2.0
    v1: float = 1.0
    v2: float = 1.0
    eta_w: float = 0.04
    eta_b: float = 0.2
    epsilon: float = 0.0

    def classes(self):
        """(s, prior, variance) of the two classes: s = +1 (mean +rho/2 B), s = -1 (mean -rho/2 B)."""
        return ((1, self.p, self.v1), (-1, 1.0 - self.p, self.v2))


# --- Gaussian averages (x ~ N(mu, v)) -------------------------------------------------------------------------

def gauss_averages(mu, v):
    """<e^{-x^2}>, <erf(x) e^{-x^2}>, <e^{-2x^2}>, <erf(x) e^{-2x^2}>, <erf(x)^2 e^{-2x^2}> for x ~ N(mu, v), in
    closed form (SEEDS.md §2.2; the tests compare them with quadrature)."""
    mu, v = np.asarray(mu, float), np.asarray(v, float)
    i1 = np.exp(-mu ** 2 / (1 + 2 * v)) / np.sqrt(1 + 2 * v)
    i2 = i1 * special.erf(mu / np.sqrt((1 + 2 * v) * (1 + 4 * v)))
    j1 = np.exp(-2 * mu ** 2 / (1 + 4 * v)) / np.sqrt(1 + 4 * v)
    j2 = j1 * special.erf(mu / np.sqrt((1 + 4 * v) * (1 + 6 * v)))
    # E[erf(u)^2] = 1 - 8 T(h, a) for u ~ N(m, s2): the tilted Gaussian e^{-2x^2} N(x; mu, v) / j1 is N(m, s2)
    m, s2 = mu / (1 + 4 * v), v / (1 + 4 * v)
    h, a = math.sqrt(2) * m / np.sqrt(1 + 2 * s2), 1 / np.sqrt(1 + 4 * s2)
    j3 = j1 * (1 - 8 * special.owens_t(h, a))
    return i1, i2, j1, j2, j3


def delta_moments(mu, v, tau):
    """<delta> and <delta^2> over x ~ N(mu, v) for the label tau (+-1), delta = (tau - erf x) 2/sqrt(pi) e^{-x^2}."""
    i1, i2, j1, j2, j3 = gauss_averages(mu, v)
    return 2 / SQRT_PI * (tau * i1 - i2), 4 / math.pi * (j1 - 2 * tau * j2 + j3)


def delta(x, tau):
    return (tau - special.erf(x)) * 2 / SQRT_PI * np.exp(-x ** 2)


# --- The ODEs, the errors, the fixed point ----------------------------------------------------------------------

def rates(r: float, b: float, spec: MixtureSpec) -> tuple[float, float]:
    """(dR/dalpha, db/dalpha): averages over the perturbed pre-activation x~ ~ N(s (rho R / 2 - eps) - b, v_s)."""
    dr = db = 0.0
    for s, prior, v in spec.classes():
        mean, mean_sq = delta_moments(s * (spec.rho * r / 2 - spec.epsilon) - b, v, s)
        dr += prior * (s * spec.rho / 2 * (1 - r ** 2) * mean - spec.eta_w / 2 * v * r * mean_sq)
        db += -prior * mean
    return spec.eta_w * float(dr), spec.eta_b * float(db)


def solve(spec: MixtureSpec, alphas: np.ndarray, r0: float = 0.0, b0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """R(alpha), b(alpha) on the grid `alphas` (LSODA, rtol 1e-10), from (r0, b0) at alphas[0]."""
    sol = integrate.solve_ivp(lambda _, y: rates(y[0], y[1], spec), (alphas[0], alphas[-1]), [r0, b0],
                              method="LSODA", t_eval=alphas, rtol=1e-10, atol=1e-12)
    if not sol.success:
        raise RuntimeError(f"theory: the ODE solver failed ({sol.message})")
    return sol.y[0], sol.y[1]


def adversarial_error(r, b, epsilon, spec: MixtureSpec):
    """S(R, b, eps) = p Phi(-(rho R/2 - b - eps)/sqrt v1) + (1-p) Phi(-(rho R/2 + b - eps)/sqrt v2); eps = 0: the
    test error E."""
    r, b, epsilon = np.asarray(r, float), np.asarray(b, float), np.asarray(epsilon, float)
    half = spec.rho * r / 2
    return (spec.p * stats.norm.cdf(-(half - b - epsilon) / math.sqrt(spec.v1))
            + (1 - spec.p) * stats.norm.cdf(-(half + b - epsilon) / math.sqrt(spec.v2)))


def test_error(r, b, spec: MixtureSpec):
    return adversarial_error(r, b, 0.0, spec)


def fixed_point(spec: MixtureSpec, guess: tuple[float, float]) -> tuple[float, float]:
    """The (R, b) where both rates vanish, found by scipy.optimize.root from `guess` (the ODE's end point); from
    a guess too far away, the ODE first runs on from it for alpha = 5000 (it converges there)."""
    for _ in range(2):
        sol = optimize.root(lambda y: rates(y[0], y[1], spec), guess, method="hybr", tol=1e-13)
        if sol.success and abs(sol.x[0]) <= 1:
            return float(sol.x[0]), float(sol.x[1])
        r, b = solve(spec, np.array([0.0, 5000.0]), *guess)
        guess = (float(r[-1]), float(b[-1]))
    raise RuntimeError(f"theory: no fixed point found from {guess} ({sol.message})")


def bayes(spec: MixtureSpec) -> tuple[float, float]:
    """The Bayes-optimal threshold and error for equal variances: w = B, b* = (v / rho) ln((1 - p) / p)."""
    if spec.v1 != spec.v2:
        raise ValueError("theory: the Bayes reference is written for equal variances")
    b = spec.v1 / spec.rho * math.log((1 - spec.p) / spec.p)
    return b, float(test_error(1.0, b, spec))


# --- The simulation at finite N ---------------------------------------------------------------------------------

def draw(spec: MixtureSpec, direction: np.ndarray, n: int, rng: np.random.Generator, batch: tuple = ()):
    """n examples (xi [*batch, n, N], tau [*batch, n]) of the mixture with centres +-rho/2 * direction."""
    tau = np.where(rng.random((*batch, n)) < spec.p, 1.0, -1.0)
    std = np.where(tau > 0, math.sqrt(spec.v1), math.sqrt(spec.v2))
    z = rng.standard_normal((*batch, n, direction.shape[-1]))
    return tau[..., None] * (spec.rho / 2) * direction[..., None, :] + std[..., None] * z, tau


def simulate(spec: MixtureSpec, n_dim: int, alpha_max: float, seeds: int, rng: np.random.Generator,
             every: float = 1.0, chunk: int = 500) -> dict:
    """Online (adversarial) training of `seeds` independent networks at dimension n_dim, vectorised over seeds:
    per example, xi~ = xi - tau eps w, x~ = w.xi~ - b, w <- normalise(w + eta_w / N delta xi~), b <- b - eta_b / N
    delta. Returns alpha [T], R and b [seeds, T] every `every` (alpha 0 included), the teachers B and the final w
    (for the empirical errors). float32 vectors (w is normalised at every step), the examples drawn a chunk at a
    time; ||w|| = 1 gives w.xi~ = w.xi - tau eps, so the step is w (1 - c tau eps) + c xi with c = eta_w delta / N."""
    direction = rng.standard_normal((seeds, n_dim), dtype=np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    w = rng.standard_normal((seeds, n_dim), dtype=np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    b = np.zeros(seeds)
    steps, stride = int(round(alpha_max * n_dim)), int(round(every * n_dim))
    record = [(np.einsum("sd,sd->s", w, direction).astype(float), b.copy())]
    lr_w, lr_b, eps = spec.eta_w / n_dim, spec.eta_b / n_dim, spec.epsilon
    sd = np.float32([math.sqrt(spec.v1), math.sqrt(spec.v2)])
    for start in range(0, steps, chunk):
        n = min(chunk, steps - start)
        tau = np.where(rng.random((n, seeds)) < spec.p, 1.0, -1.0)
        xi = rng.standard_normal((n, seeds, n_dim), dtype=np.float32)
        xi *= sd[(tau < 0).astype(int)][..., None]
        xi += (tau.astype(np.float32) * np.float32(spec.rho / 2))[..., None] * direction
        for t in range(n):
            x = np.einsum("sd,sd->s", w, xi[t]) - tau[t] * eps - b
            d = delta(x, tau[t])
            c = (lr_w * d).astype(np.float32)
            w *= (1 - c * np.float32(eps) * tau[t].astype(np.float32))[:, None]
            w += c[:, None] * xi[t]
            w /= np.sqrt(np.einsum("sd,sd->s", w, w))[:, None]
            b = b - lr_b * d
            if (start + t + 1) % stride == 0:
                record.append((np.einsum("sd,sd->s", w, direction).astype(float), b.copy()))
    r, bs = (np.stack(v, 1) for v in zip(*record, strict=True))
    return {"alpha": np.arange(r.shape[1]) * every, "R": r, "b": bs, "w": w, "B": direction}


def empirical_errors(spec: MixtureSpec, w: np.ndarray, b: np.ndarray, direction: np.ndarray, epsilons,
                     n: int, rng: np.random.Generator) -> np.ndarray:
    """Per network (rows) and epsilon (columns): the fraction of n fresh examples misclassified after the worst-case
    L2 perturbation xi - tau eps w (sign(w.xi~ - b) != tau; eps = 0: the test error)."""
    xi, tau = draw(spec, direction, n, rng, (w.shape[0],))
    x = np.einsum("snd,sd->sn", xi, w) - b[:, None]
    return np.stack([np.mean(np.sign(x - tau * e) != tau, 1) for e in epsilons], 1)


# --- The pipeline's runs (part M2): params.yaml's `theory` section -> results/theory/<run>.json ------------------

TRAININGS = {"plain": False, "at": True}   # run name suffix -> adversarial training


def run_names(section: dict) -> list[str]:
    """s1-plain, s1-at, s2-plain, s2-at: every scenario, plain and adversarially trained."""
    return [f"{s}-{t}" for s in section["scenarios"] for t in TRAININGS]


def run_spec(section: dict, run: str) -> tuple[MixtureSpec, dict]:
    """The MixtureSpec of a run name and its scenario's sizes; an unknown name is a one-line error."""
    scenario, _, training = run.rpartition("-")
    if scenario not in section["scenarios"] or training not in TRAININGS:
        from .errors import UsageError

        raise UsageError(f"unknown theory run {run!r}; known: {', '.join(run_names(section))}")
    sc = section["scenarios"][scenario]
    spec = MixtureSpec(p=sc["p"], rho=section["rho"], v1=section["v1"], v2=section["v2"], eta_w=section["eta_w"],
                       eta_b=section["eta_b"], epsilon=section["epsilon"] if TRAININGS[training] else 0.0)
    return spec, sc


def _point(r: float, b: float, spec: MixtureSpec, epsilon: float) -> dict:
    return {"R": r, "b": b, "E": float(test_error(r, b, spec)), "S": float(adversarial_error(r, b, epsilon, spec))}


def _rounded(x, digits: int = 6):
    return [round(float(v), digits) for v in np.asarray(x).ravel()]


def run(section: dict, run_name: str, seed: int) -> dict:
    """One run of part M2: the simulation (`seeds` networks at N = n_dim up to the scenario's alpha_max), the ODE
    from the simulation's mean R(0) up to ode_alpha_max, both errors along the way (S at the section's epsilon),
    the final robustness curve S(eps) from the ODE and, empirically, on fresh test points, the fixed point and
    the Bayes reference. The random stream: numpy's PCG64 seeded with (seed, crc32(run name))."""
    import zlib

    spec, sc = run_spec(section, run_name)
    rng = np.random.default_rng([seed, zlib.crc32(run_name.encode())])
    eps = section["epsilon"]
    sim = simulate(spec, section["n_dim"], sc["alpha_max"], section["seeds"], rng)
    r0 = float(sim["R"][:, 0].mean())
    alphas = np.arange(0, max(section["ode_alpha_max"], sc["alpha_max"]) + 1, 1.0)
    r_ode, b_ode = solve(spec, alphas, r0=r0, b0=0.0)
    end = int(sc["alpha_max"])
    sim_e, sim_s = test_error(sim["R"], sim["b"], spec), adversarial_error(sim["R"], sim["b"], eps, spec)
    grid = section["robustness_epsilons"]
    empirical = empirical_errors(spec, sim["w"], sim["b"][:, -1], sim["B"], grid, section["test_points"], rng)
    fixed = fixed_point(spec, (float(r_ode[-1]), float(b_ode[-1])))
    b_bayes, e_bayes = bayes(spec)
    return {
        "run": run_name, "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__}, "epsilon_eval": eps,
        "sizes": {"n_dim": section["n_dim"], "seeds": section["seeds"], "alpha_max": sc["alpha_max"],
                  "test_points": section["test_points"]},
        "ode": {"alpha": _rounded(alphas, 3), "R": _rounded(r_ode), "b": _rounded(b_ode),
                "E": _rounded(test_error(r_ode, b_ode, spec)),
                "S": _rounded(adversarial_error(r_ode, b_ode, eps, spec))},
        "simulation": {"alpha": _rounded(sim["alpha"], 3),
                       **{f"{k}_{f}": _rounded(getattr(np, f)(v, 0)) for k, v in
                          (("R", sim["R"]), ("b", sim["b"]), ("E", sim_e), ("S", sim_s)) for f in ("mean", "std")}},
        "robustness": {"epsilons": list(grid),
                       "ode": _rounded(adversarial_error(r_ode[end], b_ode[end], np.asarray(grid), spec)),
                       "empirical_mean": _rounded(empirical.mean(0)), "empirical_std": _rounded(empirical.std(0))},
        "end": {"alpha": end, "ode": _point(float(r_ode[end]), float(b_ode[end]), spec, eps),
                "simulation": {k: round(float(np.mean(v[:, -1])), 6) for k, v in
                               (("R", sim["R"]), ("b", sim["b"]), ("E", sim_e), ("S", sim_s))},
                "simulation_std": {k: round(float(np.std(v[:, -1])), 6) for k, v in
                                   (("R", sim["R"]), ("b", sim["b"]), ("E", sim_e), ("S", sim_s))}},
        "fixed_point": _point(*fixed, spec, eps), "bayes": {"b": b_bayes, "E": e_bayes},
    }


# --- The slides' logistic regression: MNIST 3 against 7, FGSM on a linear model ---------------------------------

def logistic(images: np.ndarray, labels: np.ndarray, section: dict, seed: int, split=None) -> dict:
    """Logistic regression sigma(w.x + b) on two digits (+1: the first, -1: the second, as the slides), images in
    [-1, 1], cross-entropy, full-batch Adam (optax). The attack on a linear model is exact: x - tau eps sign(w),
    clipped to [-1, 1] (FGSM). `split`: (train, test) index arrays; else a seeded stratified split.
    Returns the arrays the report draws and the errors at each epsilon."""
    import jax
    import jax.numpy as jnp
    import optax

    first, second = section["digits"]
    keep = np.flatnonzero((labels == first) | (labels == second))
    x = images[keep].reshape(len(keep), -1).astype(np.float32)
    tau = np.where(labels[keep] == first, 1.0, -1.0).astype(np.float32)
    if split is None:
        rng = np.random.default_rng([seed, 2])
        test = np.concatenate([rng.permutation(np.flatnonzero(tau == t))[:int(round(section["test_fraction"] *
                                                                                   np.sum(tau == t)))]
                               for t in (1.0, -1.0)])
        train = np.setdiff1d(np.arange(len(keep)), test)
    else:
        train, test = split
    xtr, ttr, xte, tte = x[train], tau[train], x[test], tau[test]
    tx = optax.adam(section["lr"])
    weights = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}
    opt = tx.init(weights)

    @jax.jit
    def step(weights, opt):
        loss = lambda p: jnp.mean(jax.nn.softplus(-jnp.asarray(ttr) * (jnp.asarray(xtr) @ p["w"] + p["b"])))  # noqa: E731
        value, grads = jax.value_and_grad(loss)(weights)
        updates, opt = tx.update(grads, opt, weights)
        return optax.apply_updates(weights, updates), opt, value

    losses = []
    for _ in range(section["steps"]):
        weights, opt, value = step(weights, opt)
        losses.append(float(value))
    w, b = np.asarray(weights["w"], np.float64), float(weights["b"])

    def attacked(eps):
        return np.clip(xte - eps * tte[:, None] * np.sign(w)[None], -1, 1)

    errors = [float(np.mean(np.sign(attacked(e) @ w + b) != tte)) for e in section["epsilons"]]
    target = section["target_error"]
    eps_grid = np.asarray(section["epsilons"], float)
    reach = None  # the epsilon where the error first reaches the target, linearly interpolated
    for i in range(1, len(errors)):
        if errors[i - 1] < target <= errors[i]:
            reach = float(eps_grid[i - 1] + (target - errors[i - 1]) / (errors[i] - errors[i - 1])
                          * (eps_grid[i] - eps_grid[i - 1]))
            break
    shown = float(eps_grid[int(np.argmin(np.abs(np.asarray(errors) - target)))])  # the grid's nearest to the target
    examples = [int(np.flatnonzero(tte == t)[0]) for t in (1.0, -1.0)]
    return {
        "summary": {"digits": [first, second], "n_train": int(len(train)), "n_test": int(len(test)),
                    "steps": section["steps"], "final_loss": round(losses[-1], 6),
                    "train_error": round(float(np.mean(np.sign(xtr @ w + b) != ttr)), 6),
                    "epsilons": list(section["epsilons"]), "test_error": [round(e, 6) for e in errors],
                    "target_error": target, "epsilon_at_target": None if reach is None else round(reach, 6),
                    "shown_epsilon": shown},
        "arrays": {"w": w.astype(np.float32), "b": np.float32(b), "tau": tte,
                   "clean_output": (xte @ w + b).astype(np.float32),
                   "attacked_output": (attacked(shown) @ w + b).astype(np.float32),
                   "examples": xte[examples].astype(np.float32),
                   "attacked_examples": attacked(shown)[examples].astype(np.float32)},
    }


def write_run(section: dict, run_name: str, seed: int) -> dict:
    """`run`, written to results/theory/<run>.json (atomically)."""
    from . import paths
    from .io import atomic_paths, write_json

    result = run(section, run_name, seed)
    with atomic_paths(paths.theory(run_name)) as (tmp,):
        write_json(tmp, result)
    return result


def write_logistic(result: dict) -> None:
    """The logistic regression's summary and arrays, both or neither."""
    from . import paths
    from .io import atomic_paths, write_json, write_npz

    with atomic_paths(*paths.LOGISTIC) as (json_tmp, npz_tmp):
        write_json(json_tmp, result["summary"])
        write_npz(npz_tmp, **result["arrays"])
