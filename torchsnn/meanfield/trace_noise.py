r"""Finite-alpha weight laws: plastic weights driven by noisy spike traces (theory §8.3, checked against the
simulator's own trace and weight-update code).

**The trace.** ``RateEstimator`` keeps x <- x exp(-r_p dt) + spikes and reads nu_hat = r_p x. For a Poisson train
of rate nu this is shot noise with E[nu_hat] = nu (up to r_p dt / 2, below 1e-3 here), Var[nu_hat] = nu r_p / 2
and autocorrelation exp(-r_p |tau|). Its law is taken as the Gamma with that mean and variance,

    nu_hat ~ Gamma(shape a = 2 nu / r_p = 2 alpha, scale r_p / 2).

**The weight.** Every ``update_every_ms`` the rule relaxes w towards f(nu_hat) at rate b (b = 1 / tau_w for a
relaxation rule; for any other rule the linearised rate b = -dg/dw at w = f(nu)). The weight is therefore a
low-pass filter of f(nu_hat(t)), not f of one trace value:

* its mean is the *full* trace law's E[f(nu_hat)] (exact for a relaxation rule: the filter preserves means);
* its fluctuation is the filtered one: to linear order in the noise, the variance of nu_hat filtered at rate b is
  kappa nu r_p / 2 with kappa = b / (b + r_p) (an exponentially correlated input through a first-order filter).

So the law of one weight given its presynaptic rate is taken as

    w = f(y) - E[f(y)] + E[f(nu_hat)],    y ~ Gamma(mean nu, variance kappa nu r_p / 2),

with moments E[w] = E[f(nu_hat)], Var[w] = Var[f(y)], E[(w - E w)^3] = E[(f(y) - E f(y))^3]. (The literal law of
§8.3, w = f(y), puts the mean at E[f(y)], which misses most of the Jensen shift when tau_w >> 1 / r_p: with
tau_w = 2 s and alpha ~ 1 kappa is ~0.14 and a simulated trace + weight gives per-neuron KS 0.27 for f(y) and 0.02
for the law above.) As r_p -> 0 both Gammas collapse onto nu and every moment returns to f(nu), f^2, f^3.

**Numerics.** E over a Gamma by the generalised Gauss-Laguerre rule of weight x^(a-1) e^(-x), written for the
standardised variable z = (x - a) / sqrt(a) (Jacobi matrix diag 2k / sqrt(a), off-diagonal
sqrt(k (k + a - 1) / a); as a -> inf it becomes the Gauss-Hermite rule), batched over a and differentiable
(``torch.linalg.eigh``). The mean field evaluates the moments at very many rates, so ``FactorLaw`` tabulates them
once on a rate grid and interpolates (piecewise cubic Hermite: vectorised, differentiable, checked against the
direct rule in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from torchsnn.meanfield.model import BlockTheory
from torchsnn.plasticity import PlasticityRule
from torchsnn.validation import require

Factor = Callable[[Tensor], Tensor]
GAUSS_ORDER = 20  # nodes of the Gamma rule: exact for polynomials of degree < 40 in nu_hat
GRID_POINTS = 1024  # rate grid of the tables (quadratic spacing: dense at low rates)
GRID_TOP_HZ = 1000.0  # the tables stop here; above it the value at the top is used (no LIF rate gets there)
MIN_SHAPE = 1e-8  # Gamma shapes below this are treated as this (a point mass at 0 in all but name)
SAMPLE_SEED = 20251
KEYS = ("mean_shift", "filtered_shift", "var", "third_central")  # the tabulated functions, in this order
SUBSETS = {  # which of them each evaluation needs (one gather per call)
    **{k: (i,) for i, k in enumerate(KEYS)},
    "second": (0, 2),
    "third": (0, 2, 3),
    "sample": (0, 1),
}


def gamma_rule(mean_hz: Tensor, var_scale_hz: Tensor | float, order: int = GAUSS_ORDER) -> tuple[Tensor, Tensor]:
    """Nodes (..., order) in Hz and weights (..., order) for E[h(X)], X ~ Gamma with mean ``mean_hz`` and variance
    ``var_scale_hz * mean_hz`` (shape mean / scale, scale ``var_scale_hz``): the generalised Gauss-Laguerre rule,
    exact for polynomials of degree < 2 order. Batched and differentiable in the mean (and the scale)."""
    mean = torch.as_tensor(mean_hz, dtype=torch.float64)
    scale = torch.as_tensor(var_scale_hz, dtype=torch.float64, device=mean.device)
    mean, scale = torch.broadcast_tensors(mean, scale)
    a = (mean / scale).clamp(min=MIN_SHAPE)
    k = torch.arange(order, dtype=torch.float64, device=mean.device)
    ra = a.sqrt()[..., None]
    diag = 2 * k / ra
    off = torch.sqrt(k[1:] * (k[1:] + a[..., None] - 1)) / ra
    jacobi = torch.diag_embed(diag) + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    z, vecs = torch.linalg.eigh(jacobi)
    weights = vecs[..., 0, :] ** 2
    x = (scale * a)[..., None] + (scale * a.sqrt())[..., None] * z  # = scale (a + sqrt(a) z) >= 0
    return x.clamp(min=0.0), weights


def gamma_expect(h: Factor, mean_hz: Tensor, var_scale_hz: Tensor | float, order: int = GAUSS_ORDER) -> Tensor:
    """E[h(X)], X ~ Gamma(mean ``mean_hz``, variance ``var_scale_hz * mean_hz``), by :func:`gamma_rule`."""
    x, w = gamma_rule(mean_hz, var_scale_hz, order)
    return (w * h(x)).sum(-1)


@dataclass(frozen=True)
class TraceLaw:
    r"""The trace noise of one simulation: degradation rate ``r_p_hz`` of the traces. Var[nu_hat] = nu r_p / 2
    (``full_scale_hz`` = r_p / 2) and, filtered by a weight relaxing at b (Hz), kappa r_p / 2 with
    kappa = b / (b + r_p) (:meth:`filtered_scale_hz`)."""

    r_p_hz: float

    @property
    def full_scale_hz(self) -> float:
        return 0.5 * self.r_p_hz

    def kappa(self, relax_hz: Tensor | float) -> Tensor:
        b = torch.as_tensor(relax_hz, dtype=torch.float64)
        return b / (b + self.r_p_hz)

    def filtered_scale_hz(self, relax_hz: Tensor | float) -> Tensor:
        return self.kappa(relax_hz) * self.full_scale_hz


def _hermite_table(grid: Tensor, values: Tensor) -> Tensor:
    """Cubic coefficients (n - 1, 4) per grid interval, in the local variable t = (nu - nu_i) / (nu_i+1 - nu_i), of
    the piecewise cubic Hermite interpolant of ``values`` with three-point (second-order, non-uniform) slopes."""
    h = grid[1:] - grid[:-1]
    d = (values[1:] - values[:-1]) / h
    slope = torch.empty_like(values)
    slope[1:-1] = (h[1:] * d[:-1] + h[:-1] * d[1:]) / (h[:-1] + h[1:])
    slope[0] = d[0] - h[0] * (d[1] - d[0]) / (h[0] + h[1])
    slope[-1] = d[-1] + h[-1] * (d[-1] - d[-2]) / (h[-1] + h[-2])
    y0, y1, m0, m1 = values[:-1], values[1:], h * slope[:-1], h * slope[1:]
    return torch.stack([y0, m0, 3 * (y1 - y0) - 2 * m0 - m1, 2 * (y0 - y1) + m0 + m1], -1)


def _hermite_eval(top_hz: float, coefficients: Tensor, nu: Tensor) -> list[Tensor]:
    """Tabulated functions (coefficients (n, K, 4)) at ``nu`` (clamped to [0, top]) -> K tensors shaped like nu,
    on the grid nu_i = top (i / n)^2, where the interval of nu is found directly (s = sqrt(nu / top) n);
    differentiable in ``nu``. One index computation and one gather serve the K functions (each evaluated without
    broadcasting: batched Jacobians through a broadcast t are several times slower)."""
    n = coefficients.shape[0]
    x = nu.clamp(0.0, top_hz)
    s = torch.sqrt(x / top_hz) * n
    i = s.detach().floor().clamp(0, n - 1).long()
    x0 = top_hz * (i / n) ** 2
    x1 = top_hz * ((i + 1) / n) ** 2
    t = (x - x0) / (x1 - x0)
    c = coefficients[i]
    return [c[..., k, 0] + t * (c[..., k, 1] + t * (c[..., k, 2] + t * c[..., k, 3])) for k in range(c.shape[-2])]


class FactorLaw:
    r"""The finite-alpha law of a weight factor h of one neuron's trace (h = f of a pre-only rule, or one factor of
    a separable rule), tabulated over that neuron's true rate nu (see the module docstring):

        mean(nu)   = E[h(nu_hat)]                       nu_hat ~ Gamma(nu, nu r_p / 2)
        second(nu) = mean^2 + Var[h(y)]                 y ~ Gamma(nu, kappa nu r_p / 2)
        third(nu)  = mean^3 + 3 mean Var[h(y)] + E[(h(y) - E h(y))^3]

    ``relax_hz``: the weight's relaxation rate b (a number, or a function of nu for rules whose linearised rate
    depends on the rate). ``bounds``: the rule's [w_min, w_max] applied to samples (the simulator clips)."""

    def __init__(
        self,
        h: Factor,
        law: TraceLaw,
        relax_hz: float | Factor,
        bounds: tuple[float, float] = (-math.inf, math.inf),
        top_hz: float = GRID_TOP_HZ,
        points: int = GRID_POINTS,
        order: int = GAUSS_ORDER,
    ) -> None:
        self.h, self.law, self.bounds, self.top_hz = h, law, bounds, float(top_hz)
        self.relax = relax_hz if callable(relax_hz) else (lambda nu, b=float(relax_hz): torch.full_like(nu, b))
        self.grid = top_hz * torch.linspace(0.0, 1.0, points, dtype=torch.float64) ** 2
        with torch.no_grad():
            nu = self.grid
            h_nu = h(nu)
            mean_full = gamma_expect(h, nu, law.full_scale_hz, order)
            x, w = gamma_rule(nu, law.filtered_scale_hz(self.relax(nu)), order)
            hx = h(x)
            mean_k = (w * hx).sum(-1)
            dev = hx - mean_k[..., None]
            var = (w * dev**2).sum(-1).clamp(min=0.0)
            skew = (w * dev**3).sum(-1)
        # the shifts from h(nu) are tabulated, h itself is evaluated: as r_p -> 0 the law is h(nu) to rounding
        tables = [mean_full - h_nu, mean_k - h_nu, var, skew]
        self._coef = torch.stack([_hermite_table(self.grid, v) for v in tables], 1)  # (n - 1, 4 keys, 4)
        self._subsets = {k: self._coef[:, list(v)].contiguous() for k, v in SUBSETS.items()}

    def moment(self, key: str, nu_hz: Tensor) -> Tensor:
        """A tabulated quantity at ``nu_hz``: ``mean_shift`` (E[h(nu_hat)] - h(nu)), ``filtered_shift``
        (E[h(y)] - h(nu)), ``var`` (Var[h(y)]) or ``third_central`` (E[(h(y) - E h(y))^3])."""
        return self._eval(key, nu_hz)[0]

    def _eval(self, subset: str, nu_hz: Tensor) -> list[Tensor]:
        return _hermite_eval(self.top_hz, self._subsets[subset], torch.as_tensor(nu_hz, dtype=torch.float64))

    def mean(self, nu_hz: Tensor) -> Tensor:
        """E[w | nu]."""
        nu = torch.as_tensor(nu_hz, dtype=torch.float64)
        return self.h(nu) + self._eval("mean_shift", nu)[0]

    def filtered_mean(self, nu_hz: Tensor) -> Tensor:
        """E[h(y)], y from the filtered Gamma (the mean of the literal law of theory 8.3)."""
        nu = torch.as_tensor(nu_hz, dtype=torch.float64)
        return self.h(nu) + self._eval("filtered_shift", nu)[0]

    def second(self, nu_hz: Tensor) -> Tensor:
        """E[w^2 | nu]."""
        nu = torch.as_tensor(nu_hz, dtype=torch.float64)
        shift, var = self._eval("second", nu)
        mean = self.h(nu) + shift
        return mean * mean + var.clamp(min=0.0)

    def third(self, nu_hz: Tensor) -> Tensor:
        """E[w^3 | nu]."""
        nu = torch.as_tensor(nu_hz, dtype=torch.float64)
        shift, var, skew = self._eval("third", nu)
        mean = self.h(nu) + shift
        return mean**3 + 3 * mean * var.clamp(min=0.0) + skew

    def sample(self, nu_hz: Tensor, rng: np.random.Generator) -> Tensor:
        """One weight factor per entry of ``nu_hz``: h(y) - E[h(y)] + E[h(nu_hat)], y from the filtered Gamma."""
        nu = torch.as_tensor(nu_hz, dtype=torch.float64).clamp(min=0.0)
        scale = self.law.filtered_scale_hz(self.relax(nu)).expand_as(nu).numpy()
        shape = np.maximum(nu.numpy() / scale, MIN_SHAPE)
        y = torch.as_tensor(rng.gamma(shape, scale), dtype=torch.float64)
        shift, filtered_shift = self._eval("sample", nu)
        out = self.h(y) - filtered_shift + shift
        return out.clamp(*self.bounds)


