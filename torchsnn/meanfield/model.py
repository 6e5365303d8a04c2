r"""The self-consistency equations of the mean-field theory (theory §5.2–5.4).

Unknowns: five moments per block a <- b, over a random edge's presynaptic side (rho*):

    m_mu = E*[w nu],  m_sigma = E*[w^2 nu],  s_mu^2 = Var*(w nu),  s_sigma^2 = Var*(w^2 nu),  c = Cov*(w nu, w^2 nu)

with w = f_ab(nu_pre) the (signed) steady-state weight of the block (static: f = J). A neuron of population a
with in-degree vector K receives

    mu      = mu_ext      + tau_m sum_b [K_b m_mu^{ab}    + sqrt(K_b) W_b]
    sigma^2 = sigma_ext^2 + tau_m sum_b [K_b m_sigma^{ab} + sqrt(K_b) Z_b]

with independent (W_b, Z_b) ~ N(0, Sigma^{ab}); so (mu, sigma^2) given K is Gaussian with covariance
tau_m^2 sum_b K_b Sigma^{ab} (one 2x2 Cholesky per degree node; a small jitter handles the rank-one static case).
Its rate is nu = phi_a(mu, sigma) (sigma^2 smoothly floored at a small positive value in the Gaussian tail).
Expectations over (W, Z) use a Gauss–Hermite product rule, over K the degree nodes of ``degrees.py``. The map
x -> F(x) recomputes the moments from the rates; the solver finds x = F(x). Float64 throughout; autograd flows
through phi (analytic derivatives), the Cholesky factors and the weight functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from torchsnn.meanfield.degrees import DegreeNodes
from torchsnn.meanfield.quadrature import gauss_hermite_2d

MOMENT_NAMES = ("m_mu", "m_sigma", "s_mu2", "s_sigma2", "c")
JITTER_MU_MV2 = 1e-10  # added to Var(mu) and Var(sigma^2) before the Cholesky factor
SIGMA2_SMOOTHING_MV2 = 1e-2


@dataclass
class PopulationTheory:
    """What the theory needs about one population: its transfer function, tau_m, drive moments, degree nodes."""

    name: str
    transfer_hz: Callable[[Tensor, Tensor], Tensor]
    tau_m_ms: float
    mu_ext_mv: float
    sigma_ext_mv: float
    nodes: DegreeNodes


@dataclass
class BlockTheory:
    """Block post <- pre: the signed steady-state weight as a function of the presynaptic rate (Hz -> mV)."""

    post: str
    pre: str
    weight_mv: Callable[[Tensor], Tensor]
    static_weight_mv: float | None = None

    @classmethod
    def static(cls, post: str, pre: str, weight_mv: float) -> BlockTheory:
        return cls(post, pre, lambda nu: torch.full_like(nu, weight_mv), weight_mv)


@dataclass
class NodeRates:
    """Rates at the quadrature nodes of one population: nu (n_nodes, n_gauss) and the node weights."""

    nu_hz: Tensor
    mu_mv: Tensor
    sigma_mv: Tensor


class MeanFieldModel:
    """x -> F(x) for a network of populations and blocks. ``x`` is (n_blocks, 5) in the order of ``blocks``."""

    def __init__(
        self,
        populations: list[PopulationTheory],
        blocks: list[BlockTheory],
        gh_order_mu: int = 24,
        gh_order_sigma: int = 6,
    ) -> None:
        self.populations = {p.name: p for p in populations}
        self.blocks = list(blocks)
        self.block_index = {(b.post, b.pre): i for i, b in enumerate(self.blocks)}
        self.gh_order_mu, self.gh_order_sigma = gh_order_mu, gh_order_sigma
        self.gh_nodes, self.gh_weights = gauss_hermite_2d(gh_order_mu, gh_order_sigma)
        self._degree_tensors = {
            name: (torch.as_tensor(p.nodes.k), torch.as_tensor(p.nodes.prob)) for name, p in self.populations.items()
        }

    @property
    def n_unknowns(self) -> int:
        return 5 * len(self.blocks)

    def with_heterogeneity(self, heterogeneity: float) -> MeanFieldModel:
        """The same network with degree nodes moved towards their means (continuation from h = 0)."""
        pops = [replace(p, nodes=p.nodes.scaled(heterogeneity)) for p in self.populations.values()]
        return MeanFieldModel(pops, self.blocks, self.gh_order_mu, self.gh_order_sigma)

    # ------------------------------------------------------------------ the equations
    def input_moments(
        self, x: Tensor, name: str, k: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Given in-degree vectors ``k`` (n, n_inputs; default the degree nodes): mean of mu and sigma^2, and
        Var(mu), Var(sigma^2), Cov(mu, sigma^2), each (n,)."""
        pop = self.populations[name]
        k = self._degree_tensors[name][0] if k is None else k
        tau_s = pop.tau_m_ms * 1e-3
        mu = torch.full((k.shape[0],), pop.mu_ext_mv, dtype=x.dtype)
        s2 = torch.full_like(mu, pop.sigma_ext_mv**2)
        var_mu, var_s2, cov = torch.zeros_like(mu), torch.zeros_like(mu), torch.zeros_like(mu)
        for col, pre in enumerate(pop.nodes.inputs):
            m = x[self.block_index[(name, pre)]]
            kb = k[:, col]
            mu = mu + tau_s * kb * m[0]
            s2 = s2 + tau_s * kb * m[1]
            var_mu = var_mu + tau_s**2 * kb * m[2]
            var_s2 = var_s2 + tau_s**2 * kb * m[3]
            cov = cov + tau_s**2 * kb * m[4]
        return mu, s2, var_mu, var_s2, cov

    def rates_at(self, x: Tensor, name: str, k: Tensor, xi: Tensor, per_neuron: bool = False) -> NodeRates:
        """Rates of neurons with in-degrees ``k`` (n, n_inputs) at standard-normal points ``xi``: (g, 2) shared by
        all n (result (n, g)), or with ``per_neuron`` (n, 2), one point per neuron (result (n, 1))."""
        mu, s2, var_mu, var_s2, cov = self.input_moments(x, name, k)
        l11 = torch.sqrt(var_mu.clamp(min=0) + JITTER_MU_MV2)
        l21 = cov / l11
        l22 = torch.sqrt((var_s2 + JITTER_MU_MV2 - l21**2).clamp(min=JITTER_MU_MV2))
        xi = xi[:, None] if per_neuron else xi[None]
        mu_n = mu[:, None] + l11[:, None] * xi[..., 0]
        s2_n = s2[:, None] + l21[:, None] * xi[..., 0] + l22[:, None] * xi[..., 1]
        s2_n = 0.5 * (s2_n + torch.sqrt(s2_n**2 + SIGMA2_SMOOTHING_MV2**2))
        sigma_n = torch.sqrt(s2_n)
        return NodeRates(self.populations[name].transfer_hz(mu_n, sigma_n), mu_n, sigma_n)

    def node_rates(self, x: Tensor, name: str) -> NodeRates:
        """Rates at every (degree node, Gauss–Hermite node) of population ``name``: (n_nodes, n_gauss)."""
        return self.rates_at(x, name, self._degree_tensors[name][0], self.gh_nodes)

    def node_weights(self, name: str) -> Tensor:
        """Probabilities of the (degree node, Gauss–Hermite node) pairs under rho_K x N(0, 1)^2."""
        return self._degree_tensors[name][1][:, None] * self.gh_weights[None, :]

    def block_moments(self, block: BlockTheory, rates: NodeRates) -> Tensor:
        """The five moments of ``block`` over rho* of its presynaptic population."""
        nodes = self.populations[block.pre].nodes
        star = torch.as_tensor(nodes.star_prob(block.post), dtype=rates.nu_hz.dtype)
        omega = star[:, None] * self.gh_weights[None, :]
        w = block.weight_mv(rates.nu_hz)
        a, b = w * rates.nu_hz, w * w * rates.nu_hz
        m_mu, m_sigma = (omega * a).sum(), (omega * b).sum()
        return torch.stack(
            [
                m_mu,
                m_sigma,
                (omega * a * a).sum() - m_mu**2,
                (omega * b * b).sum() - m_sigma**2,
                (omega * a * b).sum() - m_mu * m_sigma,
            ]
        )

    def F(self, x: Tensor) -> Tensor:
        """The map whose fixed point is the self-consistent state."""
        rates = {name: self.node_rates(x, name) for name in self.populations}
        return torch.stack([self.block_moments(b, rates[b.pre]) for b in self.blocks])

    # ------------------------------------------------------------------ starting points and scales
    def moments_at_rates(self, rate_hz: dict[str, float]) -> Tensor:
        """x for every neuron of each population firing at the given rate (zero variances)."""
        rows = []
        for b in self.blocks:
            nu = torch.tensor([[rate_hz[b.pre]]], dtype=torch.float64)
            w = float(b.weight_mv(nu).squeeze())
            r = rate_hz[b.pre]
            rows.append([w * r, w * w * r, 0.0, 0.0, 0.0])
        return torch.tensor(rows, dtype=torch.float64)

    def scales(self, reference_rate_hz: float = 10.0) -> Tensor:
        """Typical magnitudes of the unknowns, so that residuals are compared on one footing."""
        rows = []
        for b in self.blocks:
            nu = torch.tensor([[reference_rate_hz]], dtype=torch.float64)
            j = max(abs(float(b.weight_mv(nu).squeeze())), 1e-6)
            r = reference_rate_hz
            rows.append([j * r, j * j * r, j * j * r * r, j**4 * r * r, j**3 * r * r])
        return torch.tensor(rows, dtype=torch.float64)
