r"""What the mean-field theory needs about a network (theory §5.2-5.5): its populations (transfer function, drive
moments, degree nodes) and its blocks post <- pre as *features* of the presynaptic rate (``model.py``), plus the
per-cell inputs the model computes from the block moments.

A block a <- b acts on its postsynaptic neuron through D features: feature d adds h_d(nu_post) g_d(nu_pre) nu_pre per
input to mu (a "mu feature") or to sigma^2 (a "sigma feature"). Static weights: g = (J, J^2), h = 1; pre-only rules
g = (f, f^2); separable pre-and-post rules also h = (f_post, f_post^2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from torchsnn.meanfield.degrees import DegreeNodes

Factor = Callable[[Tensor], Tensor]
JITTER_MV2 = 1e-10  # added to Var(mu) and Var(sigma^2) before the Cholesky factor
SIGMA2_SMOOTHING_MV2 = 1e-2


@dataclass
class PopulationTheory:
    """What the theory needs about one population: its transfer function, tau_m, drive moments, degree nodes,
    and the rate ceiling (1 / tau_ref) used to bracket implicit rates. ``ext_lam_hz`` and ``ext_s3_mv3`` are the
    drive's event rate and tau_m sum lambda J^3, used by transfer functions with ``needs_jumps`` (transfers.py)."""

    name: str
    transfer_hz: Callable[[Tensor, Tensor], Tensor]
    tau_m_ms: float
    mu_ext_mv: float
    sigma_ext_mv: float
    nodes: DegreeNodes
    max_rate_hz: float = 1000.0
    ext_lam_hz: float = 0.0
    ext_s3_mv3: float = 0.0

    @property
    def needs_jumps(self) -> bool:
        """Whether the transfer function takes the event rate Lambda and s3 = tau_m sum lambda J^3 (§8.1)."""
        return bool(getattr(self.transfer_hz, "needs_jumps", False))


@dataclass
class BlockTheory:
    """Block post <- pre as features of the presynaptic rate (see the module docstring).

    ``mu_pre[d](nu)`` is the signed weight factor of mu feature d, ``sigma_pre[d](nu)`` the w^2 factor of sigma
    feature d; ``*_post`` the matching post factors (None: 1). ``weight_mv(nu_pre, nu_post)`` is the signed
    steady-state weight (for the predicted weight distribution); ``plastic`` marks plastic blocks. ``jump_pre`` and
    ``jump_post`` factor w^3 (signed) for the jump moments of finite-jump transfer functions (theory §8.1): the
    block then also tracks E*[nu] and E*[jump_pre(nu) nu]."""

    post: str
    pre: str
    mu_pre: list[Factor]
    sigma_pre: list[Factor]
    mu_post: list[Factor | None] = field(default_factory=list)
    sigma_post: list[Factor | None] = field(default_factory=list)
    weight_mv: Callable[[Tensor, Tensor], Tensor] | None = None
    plastic: bool = False
    jump_pre: Factor | None = None
    jump_post: Factor | None = None

    def __post_init__(self) -> None:
        self.mu_post = self.mu_post or [None] * len(self.mu_pre)
        self.sigma_post = self.sigma_post or [None] * len(self.sigma_pre)

    @property
    def n_features(self) -> int:
        return len(self.mu_pre) + len(self.sigma_pre)

    @property
    def n_unknowns(self) -> int:
        d = self.n_features
        return d + d * (d + 1) // 2

    @property
    def post_dependent(self) -> bool:
        return any(h is not None for h in self.mu_post + self.sigma_post)

    def features(self, nu_hz: Tensor) -> list[Tensor]:
        """u_d = g_d(nu) nu for every feature (mu features first)."""
        return [g(nu_hz) * nu_hz for g in self.mu_pre + self.sigma_pre]

    @classmethod
    def static(cls, post: str, pre: str, weight_mv: float) -> BlockTheory:
        return cls(
            post,
            pre,
            [_constant(weight_mv)],
            [_constant(weight_mv**2)],
            weight_mv=lambda a, b: torch.full_like(a, weight_mv),
            jump_pre=_constant(weight_mv**3),
        )

    @classmethod
    def pre_only(cls, post: str, pre: str, f_mv: Factor, sign: float) -> BlockTheory:
        """w = sign f(nu_pre)."""
        return cls(
            post,
            pre,
            [lambda nu: sign * f_mv(nu)],
            [lambda nu: f_mv(nu) ** 2],
            weight_mv=lambda a, b: sign * f_mv(a),
            plastic=True,
            jump_pre=lambda nu: (sign * f_mv(nu)) ** 3,
        )

    @classmethod
    def separable(cls, post: str, pre: str, f_pre_mv: Factor, f_post: Factor, sign: float) -> BlockTheory:
        """w = sign f_pre(nu_pre) f_post(nu_post)."""
        return cls(
            post,
            pre,
            [lambda nu: sign * f_pre_mv(nu)],
            [lambda nu: f_pre_mv(nu) ** 2],
            [f_post],
            [lambda nu: f_post(nu) ** 2],
            weight_mv=lambda a, b: sign * f_pre_mv(a) * f_post(b),
            plastic=True,
            jump_pre=lambda nu: (sign * f_pre_mv(nu)) ** 3,
            jump_post=lambda nu: f_post(nu) ** 3,
        )


