"""Newton's method on x = F(x) with the Jacobian by the chain rule over per-cell inputs (explicit rates,
``jacobian.py``) or reverse-mode autograd (implicit rates), line search, relaxation fallback,
and continuation from the homogeneous network (theory §5.6)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from torchsnn.errors import SolverError
from torchsnn.meanfield.jacobian import chain_rule_applies, value_and_jacobian
from torchsnn.meanfield.model import MeanFieldModel
from torchsnn.meanfield.transfers import first_order_transfers


@dataclass
class SolveResult:
    """A converged fixed point x* = F(x*) and its diagnostics.

    ``residual`` is max |x - F(x)| in units of the model's typical scales; ``eigenvalues`` are those of dF/dx at
    x*; the state is ``stable`` when every eigenvalue has real part < 1 (linearised rate dynamics
    tau dx/dt = -x + F(x) decay back to x*).
    """

    x: Tensor
    converged: bool
    residual: float
    iterations: int
    wall_time_s: float
    eigenvalues: np.ndarray
    history: list[float] = field(default_factory=list)
    continuation: list[float] = field(default_factory=list)
    branch_search: dict[str, object] | None = None
    discretisation: dict[str, object] | None = None

    @property
    def stable(self) -> bool:
        return bool(np.max(self.eigenvalues.real) < 1.0) if self.eigenvalues.size else True

    def diagnostics(self) -> dict[str, object]:
        lead = sorted(self.eigenvalues, key=lambda z: -z.real)[:3]
        return {
            "converged": self.converged,
            "residual": float(self.residual),
            "iterations": self.iterations,
            "wall_time_s": round(self.wall_time_s, 4),
            "stable": self.stable,
            "leading_eigenvalues": [[round(float(z.real), 6), round(float(z.imag), 6)] for z in lead],
            **({"branch_search": self.branch_search} if self.branch_search else {}),
            **({"discretisation": self.discretisation} if self.discretisation else {}),
        }


class FixedPointProblem:
    """G(z) = z - F(z * scale) / scale in scaled unknowns z.

    ``analytic`` (default: where every rate is explicit and the inputs Poisson, ``jacobian.chain_rule_applies``)
    takes dF/dx from ``jacobian.value_and_jacobian`` (chain rule over the per-cell inputs, one transfer evaluation
    with first derivatives per point, and F from the same evaluation); otherwise reverse mode through F (implicit
    rates, renewal input statistics)."""

    def __init__(self, model: MeanFieldModel, scale: Tensor, analytic: bool | None = None) -> None:
        self.model, self.scale = model, scale
        # the chain rule (jacobian.py) covers explicit rates with Poisson input statistics; otherwise autograd
        self.analytic = chain_rule_applies(model) if analytic is None else analytic

    def residual(self, z: Tensor) -> Tensor:
        """G(z). A value-only evaluation (no gradient asked for) is kept: Newton's accepted line-search trial is
        the next iterate, whose residual the Jacobian step then needs again."""
        if z.requires_grad and torch.is_grad_enabled():
            return z - self.model.F(z * self.scale) / self.scale
        cached = getattr(self, "_last_residual", None)
        if cached is not None and torch.equal(cached[0], z):
            return cached[1]
        with torch.no_grad():
            g = z - self.model.F(z * self.scale) / self.scale
        self._last_residual = (z.detach().clone(), g)
        return g

    def residual_and_jacobian(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """G(z) and dG/dz: analytic (``analytic``), or by reverse mode, one batched backward pass over the rows
        (autograd's ``is_grads_batched``; torch.func.jacrev's first call imports the compiler stack, ~2.5 s of a
        cold start).
        The last result is kept, so asking again at the same z costs nothing."""
        cached = getattr(self, "_last", None)
        if cached is not None and torch.equal(cached[0], z):
            return cached[1], cached[2]
        v = z.detach().clone()
        if self.analytic:
            f, jac_f = value_and_jacobian(self.model, v * self.scale)
            g = v - f / self.scale
            jac = torch.eye(g.numel(), dtype=g.dtype) - jac_f * self.scale[None, :] / self.scale[:, None]
        else:
            with torch.enable_grad(), first_order_transfers():
                v.requires_grad_(True)
                g = self.residual(v)
                eye = torch.eye(g.numel(), dtype=g.dtype)
                (jac,) = torch.autograd.grad(g, v, eye, is_grads_batched=True, allow_unused=True)
            jac = torch.zeros(g.numel(), v.numel(), dtype=v.dtype) if jac is None else jac
            g = g.detach()
        self._last = (z.detach().clone(), g, jac)
        self._last_residual = (z.detach().clone(), g)
        return g, jac

    def trial_residual(self, z: Tensor) -> Tensor:
        """G at a full Newton step: with the analytic Jacobian (about 1.6 value evaluations) G and dG/dz at once,
        since the step is usually accepted and its Jacobian is needed next; otherwise G alone."""
        return self.residual_and_jacobian(z)[0] if self.analytic else self.residual(z)

    def project(self, z: Tensor) -> Tensor:
        """Nearest admissible point (the model's constraints: covariances PSD, second moments >= 0)."""
        return self.model.project(z * self.scale) / self.scale


def newton(
    problem: FixedPointProblem, z0: Tensor, tol: float, max_iter: int, relax_steps: int = 20, relax_factor: float = 0.3
) -> tuple[Tensor, list[float], int]:
    """Damped Newton with a backtracking line search on ||G||^2; damped fixed-point relaxation when the line search
    stalls. Returns (z, residual history, iterations)."""
    z = z0.clone()
    g, jac = problem.residual_and_jacobian(z)
    history = [float(g.abs().max())]
    best, best_residual = z, history[0]
    it = 0
    while history[-1] > tol and it < max_iter:
        it += 1
        # gelsd (SVD): bit-identical between identical runs; the default gelsy differs at 1e-16 from call to call
        driver = "gelsd" if jac.device.type == "cpu" else None
        step = torch.linalg.lstsq(jac, -g.unsqueeze(-1), driver=driver).solution.squeeze(-1)
        merit, t, accepted = float(g @ g), 1.0, False
        while t >= 1.0 / 1024:
            trial = problem.project(z + t * step)
            g_trial = problem.trial_residual(trial) if t == 1.0 else problem.residual(trial)
            if torch.isfinite(g_trial).all() and float(g_trial @ g_trial) <= (1 - 1e-4 * t) * merit:
                z, accepted = trial, True
                break
            t *= 0.5
        if not accepted:
            z = relax(problem, z, relax_steps, relax_factor)
        g, jac = problem.residual_and_jacobian(z)
        history.append(float(g.abs().max()))
        if history[-1] < best_residual:
            best, best_residual = z, history[-1]
    return best, history, it


def relax(problem: FixedPointProblem, z: Tensor, steps: int, factor: float) -> Tensor:
    """z <- z - factor * G(z): damped fixed-point iteration (converges near a stable fixed point)."""
    with torch.no_grad():
        for _ in range(steps):
            z = z - factor * problem.residual(z)
    return z


def follow_rate_dynamics(
    problem: FixedPointProblem, z: Tensor, tol: float, budget: int, steps: int = 600, factor: float = 0.3
) -> tuple[Tensor, bool]:
    """Integrate the rate dynamics dz/dt = F(z) - z (Euler steps of ``factor``) until they settle, then polish the
    end point with Newton. Returns (z, whether it is a converged, stable fixed point)."""
    with torch.no_grad():
        for _ in range(0, steps, 50):
            z = problem.project(relax(problem, z, 50, factor))
            g = problem.residual(z)
            if not torch.isfinite(g).all() or float(g.abs().max()) > 1e6:
                return z, False
            if float(g.abs().max()) < 1e-6:
                break
    z, hist, _ = newton(problem, z, tol, budget)
    if min(hist) > tol:
        return z, False
    _, jac = problem.residual_and_jacobian(z)
    return z, bool(np.max(map_eigenvalues(jac).real) < 1.0)


def map_eigenvalues(jac: Tensor) -> np.ndarray:
    """Eigenvalues of dF/dx from the Jacobian of the residual G = 1 - dF/dx (in scaled unknowns: similar)."""
    return np.linalg.eigvals(np.eye(jac.shape[0]) - jac.detach().numpy())


def rounded_mean_rates(model: MeanFieldModel, x: Tensor) -> dict[str, float]:
    return {name: round(value, 6) for name, value in model.mean_rates_hz(x).items()}


def stable_neighbours(
    problem: FixedPointProblem, z_saddle: Tensor, jac: Tensor, tol: float, budget: int, kick: float = 0.05
) -> list[Tensor]:
    """Stable fixed points the rate dynamics reach from the unstable one ``z_saddle`` when pushed either way along
    its most unstable direction (the eigenvector of dG/dz = 1 - dF/dx with the most negative real part)."""
    eigenvalues, vectors = np.linalg.eig(jac.detach().numpy())
    direction = torch.as_tensor(vectors[:, int(np.argmin(eigenvalues.real))].real, dtype=z_saddle.dtype)
    direction = direction / direction.abs().max().clamp_min(1e-300)
    found: list[Tensor] = []
    for sign in (1.0, -1.0):
        z, stable = follow_rate_dynamics(problem, problem.project(z_saddle + sign * kick * direction), tol, budget)
        if stable and all(float((z - other).abs().max()) > 1e-6 for other in found):
            found.append(z)
    return found


def solve(
    model: MeanFieldModel,
    x0: Tensor | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 40,
    continuation: int = 0,
    initial_rate_hz: float = 5.0,
    raise_on_failure: bool = True,
    require_stable: bool = False,
) -> SolveResult:
    """Find x* = F(x*).

    Strategy: Newton on the target network from ``x0``, limited to ``max_iter // 4`` iterations; when that does
    not converge, continuation in the heterogeneity h of the degrees: solve the homogeneous network (h = 0), then
    step h towards 1, halving the step whenever Newton does not converge within that budget.

    Args:
        x0: starting point (default: every neuron at ``initial_rate_hz``).
        tol: convergence threshold on max |x - F(x)| in scaled units.
        continuation: > 0 skips the direct attempt and starts with steps of 1 / continuation in h.
        raise_on_failure: raise :class:`SolverError` with residual, iterations and eigenvalues instead of
            returning an unconverged state (the diagnostics describe the best iterate found).
        require_stable: also raise when the fixed point found is unstable (an eigenvalue of dF/dx with real
            part >= 1): the network would not sit there, so its numbers are no prediction.

    When Newton lands on an unstable fixed point (a saddle between two states of a multistable network), the
    rate dynamics dx/dt = F(x) - x are followed from it both ways along its unstable direction; the stable
    states reached are polished by Newton, and the one with the lowest summed population mean rate (the
    low-activity asynchronous state) is returned. ``branch_search`` in the diagnostics lists the saddle and every
    stable state found with their population mean rates (``model.mean_rates_hz``).
    """
    t0 = time.perf_counter()
    scale = model.scales()
    if x0 is None:
        x0 = model.moments_at_rates({name: initial_rate_hz for name in model.populations})
    budget = max(4, max_iter // 4)
    z0 = x0 / scale
    history: list[float] = []
    levels: list[float] = []
    total_it = 0
    z, converged = z0, False
    if continuation == 0:
        z, hist, total_it = newton(FixedPointProblem(model, scale), z0, tol, budget)
        history += hist
        converged = min(hist) <= tol
        levels.append(1.0)
    best_direct = z
    if not converged:
        z, level, step = z0, 0.0, 1.0 / max(continuation, 1)
        first = True
        while True:
            target = 0.0 if first else min(1.0, level + step)
            problem = FixedPointProblem(model.with_heterogeneity(target), scale)
            z_new, hist, it = newton(problem, z, tol, budget if not first else max_iter)
            history += hist
            total_it += it
            if hist[-1] <= tol:
                z, level, first = z_new, target, False
                levels.append(target)
                step = min(2 * step, 1.0 - level) if level < 1.0 else step
                if level >= 1.0:
                    converged = True
                    break
            elif first or step < 1.0 / 256:
                z = best_direct  # report the best iterate of the target problem, not an intermediate level
                break
            else:
                step /= 2
    problem = FixedPointProblem(model, scale)
    g, jac = problem.residual_and_jacobian(z)
    eig = map_eigenvalues(jac)
    branch_search = None
    if converged and np.max(eig.real) >= 1.0:
        stable_states = stable_neighbours(problem, z, jac, tol, budget)
        rates = [rounded_mean_rates(model, s * scale) for s in stable_states]
        branch_search = {
            "unstable_fixed_point": {
                "mean_rates_hz": rounded_mean_rates(model, z * scale),
                "leading_eigenvalue": round(float(np.max(eig.real)), 6),
            },
            "stable_states_mean_rates_hz": rates,
        }
        if stable_states:
            z = stable_states[int(np.argmin([sum(r.values()) for r in rates]))]
            branch_search["chosen"] = "the stable state with the lowest summed mean rate"
            g, jac = problem.residual_and_jacobian(z)
            eig = map_eigenvalues(jac)
    result = SolveResult(
        z.detach() * scale,
        converged,
        float(g.abs().max()),
        total_it,
        time.perf_counter() - t0,
        eig,
        history,
        levels,
        branch_search,
    )
    if raise_on_failure and not converged:
        raise SolverError("mean-field solve did not converge", result.diagnostics())
    if require_stable and converged and not result.stable:
        raise SolverError(
            "the mean-field fixed point is unstable (no stationary asynchronous state to predict)", result.diagnostics()
        )
    return result
