"""Theory against simulation for one run: rate distributions through the counting window, weights per edge.

The simulated rates are spike counts over the window divided by its length T; the prediction is passed through the
same window (:mod:`torchsnn.analysis.counts`: renewal counts with each predicted neuron's ISI CV) before the
distributions are compared (KS, Wasserstein, relative errors of mean and std, :func:`compare_samples`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from torchsnn.analysis.counts import CV_RANGE, renewal_counts, theory_rates_and_cv
from torchsnn.analysis.metrics import compare_samples
from torchsnn.meanfield.distributions import Distribution

if TYPE_CHECKING:
    from torchsnn.pipeline import Theory
    from torchsnn.simulation import SimulationResult

log = logging.getLogger("torchsnn")


def run_comparison(
    cfg: dict[str, Any],
    summary: dict[str, Any],
    sim: SimulationResult,
    theory: Theory,
    r_p: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per population: KS, Wasserstein, relative mean/std errors of simulated rates against the prediction passed
    through the same counting window as the measurement (renewal counts with each predicted neuron's ISI CV,
    :mod:`torchsnn.analysis.counts`); the same against Poisson counts (``*_poisson``) and the raw prediction
    (``*_raw``), and a ``note`` on what the distance means. Plastic projections: the same for |w| per edge.
    ``r_p``: the trace rate of each replica of a plastic run (replicas that differ are also compared one by one).
    Returns the noise-matched predicted rates."""
    window_s = (sim.duration_ms - sim.transient_ms) * 1e-3
    rng = np.random.default_rng(int(cfg["seed"]) + 1)
    counting = counting_models(cfg, theory, rng)
    comparison, matched = {}, {}
    for name, d in theory.rates.items():
        simulated = sim.rates_hz(name).numpy().ravel()
        nu, cv = counting[name]
        matched[name] = renewal_counts(nu, cv if cv is not None else np.ones_like(nu), window_s, rng) / window_s
        metrics = compare_samples(simulated, matched[name], d.mean, counted_std(d, nu, cv, window_s))
        poisson = compare_samples(
            simulated, d.with_counting_noise(window_s, rng), d.mean, counted_std(d, nu, None, window_s)
        )
        raw = compare_samples(simulated, d.samples, d.mean, d.std)
        comparison[name] = {
            **metrics,
            **{f"{k}_poisson": poisson[k] for k in ("ks", "std_rel_error")},
            **{f"{k}_raw": v for k, v in raw.items()},
            "counting_noise": "renewal (gamma ISIs, CV from theory)" if cv is not None else "poisson",
            "window_s": window_s,
        }
        cv_sim = summary["simulation"][name].get("cv_isi_mean")
        if cv is not None and cv_sim is not None and np.isfinite(cv_sim):
            summary["theory"][name]["cv_isi_mean"] = float(cv.mean())
            same = np.full_like(nu, cv_sim)  # the count model with the simulated ISI CV: is the rest the CV?
            counts = renewal_counts(nu, same, window_s, rng) / window_s
            alt = compare_samples(simulated, counts, d.mean, counted_std(d, nu, same, window_s))
            comparison[name].update({f"{k}_with_simulated_cv": alt[k] for k in ("ks", "std_rel_error")})
        comparison[name]["note"] = comparison_note(summary["simulation"][name], d, nu, cv, window_s, comparison[name])
        log.info(
            "compare %s: KS %.3f, W1 %.3f Hz, mean error %+.1f%%, std error %+.1f%%",
            name,
            metrics["ks"],
            metrics["wasserstein_hz"],
            100 * metrics["mean_rel_error"],
            100 * metrics["std_rel_error"],
        )
    summary["comparison"] = comparison
    if r_p is not None and sim.batch > 1 and np.any(r_p != r_p[0]):
        summary["comparison_by_replica"] = compare_replicas(sim, theory, counting, r_p, window_s, rng)
        summary["comparison_note"] = "replicas differ in r_p: comparison pools them; see comparison_by_replica"
    if theory.weights and "weights" in sim.extra:
        summary["comparison_weights"] = {}
        for name, d in theory.weights.items():
            simulated = sim.extra["weights"]["final_weights_mv"][name].numpy().ravel()
            metrics = compare_samples(simulated, d.samples, unit="mv")
            summary["comparison_weights"][name] = metrics
            log.info(
                "compare %s weights: KS %.3f, W1 %.4f mV, mean error %+.1f%%",
                name,
                metrics["ks"],
                metrics["wasserstein_mv"],
                100 * metrics["mean_rel_error"],
            )
    return matched