def _constant(value: float) -> Factor:
    return lambda nu: torch.full_like(nu, value)


@dataclass
class NodeRates:
    """Rates at the nodes of one population (n_degree_nodes, n_gauss) with the mu and sigma that produced them,
    and how many nodes had more than one stable rate."""

    nu_hz: Tensor
    mu_mv: Tensor
    sigma_mv: Tensor
    multiple_roots: int = 0
    variance_factor: Tensor | None = None  # F of the output trains (regularity.py; None: Poisson, F = 1)


@dataclass
class CellInputs:
    r"""What the block moments give every cell (in-degree vector K) of one population, post-independent part:

        mu0 = mu_ext + tau sum_b K_b m_mu,b         s20 = sigma_ext^2 + tau sum_b K_b m_sigma,b
        (var_mu, var_s2, cov) = tau^2 sum_b K_b (A C_b A^T)   (the covariance of (mu, sigma^2) over the quenched
                                                                 Gaussian fluctuations)
        lam = Lambda_ext + sum_b K_b E*_b[nu],      s3 = s3_ext + tau sum_b K_b E*_b[w^3 nu]   (finite-jump transfers)

    All (n,), linear in the block moments x. ``dependent`` holds (block index, block, K_b, m, C) of post-dependent
    blocks (implicit rates) and ``s3_terms`` their (post factor, tau K E*[w^3 nu]) contributions to s3;
    ``deficit`` (input_statistics = renewal_adiabatic) the change of sigma^2 that the presynaptic trains'
    variance factors F imply, taken as a slow fluctuation of mu (``regularity.py``)."""

    mu0: Tensor
    s20: Tensor
    var_mu: Tensor
    var_s2: Tensor
    cov: Tensor
    lam: Tensor
    s3: Tensor
    dependent: list = field(default_factory=list)
    s3_terms: list = field(default_factory=list)
    deficit: Tensor | None = None  # renewal_adiabatic: tau sum_b K_b E*_b[w^2 nu (F - 1)] (regularity.py)


def cholesky_2d(var_mu: Tensor, var_s2: Tensor, cov: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Lower Cholesky factor (l11, l21, l22) of [[var_mu, cov], [cov, var_s2]] with a small jitter (the static
    rank-one case) and clamps that keep it real during the iterations."""
    l11 = torch.sqrt(var_mu.clamp(min=0) + JITTER_MV2)
    l21 = cov / l11
    l22 = torch.sqrt((var_s2 + JITTER_MV2 - l21**2).clamp(min=JITTER_MV2))
    return l11, l21, l22


def smooth_sqrt(s2: Tensor) -> Tensor:
    """sqrt of a smooth max(s2, 0): sigma^2 from the Gaussian tail may be negative (theory §5.2)."""
    return torch.sqrt(0.5 * (s2 + torch.sqrt(s2**2 + SIGMA2_SMOOTHING_MV2**2)))
