r"""The self-consistency equations of the mean-field theory (theory §5.2–5.5).

A block a <- b acts on its postsynaptic neuron through D *features* of the presynaptic rate: feature d adds
h_d(nu_post) g_d(nu_pre) nu_pre per input to mu (a "mu feature") or to sigma^2 (a "sigma feature"). For static
weights (g = J, J^2; h = 1), pre-only rules (g = f, f^2) and separable pre-and-post rules
(g = f_pre, f_pre^2; h = f_post, f_post^2) D = 2; a non-separable rule expanded to rank M has more. With
u = (g_d(nu) nu)_d over a random edge's presynaptic side (rho*), the unknowns of the block are the D means
m = E*[u] and the D(D+1)/2 entries of C = Cov*(u) — for D = 2 the talk's five moments
(m_mu, m_sigma, s_mu^2, c, s_sigma^2). A neuron of population a with in-degree vector K receives

    mu      = mu_ext      + tau_m sum_b sum_{d in mu}    h_d(nu) [K_b m_d + sqrt(K_b) xi_{b,d}]
    sigma^2 = sigma_ext^2 + tau_m sum_b sum_{d in sigma} h_d(nu) [K_b m_d + sqrt(K_b) xi_{b,d}]

with xi_b ~ N(0, C_b) independent across blocks. Blocks without post factors combine into one 2-D Gaussian
(mu, sigma^2) with covariance tau_m^2 sum_b K_b A C_b A^T (one 2x2 Cholesky per degree node; a small jitter
handles the rank-one static case) and the rate is nu = phi(mu, sigma). Post-dependent blocks keep their own
Gaussian variables and each node's rate solves nu = phi(mu(nu), sigma(nu)) (§5.5): all stable roots are
bracketed on a grid, the lowest one is used and nodes with several are counted. Expectations over the Gaussian
variables use a Gauss–Hermite product rule (up to 4 dimensions) or scrambled Sobol points; over K the degree
nodes of ``degrees.py``. Float64 throughout; autograd flows through phi (analytic derivatives), the Cholesky
factors, the rule's factors and, for implicit rates, one Newton correction (implicit-function theorem).

The pieces: ``blocks.py`` (populations, blocks, per-cell inputs), ``quadrature.py`` (Gaussian rules),
``implicit.py`` (implicit rates), ``jacobian.py`` (the Jacobian of F without autograd over the cells; Poisson
inputs only), ``regularity.py`` (``input_statistics`` renewal: the pre nodes' variance factor F on the sigma
features; renewal_adiabatic: the tracked deficit E*[w^2 nu (F - 1)] per block and the adiabatic rate).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from torchsnn.meanfield.blocks import (
    JITTER_MV2,
    SIGMA2_SMOOTHING_MV2,
    BlockTheory,
    CellInputs,
    Factor,
    NodeRates,
    PopulationTheory,
    cholesky_2d,
    smooth_sqrt,
)
from torchsnn.meanfield.implicit import implicit_rates
from torchsnn.meanfield.quadrature import product_normal_rule, sobol_normal

REFERENCE_RATE_HZ = 10.0


class MeanFieldModel:
    """x -> F(x) for a network of populations and blocks; ``x`` is flat, block after block (``block_slices``)."""

    def __init__(
        self,
        populations: list[PopulationTheory],
        blocks: list[BlockTheory],
        gh_order_mu: int = 16,
        gh_order_sigma: int = 4,
        qmc_points: int = 1024,
        root_grid: int = 24,
    ) -> None:
        self.populations = {p.name: p for p in populations}
        self.blocks = list(blocks)
        self.block_index = {(b.post, b.pre): i for i, b in enumerate(self.blocks)}
        self.tracks_jumps = [self.populations[b.post].needs_jumps for b in self.blocks]
        # renewal_adiabatic input statistics (regularity.py): E*[w^2 nu (F - 1)] per block, after the jump moments
        self.tracks_deficit = [bool(getattr(self.populations[b.pre].transfer_hz, "adiabatic", False)) for b in blocks]
        extra = zip(self.blocks, self.tracks_jumps, self.tracks_deficit, strict=True)
        offsets = np.cumsum([0, *(b.n_unknowns + 2 * t + d for b, t, d in extra)])
        self.block_slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets)]
        self.gh_order_mu, self.gh_order_sigma = gh_order_mu, gh_order_sigma
        self.qmc_points, self.root_grid = qmc_points, root_grid
        self._degree_tensors = {
            name: (torch.as_tensor(p.nodes.k), torch.as_tensor(p.nodes.prob)) for name, p in self.populations.items()
        }
        self._feature_scales = [self._block_feature_scales(b) for b in self.blocks]
        self._gauss = {name: self._gaussian_rule(name) for name in self.populations}

    # ------------------------------------------------------------------ layout
    @property
    def n_unknowns(self) -> int:
        return self.block_slices[-1].stop if self.blocks else 0

    def inputs_of(self, name: str) -> list[tuple[int, BlockTheory]]:
        """(block index, block) of every block onto ``name``, in the order of its degree nodes' columns."""
        nodes = self.populations[name].nodes
        return [
            (self.block_index[(name, pre)], self.blocks[self.block_index[(name, pre)]])
            for pre in nodes.inputs
            if (name, pre) in self.block_index
        ]

    def block_means_cov(self, x: Tensor, i: int) -> tuple[Tensor, Tensor]:
        """Means (D,) and covariance (D, D) of block i's features, from the flat x."""
        block = self.blocks[i]
        d = block.n_features
        v = x[self.block_slices[i]]
        rows, cols = torch.triu_indices(d, d)
        cov = torch.zeros(d, d, dtype=x.dtype)
        tri = v[d : d + rows.numel()]
        cov = cov.index_put((rows, cols), tri).index_put((cols, rows), tri)
        return v[:d], cov

    def block_jumps(self, x: Tensor, i: int) -> tuple[Tensor, Tensor]:
        """(E*[nu], E*[w^3 nu]) of block i (tracked where the postsynaptic transfer function needs jumps)."""
        v, n = x[self.block_slices[i]], self.blocks[i].n_unknowns
        return v[n], v[n + 1]

    def with_heterogeneity(self, heterogeneity: float) -> MeanFieldModel:
        """The same network with degree nodes moved towards their means (continuation from h = 0)."""
        pops = [replace(p, nodes=p.nodes.scaled(heterogeneity)) for p in self.populations.values()]
        return MeanFieldModel(pops, self.blocks, self.gh_order_mu, self.gh_order_sigma, self.qmc_points, self.root_grid)

    # ------------------------------------------------------------------ Gaussian rules
    def has_implicit_rates(self, name: str) -> bool:
        """Whether the rates of ``name`` solve nu = phi(mu(nu), sigma(nu)) (post-dependent plastic inputs)."""
        return bool(self._post_dependent_inputs(name))

    def _post_dependent_inputs(self, name: str) -> list[tuple[int, BlockTheory]]:
        return [(i, b) for i, b in self.inputs_of(name) if b.post_dependent]

    def _gaussian_rule(self, name: str, coarse: bool = False) -> tuple[Tensor, Tensor]:
        """Standard normal nodes (n, dim) and weights: dims 0, 1 for the combined post-independent (mu, sigma^2),
        then the features of each post-dependent block. ``coarse``: a small rule (per-neuron predictions)."""
        dependent = self._post_dependent_inputs(name)
        if coarse:
            orders = [6, 2] + [4 if j < len(b.mu_pre) else 2 for _, b in dependent for j in range(b.n_features)]
        elif not dependent:
            orders = [self.gh_order_mu, self.gh_order_sigma]
        else:  # every node costs a root search: half the orders in every direction (4-D rule ~ 1/16 of the 2-D one)
            orders = [max(4, self.gh_order_mu // 2), max(2, self.gh_order_sigma // 2)]
            for _, b in dependent:
                orders += [max(4, self.gh_order_mu // 3)] * len(b.mu_pre) + [2] * len(b.sigma_pre)
        if coarse and len(orders) > 4:  # a product rule would explode: a few antithetic Sobol points instead
            return sobol_normal(len(orders), 128)
        if len(orders) <= 4:
            return product_normal_rule(orders)
        return sobol_normal(len(orders), self.qmc_points)

    # ------------------------------------------------------------------ rates
    def cell_inputs(self, x: Tensor, name: str, k: Tensor) -> CellInputs:
        """Inputs of neurons of ``name`` with in-degrees ``k`` (n, n_inputs) at the state x (``CellInputs``)."""
        pop = self.populations[name]
        tau_s = pop.tau_m_ms * 1e-3
        columns = {pre: c for c, pre in enumerate(pop.nodes.inputs)}
        n = k.shape[0]
        full = [torch.full((n,), v, dtype=torch.float64) for v in (pop.mu_ext_mv, pop.sigma_ext_mv**2, 0.0)]
        lam, s3 = (torch.full((n,), v, dtype=torch.float64) for v in (pop.ext_lam_hz, pop.ext_s3_mv3))
        cells = CellInputs(full[0], full[1], full[2], full[2].clone(), full[2].clone(), lam, s3)
        for i, block in self.inputs_of(name):
            kb = k[:, columns[block.pre]]
            m, c = self.block_means_cov(x, i)
            n_mu = len(block.mu_pre)
            if self.tracks_deficit[i]:  # renewal_adiabatic: tau_m K_b E*[w^2 nu (F - 1)] (regularity.py)
                part = tau_s * kb * x[self.block_slices[i]][-1]
                cells.deficit = part if cells.deficit is None else cells.deficit + part
            if pop.needs_jumps:
                e0, e3 = self.block_jumps(x, i)
                cells.lam = cells.lam + kb * e0
                if block.jump_post is None:
                    cells.s3 = cells.s3 + tau_s * kb * e3
                else:
                    cells.s3_terms.append((block.jump_post, (tau_s * kb * e3)[:, None]))
            if block.post_dependent:
                cells.dependent.append((i, block, kb, m, c))
                continue
            a = torch.zeros(2, block.n_features, dtype=torch.float64)
            a[0, :n_mu], a[1, n_mu:] = 1.0, 1.0
            cells.mu0 = cells.mu0 + tau_s * kb * m[:n_mu].sum()
            cells.s20 = cells.s20 + tau_s * kb * m[n_mu:].sum()
            proj = a @ c @ a.T
            cells.var_mu = cells.var_mu + tau_s**2 * kb * proj[0, 0]
            cells.var_s2 = cells.var_s2 + tau_s**2 * kb * proj[1, 1]
            cells.cov = cells.cov + tau_s**2 * kb * proj[0, 1]
        return cells

    @staticmethod
    def gaussian_points(cells: CellInputs, xi: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, sigma^2) at standard-normal points ``xi`` ((1, g, dim) or (n, 1, dim)): the Cholesky map of the
        cells' post-independent Gaussian."""
        l11, l21, l22 = cholesky_2d(cells.var_mu, cells.var_s2, cells.cov)
        mu_n = cells.mu0[:, None] + l11[:, None] * xi[..., 0]
        s2_n = cells.s20[:, None] + l21[:, None] * xi[..., 0] + l22[:, None] * xi[..., 1]
        return mu_n, s2_n

    def rates_at(
        self, x: Tensor, name: str, k: Tensor, xi: Tensor | None = None, per_neuron: bool = False
    ) -> NodeRates:
        """Rates of neurons with in-degrees ``k`` (n, n_inputs) at standard-normal points ``xi`` (default: the
        population's Gaussian rule): (g, dim) shared by all n (result (n, g)), or with ``per_neuron`` (n, dim),
        one point per neuron (result (n, 1))."""
        pop = self.populations[name]
        xi = self._gauss[name][0] if xi is None else xi
        xi = xi[:, None] if per_neuron else xi[None]
        tau_s = pop.tau_m_ms * 1e-3
        cells = self.cell_inputs(x, name, k)
        mu_n, s2_n = self.gaussian_points(cells, xi)
        jumps = (cells.lam[:, None], cells.s3[:, None]) if pop.needs_jumps else ()
        if not cells.dependent:
            sigma_n = smooth_sqrt(s2_n)
            if cells.deficit is not None:  # renewal_adiabatic (regularity.py)
                nu_n = pop.transfer_hz.adiabatic_rate_hz(mu_n, sigma_n, cells.deficit[:, None], *jumps)
            else:
                nu_n = pop.transfer_hz(mu_n, sigma_n, *jumps)
            renewal = getattr(pop.transfer_hz, "variance_factor", None)  # input_statistics = renewal
            factor = renewal(nu_n, mu_n, sigma_n, *jumps) if renewal is not None else None
            return NodeRates(nu_n, mu_n, sigma_n, variance_factor=factor)
        terms = []  # (post factor, value (n, g), goes to mu?)
        col = 2
        for i, block, kb, m, c in cells.dependent:
            d = block.n_features
            # during the iterations C may be slightly indefinite: shift it to positive definite (the shift is
            # detached, so the gradient is that of C; at the fixed point C is PSD and the shift is the jitter)
            jitter = 1e-12 * self._feature_scales[i] ** 2
            shift = (-torch.linalg.eigvalsh(c.detach() / jitter.sqrt().outer(jitter.sqrt()))[0]).clamp(min=0.0)
            chol = torch.linalg.cholesky(c + torch.diag(jitter * (1.0 + 1.01 * shift)))
            z = kb[:, None, None] * m + torch.sqrt(kb)[:, None, None] * (xi[..., col : col + d] @ chol.T)
            col += d
            for j, h in enumerate(block.mu_post + block.sigma_post):
                terms.append((h, tau_s * z[..., j], j < len(block.mu_pre)))
        return implicit_rates(pop, mu_n, s2_n, terms, jumps, cells.s3_terms, self.root_grid)

    def node_rates(self, x: Tensor, name: str) -> NodeRates:
        """Rates at every (degree node, Gaussian node) of population ``name``."""
        return self.rates_at(x, name, self._degree_tensors[name][0])

    def node_weights(self, name: str) -> Tensor:
        """Probabilities of the (degree node, Gaussian node) pairs under rho_K x N(0, I)."""
        return self._degree_tensors[name][1][:, None] * self._gauss[name][1][None, :]

    def mean_rates_hz(self, x: Tensor) -> dict[str, float]:
        """Population mean rates E[nu] = sum over nodes of P(node) nu(node) at the state x."""
        with torch.no_grad():
            return {
                name: float((self.node_weights(name) * self.node_rates(x, name).nu_hz).sum())
                for name in self.populations
            }

    # ------------------------------------------------------------------ the map
    def block_moments(self, i: int, rates: NodeRates) -> Tensor:
        """Means and covariance entries of block i's features over rho* of its presynaptic population."""
        block = self.blocks[i]
        nodes = self.populations[block.pre].nodes
        star = torch.as_tensor(nodes.star_prob(block.post), dtype=torch.float64)
        omega = star[:, None] * self._gauss[block.pre][1][None, :]
        u = block.features(rates.nu_hz)
        factor = rates.variance_factor
        if factor is not None and not self.tracks_deficit[i]:  # renewal: sigma features x F of the pre node
            u = u[: len(block.mu_pre)] + [ud * factor for ud in u[len(block.mu_pre) :]]
        means = torch.stack([(omega * ud).sum() for ud in u])
        d = len(u)
        rows, cols = torch.triu_indices(d, d)
        cov = torch.stack(
            [
                (omega * u[r] * u[c]).sum() - means[r] * means[c]
                for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
            ]
        )
        parts = [means, cov]
        if self.tracks_jumps[i]:
            nu = rates.nu_hz
            e3 = block.jump_pre(nu) * nu if block.jump_pre is not None else torch.zeros_like(nu)
            parts.append(torch.stack([(omega * nu).sum(), (omega * e3).sum()]))
        if self.tracks_deficit[i]:  # E*[w^2 nu (F - 1)] (F = 1 where the pre rates are implicit)
            f1 = factor - 1.0 if factor is not None else torch.zeros_like(rates.nu_hz)
            parts.append((omega * sum(u[len(block.mu_pre) :]) * f1).sum()[None])
        return torch.cat(parts)

    def F(self, x: Tensor) -> Tensor:
        """The map whose fixed point is the self-consistent state (flat, like x)."""
        rates = {name: self.node_rates(x, name) for name in self.populations}
        return torch.cat([self.block_moments(i, rates[b.pre]) for i, b in enumerate(self.blocks)])

    # ------------------------------------------------------------------ starting points, scales, constraints
    def moments_at_rates(self, rate_hz: dict[str, float]) -> Tensor:
        """x for every neuron of each population firing at the given rate (zero covariances)."""
        parts = []
        for b, track, deficit in zip(self.blocks, self.tracks_jumps, self.tracks_deficit, strict=True):
            nu = torch.tensor([rate_hz[b.pre]], dtype=torch.float64)
            means = torch.cat([ud for ud in b.features(nu)])
            parts.append(torch.cat([means, torch.zeros(b.n_unknowns - b.n_features, dtype=torch.float64)]))
            if track:
                parts.append(torch.cat([nu, b.jump_pre(nu) * nu if b.jump_pre is not None else 0 * nu]))
            if deficit:
                parts.append(torch.zeros(1, dtype=torch.float64))
        return torch.cat(parts)

    def _block_feature_scales(self, block: BlockTheory) -> Tensor:
        """Typical size of every feature g_d(nu) nu: its largest magnitude over rates up to 5 x the reference."""
        nu = torch.linspace(0.0, 5 * REFERENCE_RATE_HZ, 101, dtype=torch.float64)
        return torch.stack([ud.abs().max() for ud in block.features(nu)]).clamp(min=1e-9)

    def scales(self) -> Tensor:
        """Typical magnitudes of the unknowns, so that residuals are compared on one footing."""
        parts = []
        top = torch.linspace(0.0, 5 * REFERENCE_RATE_HZ, 101, dtype=torch.float64)
        for i, (s, b, track) in enumerate(zip(self._feature_scales, self.blocks, self.tracks_jumps, strict=True)):
            rows, cols = torch.triu_indices(s.numel(), s.numel())
            parts.append(torch.cat([s, s[rows] * s[cols]]))
            if track:
                w3 = (b.jump_pre(top) * top).abs().max() if b.jump_pre is not None else torch.ones((), dtype=top.dtype)
                parts.append(torch.stack([top[-1], w3.clamp(min=1e-12)]))
            if self.tracks_deficit[i]:
                parts.append(s[len(b.mu_pre) :].sum()[None])
        return torch.cat(parts)

    def project(self, x: Tensor) -> Tensor:
        """Nearest admissible point: non-negative variances and means of w^2-type features, and (blocks of two
        features, the combined 2-D case) a positive semi-definite covariance. Larger covariances may be slightly
        indefinite during the iterations; ``rates_at`` shifts them."""
        out = x.clone()
        for i, block in enumerate(self.blocks):
            m, c = self.block_means_cov(x, i)
            if block.n_features == 2:
                vals, vecs = torch.linalg.eigh(c)
                c = vecs @ torch.diag(vals.clamp(min=0)) @ vecs.T
            else:
                c = c.clone()
                c.diagonal().clamp_(min=0)
            d = block.n_features
            rows, cols = torch.triu_indices(d, d)
            m = torch.cat([m[: len(block.mu_pre)], m[len(block.mu_pre) :].clamp(min=0)])
            extra = x[self.block_slices[i]][rows.numel() + d :]
            if extra.numel() and self.tracks_jumps[i]:
                extra = torch.cat([extra[:1].clamp(min=0), extra[1:]])
            out[self.block_slices[i]] = torch.cat([m, c[rows, cols], extra])
        return out


__all__ = [
    "JITTER_MV2",
    "SIGMA2_SMOOTHING_MV2",
    "BlockTheory",
    "CellInputs",
    "Factor",
    "MeanFieldModel",
    "NodeRates",
    "PopulationTheory",
]