def counting_models(
    cfg: dict[str, Any], theory: Theory, rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per population: Monte Carlo neurons' predicted rates and ISI CVs (None: not a LIF transfer, Poisson); at most
    50,000 (KS resolution ~0.005; each costs a rate evaluation at its own mu and sigma, ~4 s per 50,000 here)."""
    n = min(int((cfg.get("meanfield") or {}).get("samples", 200_000)), 50_000)
    return {name: theory_rates_and_cv(theory.model, theory.result.x, name, n, rng) for name in theory.rates}


def counted_std(d: Distribution, nu: np.ndarray, cv: np.ndarray | None, window_s: float) -> float:
    """Predicted std of measured rates: sqrt(Var nu + E[CV^2 nu] / T), Var nu from the quadrature."""
    fano = 1.0 if cv is None else np.clip(cv, *CV_RANGE) ** 2
    return float(np.sqrt(d.std**2 + np.mean(fano * nu) / window_s))


def comparison_note(
    simulated: dict[str, Any],
    d: Distribution,
    nu: np.ndarray,
    cv: np.ndarray | None,
    window_s: float,
    metrics: dict[str, float],
) -> str:
    """A sentence saying what the distance between the distributions means for this population."""
    total = counted_std(d, nu, cv, window_s) ** 2
    counting = 1.0 - d.std**2 / total if total > 0 else 0.0
    parts = [
        f"{100 * counting:.1f} % of the predicted variance of measured rates is counting noise of the "
        f"{window_s:g} s window"
    ]
    cv_sim = simulated.get("cv_isi_mean")
    if counting < 0.5:
        parts.append("the spread of measured rates is mostly the predicted heterogeneity of the rates")
    elif cv is not None and cv_sim is not None and np.isfinite(cv_sim):
        cv_th = float(cv.mean())
        if abs(cv_sim / cv_th - 1.0) > 0.15:
            how = "more regular" if cv_sim < cv_th else "more irregular"
            parts.append(
                f"the simulated spike trains are {how} (ISI CV {cv_sim:.2f}) than the theory's neurons under "
                f"stationary white noise (CV {cv_th:.2f}), so the count spread, and with it the std and KS, differ "
                f"(std error {100 * metrics['std_rel_error']:+.0f} %, KS {metrics['ks']:.2f}; with the simulated CV "
                f"in the count model: std error {100 * metrics['std_rel_error_with_simulated_cv']:+.0f} %, KS "
                f"{metrics['ks_with_simulated_cv']:.2f}); the mean rate is the test of the theory here "
                f"(error {100 * metrics['mean_rel_error']:+.1f} %)"
            )
    return "; ".join(parts)


def compare_replicas(
    sim: SimulationResult,
    theory: Theory,
    counting: dict[str, tuple[np.ndarray, np.ndarray | None]],
    r_p: np.ndarray,
    window_s: float,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Replicas that differ in r_p probe several alphas in one run: the comparison of each replica alone."""
    rows = []
    for b, rate in enumerate(r_p):
        row: dict[str, Any] = {"replica": b, "r_p_hz": float(rate)}
        for name, d in theory.rates.items():
            simulated = sim.rates_hz(name)[b].numpy()
            row[f"alpha_mean_{name}"] = float(simulated.mean() / rate)
            nu, cv = counting[name]
            counts = renewal_counts(nu, cv if cv is not None else np.ones_like(nu), window_s, rng)
            row[name] = compare_samples(simulated, counts / window_s, d.mean, counted_std(d, nu, cv, window_s))
        for name, d in theory.weights.items():
            simulated = sim.extra["weights"]["final_weights_mv"][name][b].numpy()
            row[f"weights_{name}"] = compare_samples(simulated, d.samples, unit="mv")
        rows.append(row)
    return rows
