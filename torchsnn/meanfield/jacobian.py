r"""The Jacobian of the mean-field map x -> F(x) where every rate is explicit (no post-dependent block), without a
reverse pass per unknown through every point's transfer function (theory §5.2-5.4).

F collects, block after block, moments over rho* of features of the presynaptic rates at the (cell c, Gaussian node
g) points of the presynaptic population. A point's rate depends on x only through its cell's inputs
q_c = (mu0, s20, var_mu, var_s2, cov[, lam, s3]) (``blocks.CellInputs``), which are linear in x:

    nu_cg = T(mu_cg, sqrt~(s2_cg)[, lam_c, s3_c]),   mu_cg = mu0_c + l11_c xi_g0,
    s2_cg = s20_c + l21_c xi_g0 + l22_c xi_g1,       (l11, l21, l22) = chol([[var_mu, cov], [cov, var_s2]]),

so that, with the chain rule over these few per-cell quantities,

    dF/dx = sum_c (dF/dq_c) (dq_c/dx),    dF/dq_c = sum_g (dF/dnu_cg) (dnu_cg/dq_c).

* dnu_cg/dq_c: the partials of T at each point (one reverse pass of sum(nu) through the elementwise transfer:
  every output depends on its own inputs only, so the gradient holds each point's own partials; on the CPU the
  compiled kernel gives the value and analytic first derivatives, ``transfers.first_order_transfers``), times the
  Cholesky map (xi_g, and dl/d(var_mu, var_s2, cov) per cell);
* dF/dnu_cg: one batched pass per block through its moments (elementwise in nu, then sums);
* dq_c/dx = sum_b K_cb dh_b/dx: the cell inputs are bilinear in (K, x), so dh/dx comes from cells with unit
  in-degree (``unit_input_jacobian``).

The work per point is one transfer evaluation with its first derivatives; the value F(x) comes from the same
evaluation (the first-order path's value is the compiled kernel's, as for a value-only call).
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchsnn.meanfield.blocks import CellInputs, NodeRates, PopulationTheory, cholesky_2d, smooth_sqrt
from torchsnn.meanfield.model import MeanFieldModel
from torchsnn.meanfield.transfers import first_order_transfers


def has_explicit_rates(model: object) -> bool:
    """Whether ``model`` is a ``MeanFieldModel`` whose rates are all explicit functions of x (no post-dependent
    input block); other maps (duck-typed problems) take autograd."""
    return isinstance(model, MeanFieldModel) and not any(model.has_implicit_rates(n) for n in model.populations)


def has_poisson_inputs(model: MeanFieldModel) -> bool:
    """Whether every presynaptic train counts as Poisson (``meanfield.input_statistics = poisson``). The chain rule
    here covers that case only: with ``renewal`` the variance factor F of each presynaptic point multiplies the
    sigma features (a second per-point output besides nu), and ``renewal_adiabatic`` adds a tracked moment and the
    adiabatic rate's dependence on the per-cell deficit (``regularity.py``); those models take autograd."""
    return not any(hasattr(p.transfer_hz, "variance_factor") for p in model.populations.values())


def chain_rule_applies(model: object) -> bool:
    """Whether :func:`value_and_jacobian` gives dF/dx of ``model``: explicit rates and Poisson input statistics."""
    return has_explicit_rates(model) and has_poisson_inputs(model)


def _leaf(t: Tensor) -> Tensor:
    return t.detach().clone().requires_grad_(True)


def _grads(outputs: Tensor, inputs: list[Tensor]) -> list[Tensor]:
    """d sum(outputs) / d input for each input (zeros where unused)."""
    got = torch.autograd.grad(outputs.sum(), inputs, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(got, inputs, strict=True)]


def point_rates_and_partials(pop: PopulationTheory, cells: CellInputs, xi: Tensor) -> tuple[Tensor, Tensor]:
    """Rates nu (n, g) at the points of the Gaussian rule ``xi`` (g, 2) and d nu / d q (n, g, n_q), q as in the
    module docstring (lam and s3 only for transfer functions that need jumps)."""
    var = [_leaf(t) for t in (cells.var_mu, cells.var_s2, cells.cov)]
    with torch.enable_grad():
        factor = cholesky_2d(*var)
        d_factor = torch.stack([torch.stack(_grads(f, var), -1) for f in factor], 1)  # (n, 3 factors, 3 vars)
    l11, l21, l22 = (f.detach() for f in factor)
    x0, x1 = xi[None, :, 0], xi[None, :, 1]
    mu_n = _leaf(cells.mu0.detach()[:, None] + l11[:, None] * x0)
    s2_n = _leaf(cells.s20.detach()[:, None] + l21[:, None] * x0 + l22[:, None] * x1)
    jumps = [_leaf(t.detach()[:, None].expand_as(mu_n)) for t in (cells.lam, cells.s3)] if pop.needs_jumps else []
    with torch.enable_grad(), first_order_transfers():
        nu = pop.transfer_hz(mu_n, smooth_sqrt(s2_n), *jumps)
        g_mu, g_s2, *g_jumps = _grads(nu, [mu_n, s2_n, *jumps])
    d_factor_point = torch.stack([g_mu * x0, g_s2 * x0, g_s2 * x1], -1)  # d nu / d (l11, l21, l22): (n, g, 3)
    d_var = torch.einsum("cgr,crv->cgv", d_factor_point, d_factor)  # d nu / d (var_mu, var_s2, cov)
    return nu.detach(), torch.cat([torch.stack([g_mu, g_s2], -1), d_var, *[g[..., None] for g in g_jumps]], -1)