def linearised_relaxation_hz(drift: Callable[[Tensor, Tensor], Tensor], f: Factor, step_mv: float = 1e-6) -> Factor:
    """b(nu) = -dg/dw at w = f(nu) in Hz (g in mV per ms), for rules that are not plain relaxations; floored at a
    small positive rate."""

    def relax(nu: Tensor) -> Tensor:
        w = f(nu)
        slope = (drift(w + step_mv, nu) - drift(w - step_mv, nu)) / (2 * step_mv)
        return (-1e3 * slope).clamp(min=1e-6)

    return relax


def trace_block(
    post: str, pre: str, rule: PlasticityRule, sign: float, trace: TraceLaw, factors: tuple[Any, Any] | None
) -> tuple[BlockTheory, dict[str, Any]]:
    """Pre-only or separable block under the finite-alpha trace law: each factor's E[h], E[h^2], E[h^3] over its
    neuron's trace (independent traces for pre and post); the weight law's samples are drawn from it, with a
    fixed seed (the same rates give the same samples)."""
    bounds = (rule.w_min_mv, rule.w_max_mv)
    tau_w = getattr(rule, "tau_w_ms", None)
    if factors is None:

        def f(nu: torch.Tensor) -> torch.Tensor:
            return rule.steady_state(nu, torch.zeros_like(nu))

        relax = 1e3 / tau_w if tau_w else linearised_relaxation_hz(lambda w, nu: rule.drift(w, nu, 0 * nu), f)
        law = FactorLaw(f, trace, relax, bounds)

        def weight(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return sign * law.sample(a, np.random.default_rng(SAMPLE_SEED))

        block = BlockTheory(
            post,
            pre,
            [lambda nu: sign * law.mean(nu)],
            [law.second],
            weight_mv=weight,
            plastic=True,
            jump_pre=lambda nu: sign * law.third(nu),
        )
        kind = "pre_only"
    else:
        # a separable target with a non-relaxation drift: its relaxation rate is not per factor
        require(bool(tau_w), "rule.tau_w_ms", tau_w, "a separable rule under trace noise must be a relaxation rule")
        law = FactorLaw(factors[0], trace, 1e3 / tau_w)
        law_post = FactorLaw(factors[1], trace, 1e3 / tau_w)

        def weight(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            rng = np.random.default_rng(SAMPLE_SEED)
            return sign * (law.sample(a, rng) * law_post.sample(b, rng)).clamp(*bounds)

        block = BlockTheory(
            post,
            pre,
            [lambda nu: sign * law.mean(nu)],
            [law.second],
            [law_post.mean],
            [law_post.second],
            weight_mv=weight,
            plastic=True,
            jump_pre=lambda nu: sign * law.third(nu),
            jump_post=law_post.third,
        )
        kind = "separable"
    info = {
        "kind": kind,
        "trace_noise": True,
        "r_p_hz": trace.r_p_hz,
        "kappa": float(trace.kappa(1e3 / tau_w)) if tau_w else "per rate (linearised relaxation)",
    }
    return block, info


__all__ = ["FactorLaw", "TraceLaw", "gamma_expect", "gamma_rule", "linearised_relaxation_hz", "trace_block"]
