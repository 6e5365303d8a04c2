"""The Jacobian of the mean-field map (torchsnn.meanfield.jacobian: chain rule over the per-cell inputs) and the
stability report built from it: against reverse-mode autograd through F, and against an eigenvalue known in closed
form (a linear transfer function)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mf_helpers import compose_plain, one_torch_thread  # noqa: F401  (autouse fixture)

from torchsnn.config.theory_builder import model_from_config
from torchsnn.meanfield.degrees import DegreeNodes
from torchsnn.meanfield.jacobian import has_explicit_rates, value_and_jacobian
from torchsnn.meanfield.model import BlockTheory, MeanFieldModel, PopulationTheory
from torchsnn.meanfield.solver import FixedPointProblem, solve
from torchsnn.meanfield.transfers import first_order_transfers

TAU_MS = 20.0


def autograd_jacobian(model: MeanFieldModel, x: torch.Tensor) -> torch.Tensor:
    """dF/dx by one reverse pass per row through F (the solver's route for implicit rates)."""
    xv = x.clone().requires_grad_(True)
    with torch.enable_grad(), first_order_transfers():
        f = model.F(xv)
        (jac,) = torch.autograd.grad(f, xv, torch.eye(f.numel(), dtype=f.dtype), is_grads_batched=True)
    return jac


def relaxed_state(model: MeanFieldModel) -> torch.Tensor:
    """A state off the fixed point with non-zero covariances: one half relaxation step from 4 Hz everywhere."""
    x = model.moments_at_rates({name: 4.0 for name in model.populations})
    with torch.no_grad():
        return model.project(0.5 * x + 0.5 * model.F(x))


@pytest.mark.parametrize(
    "overrides",
    [
        ("+experiment=hetero_static", "scaffold.r=0.5"),  # finite-jump transfer: tracks Lambda and s3
        ("+experiment=hetero_static", "scaffold.r=-0.5", "neuron.transfer=siegert"),
        ("+experiment=plastic_pre",),  # pre-only plastic E<-E block: features f(nu) nu, f(nu)^2 nu
        ("+experiment=brunel_ai",),
    ],
)
def test_chain_rule_jacobian_equals_autograd(overrides):
    model = model_from_config(compose_plain(*overrides))
    assert has_explicit_rates(model)
    x = relaxed_state(model)
    f, jac = value_and_jacobian(model, x)
    with torch.no_grad():
        assert torch.equal(f, model.F(x))  # the value is the value-only path's, bit for bit
    ref = autograd_jacobian(model, x)
    # both are exact first derivatives of the same float64 map: they differ by rounding only (measured <= 1e-13)
    assert float((jac - ref).abs().max()) <= 1e-10 * float(ref.abs().max())


def test_implicit_rates_keep_autograd():
    model = model_from_config(compose_plain("+experiment=plastic_prepost"))
    assert not has_explicit_rates(model)
    assert not FixedPointProblem(model, model.scales()).analytic


# ----------------------------------------------------------------------------------------------- closed form
A_HZ, B_HZ_PER_MV, C_HZ_PER_MV2 = 5.0, 0.5, 0.05  # nu = a + b (mu - 15 mV) + c sigma^2


def linear_transfer(mu_mv: torch.Tensor, sigma_mv: torch.Tensor, *jumps: torch.Tensor) -> torch.Tensor:
    return A_HZ + B_HZ_PER_MV * (mu_mv - 15.0) + C_HZ_PER_MV2 * sigma_mv**2


def linear_model(j_mv: float) -> tuple[MeanFieldModel, float]:
    """One population, one static block A <- A of weight J, two degree cells (K = 80, 120, each half the neurons)
    with rho* factors 0.8, 1.2 (E*[K] = 104)."""
    k, prob, star = np.array([[80.0], [120.0]]), np.array([0.5, 0.5]), np.array([0.8, 1.2])

    def sampler(n, rng):  # not used by the solve
        raise NotImplementedError

    nodes = DegreeNodes(["A"], k, prob, {"A": star}, np.array([100.0]), sampler)
    pop = PopulationTheory("A", linear_transfer, TAU_MS, 15.0, 4.0, nodes)
    return MeanFieldModel([pop], [BlockTheory.static("A", "A", j_mv)]), float(np.dot(prob * star, k[:, 0]))


@pytest.mark.parametrize("j_mv", [0.2, -0.3])
def test_eigenvalues_of_a_linear_transfer_are_analytic(j_mv):
    # u = (J nu, J^2 nu) and E_xi[nu] = a + b (mu0 - 15) + c s20 (the Gauss-Hermite rule is exact for linear nu):
    # the means map m -> (J, J^2) [a + ... + tau K_* (b m_mu + c m_sigma)] is rank one with eigenvalue
    # lambda = tau E*[K] (b J + c J^2) (and 0); the covariance C enters only through E*[Var_xi nu] =
    # tau^2 E*[K] (b, c) C (b, c)^T, so the C block is rank one with eigenvalue tau^2 E*[K] (b J + c J^2)^2 =
    # lambda^2 / E*[K] (and 0, 0). The degree spread feeds C from m but not back: triangular, so these five are all.
    model, k_star = linear_model(j_mv)
    tau = TAU_MS * 1e-3
    lam = tau * k_star * (B_HZ_PER_MV * j_mv + C_HZ_PER_MV2 * j_mv**2)
    expected = np.sort(np.array([lam, lam**2 / k_star, 0.0, 0.0, 0.0]))
    result = solve(model)
    assert result.converged
    got = np.sort(result.eigenvalues.real)
    # sigma = sqrt of a smooth max(sigma^2, 0): c sigma^2 is linear in s2 up to eps^2 / (4 s2^2) ~ 1e-6 relative
    np.testing.assert_allclose(got, expected, atol=1e-6 * abs(lam))
    assert np.abs(result.eigenvalues.imag).max() < 1e-9
    lead = result.diagnostics()["leading_eigenvalues"][0][0]
    assert lead == pytest.approx(max(expected), abs=1e-6)