def moment_derivatives(model: MeanFieldModel, i: int, nu: Tensor, moments: Tensor) -> Tensor:
    """d F_i / d nu (n_i, n, g): block i's moments (``model.block_moments``: means m = sum omega u, covariance
    entries sum omega u_r u_c - m_r m_c, jump sums sum omega nu, sum omega w^3 nu) differentiated point by point,
    with the features' derivatives u'(nu) from one elementwise pass each."""
    block = model.blocks[i]
    nodes = model.populations[block.pre].nodes
    star = torch.as_tensor(nodes.star_prob(block.post), dtype=torch.float64)
    omega = star[:, None] * model._gauss[block.pre][1][None, :]
    nu_leaf = _leaf(nu)
    with torch.enable_grad():
        u = block.features(nu_leaf)
        du = [_grads(ud, [nu_leaf])[0] for ud in u]
        if model.tracks_jumps[i] and block.jump_pre is not None:
            (de3,) = _grads(block.jump_pre(nu_leaf) * nu_leaf, [nu_leaf])
        else:
            de3 = torch.zeros_like(nu)
    u = [ud.detach() for ud in u]
    d = len(u)
    means = moments[:d]
    rows = [omega * g for g in du]
    r_idx, c_idx = torch.triu_indices(d, d)
    for r, c in zip(r_idx.tolist(), c_idx.tolist(), strict=True):
        rows.append(omega * (du[r] * (u[c] - means[c]) + (u[r] - means[r]) * du[c]))
    if model.tracks_jumps[i]:
        rows += [omega, omega * de3]
    return torch.stack(rows)


def value_and_jacobian(model: MeanFieldModel, x: Tensor) -> tuple[Tensor, Tensor]:
    """F(x) (N,) and dF/dx (N, N) for a model with explicit rates and Poisson inputs (``chain_rule_applies``)."""
    if not chain_rule_applies(model):
        raise ValueError("value_and_jacobian: the chain rule covers explicit rates with Poisson inputs; use autograd")
    xv = _leaf(x)
    values = [torch.zeros(s.stop - s.start, dtype=x.dtype) for s in model.block_slices]
    jac = torch.zeros(x.numel(), x.numel(), dtype=x.dtype)
    for name, pop in model.populations.items():
        outgoing = [i for i, b in enumerate(model.blocks) if b.pre == name]
        if not outgoing:
            continue
        with torch.no_grad():
            cells = model.cell_inputs(x, name, model._degree_tensors[name][0])
        nu, d_nu_dq = point_rates_and_partials(pop, cells, model._gauss[name][0])
        d_h = unit_input_jacobian(model, xv, name, d_nu_dq.shape[-1])
        for i in outgoing:
            values[i] = model.block_moments(i, NodeRates(nu, nu, nu))
            if not model.populations[name].nodes.inputs:
                continue
            d_f_dnu = moment_derivatives(model, i, nu, values[i])
            d_f_dq = torch.einsum("ocg,cgk->ock", d_f_dnu, d_nu_dq)  # (n_i, n, n_q)
            d_f_dh = torch.einsum("ock,cb->obk", d_f_dq, model._degree_tensors[name][0])  # per unit in-degree
            jac[model.block_slices[i]] = torch.einsum("obk,bkm->om", d_f_dh, d_h)
    return torch.cat(values), jac


def unit_input_jacobian(model: MeanFieldModel, xv: Tensor, name: str, n_q: int) -> Tensor:
    """d h_bk / dx (n_inputs, n_q, N): the cell inputs are q_k = q_ext,k + sum_b K_b h_bk(x) with h linear in x,
    so h is read off cells with unit in-degree from one input each (one scalar reverse pass per entry through the
    few (n_inputs,)-sized sums; no batched gradient, whose first use imports sympy, ~1 s of a cold start)."""
    n_in = len(model.populations[name].nodes.inputs)
    out = torch.zeros(n_in, n_q, xv.numel(), dtype=xv.dtype)
    with torch.enable_grad():
        unit = model.cell_inputs(xv, name, torch.eye(n_in, dtype=xv.dtype))
        q = [unit.mu0, unit.s20, unit.var_mu, unit.var_s2, unit.cov, unit.lam, unit.s3][:n_q]
        for k, t in enumerate(q):
            for b in range(n_in if t.requires_grad else 0):
                (g,) = torch.autograd.grad(t[b], xv, retain_graph=True, allow_unused=True)
                out[b, k] = 0.0 if g is None else g
    return out


__all__ = [
    "chain_rule_applies",
    "has_explicit_rates",
    "has_poisson_inputs",
    "point_rates_and_partials",
    "unit_input_jacobian",
    "value_and_jacobian",
]
