"""What a run writes for people to read: its figures, ``report.md`` and the TensorBoard event file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from torchsnn.analysis.figures import activity_overview, distribution_panels, weight_series_figure
from torchsnn.analysis.report import write_report

if TYPE_CHECKING:
    from torchsnn.monitors.tensorboard import TensorBoardLogger
    from torchsnn.pipeline import Theory
    from torchsnn.simulation import SimulationResult


def write_run_report(run_dir: Path, summary: dict[str, Any]) -> Path:
    """report.md: the run's numbers as tables, and its figures."""
    sections: list[tuple[str, Any]] = [("Run", [summary["run"]])]
    for section in ("simulation", "theory", "comparison"):
        if section in summary:
            rows = [
                {"population": p, **{k: x for k, x in v.items() if k != "note"}} for p, v in summary[section].items()
            ]
            sections.append((section.capitalize(), rows))
    for section in ("simulation_weights", "theory_weights", "comparison_weights"):
        if section in summary:
            sections.append(
                (section.replace("_", " ").capitalize(), [{"projection": p, **v} for p, v in summary[section].items()])
            )
    notes = [f"- {p}: {v['note']}" for p, v in (summary.get("comparison") or {}).items() if v.get("note")]
    if notes:
        sections.append(("What the comparison means", "\n".join(notes)))
    if "theory_solver" in summary:
        solver = summary["theory_solver"]
        if solver.get("stability"):
            sections.append(("Stability of the predicted state", solver["stability"]))
        sections.append(("Mean-field solve", [{k: v for k, v in solver.items() if k != "stability"}]))
    for key in ("convergence", "aborted", "interrupted"):
        if key in summary:
            sections.append((key.capitalize(), [summary[key]]))
    sections += [(png.stem, png) for png in sorted(run_dir.glob("*.png"))]
    return write_report(run_dir / "report.md", "torchsnn run", sections)


def stability_note(eigenvalues: list[list[float]], stable: bool) -> str:
    """What ``stable`` and ``leading_eigenvalues`` (of dF/dx, the mean-field map's Jacobian at its fixed point x* =
    F(x*)) mean, in a sentence: the linearised rate dynamics tau dx/dt = -x + F(x) decay back to x* when every
    eigenvalue has real part < 1."""
    if not eigenvalues:
        return "stable: no feedback between the populations (dF/dx has no eigenvalues)"
    top = max(re for re, _ in eigenvalues)
    if stable:
        return (
            f"stable: every eigenvalue of dF/dx at the fixed point has real part < 1 (largest {top:.3g}), so a small "
            f"perturbation of the rates decays (slowest as exp(-{1 - top:.3g} t / tau_m)) under the rate dynamics "
            "tau dx/dt = -x + F(x); oscillatory instabilities of the spiking network are not part of this test"
        )
    return (
        f"unstable: an eigenvalue of dF/dx has real part {top:.3g} >= 1, so the rates run away from this fixed "
        "point (no stationary state here to predict)"
    )


def write_figures(
    run_dir: Path,
    cfg: dict[str, Any],
    sim: SimulationResult | None,
    theory: Theory | None,
    matched: dict[str, np.ndarray] | None,
) -> None:
    """rates.png (simulated rates, the prediction passed through the counting window, and before it),
    activity.png (raster, population rates); plastic runs: weights.png, alpha.png, weights_over_time.png."""
    names = list(sim.spike_stats) if sim else list(theory.rates)
    simulated = {n: sim.rates_hz(n).numpy().ravel() for n in names} if sim else {}
    predicted = {n: (matched[n] if matched else theory.rates[n].samples) for n in names} if theory else {}
    what = " vs ".join(x for x, on in (("simulation", sim), ("theory", theory)) if on)
    window_s = (sim.duration_ms - sim.transient_ms) * 1e-3 if sim else 0.0
    distribution_panels(
        simulated,
        predicted,
        run_dir / "rates.png",
        "firing rate (Hz)",
        f"firing-rate distributions: {what} (seed {cfg['seed']})",
        lattice=1.0 / window_s if window_s > 0 else None,  # counted rates are multiples of 1 / T
        reference={n: theory.rates[n].samples for n in names} if theory and matched else None,
        labels=("simulation", f"theory, counted over {window_s:g} s" if matched else "theory"),
    )
    if sim:
        raster = {n: (r["step"].numpy(), r["neuron"].numpy()) for n, r in sim.raster.items()}
        pop_rates = {n: sim.population_rate.binned_rate_hz(n, 1.0)[:, 0].numpy() for n in names}
        activity_overview(pop_rates, 1.0, raster, sim.dt_ms, run_dir / "activity.png", start_ms=sim.transient_ms)
    weights_sim = (
        {n: v.numpy().ravel() for n, v in sim.extra["weights"]["final_weights_mv"].items()}
        if sim and "weights" in sim.extra
        else {}
    )
    weights_th = {n: d.samples for n, d in theory.weights.items()} if theory else {}
    if weights_sim or weights_th:
        distribution_panels(
            weights_sim, weights_th, run_dir / "weights.png", "|w| (mV)", f"weight distributions: {what}"
        )
    if sim and "weights" in sim.extra:
        from torchsnn.analysis.plasticity_summary import replica_r_p

        r_p = replica_r_p(cfg, sim.batch)[:, None]
        alpha = {n: (sim.rates_hz(n).numpy() / r_p).ravel() for n in sim.extra["weights"]["final_rate_estimates_hz"]}
        distribution_panels(alpha, {}, run_dir / "alpha.png", "alpha = nu / r_p", "reliability of the traces")
        weight_series_figure(sim.extra["weights"]["series"], run_dir / "weights_over_time.png", sim.transient_ms)


def log_to_tensorboard(
    tb: TensorBoardLogger, summary: dict[str, Any], sim: SimulationResult | None, theory: Theory | None
) -> None:
    if sim:
        tb.log_rates({n: sim.rates_hz(n).numpy() for n in sim.spike_stats}, tag="simulation/rate_hz")
        if "weights" in sim.extra:
            w = sim.extra["weights"]
            tb.log_rates({n: v.numpy() for n, v in w["final_weights_mv"].items()}, tag="simulation/weight_mv")
            r_p = np.asarray(next(iter(summary["alpha"].values()))["r_p_hz"], dtype=float).reshape(-1, 1)
            tb.log_rates({n: sim.rates_hz(n).numpy() / r_p for n in w["final_rate_estimates_hz"]}, tag="alpha")
            tb.log_weight_series(w["series"])
    if theory:
        tb.log_rates({n: d.samples for n, d in theory.rates.items()}, tag="theory/rate_hz")
        tb.log_rates({n: d.samples for n, d in theory.weights.items()}, tag="theory/weight_mv")
    for section in ("simulation", "theory", "comparison", "simulation_weights", "theory_weights", "comparison_weights"):
        if section in summary:
            tb.log_summary(summary[section], section)
