r"""Degree structure as the theory needs it: quadrature nodes over a population's in-degree vector.

For the neurons of population a the theory needs (theory §2, §5.4)

* rho_K: the joint law of the in-degree vector K = (K^{ab})_b over a's input blocks (rate distribution of a);
* rho*_K for every outgoing block c <- a: the same law reweighted by E[L^{ca} | K] / E[L^{ca}], the law of the
  presynaptic neuron at the end of a random edge of that block (moments of that block).

Both are represented by one set of nodes K_j with probabilities p_j (for rho_K) and reweighting factors
g_j^{c} = E[L^{ca} | K_j] / E[L^{ca}] (so rho* has weights p_j g_j^c). Nodes come either from the parametric laws
of the connectivity rules (Gauss rules per block, tensor product across blocks, whose in-degrees are drawn
independently; the copula of a square block a <- a makes g depend on K^{aa}), or from the realised degrees of
a scaffold (neurons binned by the quantiles of each in-degree; cell means of K and of L).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from torchsnn.meanfield.quadrature import discrete_gauss_rule
from torchsnn.scaffold import BlockDegreeLaws, SparseScaffold, conditional_out_mean


@dataclass
class DegreeNodes:
    """Nodes over the in-degree vector of one population.

    Attributes:
        inputs: names of the presynaptic populations, one column of ``k`` each.
        k: (n_nodes, n_inputs) in-degrees at the nodes (float; quadrature nodes need not be integers).
        prob: (n_nodes,) probabilities of rho_K.
        star: for each receiving population c, (n_nodes,) factor E[L^{ca} | K] / E[L^{ca}].
        mean_k: (n_inputs,) exact mean in-degrees (used for continuation towards the homogeneous network).
        sampler: draws in-degree vectors (n, n_inputs) from rho_K, with each draw's rho* factor per receiver
            (E[L | K] / E[L]; importance weights towards rho*), for Monte Carlo distributions.
        cell_of: for exact scaffold cells (one per distinct in-degree vector), the cell of every neuron.
    """

    inputs: list[str]
    k: np.ndarray
    prob: np.ndarray
    star: dict[str, np.ndarray]
    mean_k: np.ndarray
    sampler: Callable[[int, np.random.Generator], tuple[np.ndarray, dict[str, np.ndarray]]]
    cell_of: np.ndarray | None = None

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(k (n, n_inputs), {receiver: rho* factor of each draw})."""
        return self.sampler(n, rng)

    def star_prob(self, receiver: str) -> np.ndarray:
        """Probabilities of rho*_K for the block receiver <- this population."""
        return self.prob * self.star.get(receiver, np.ones_like(self.prob))

    def scaled(self, heterogeneity: float) -> DegreeNodes:
        """Nodes moved towards the mean: K -> mean + h (K - mean) (h = 0: homogeneous; star factors kept)."""
        k = self.mean_k + heterogeneity * (self.k - self.mean_k)
        star = {c: 1.0 + heterogeneity * (g - 1.0) for c, g in self.star.items()}
        return replace(self, k=k, star=star)


def nodes_from_laws(
    population: str, inputs: dict[str, BlockDegreeLaws], outputs: dict[str, BlockDegreeLaws], order: int
) -> DegreeNodes:
    """Parametric nodes for ``population`` from the laws of its input blocks (pre -> laws of population <- pre)
    and output blocks (post -> laws of post <- population), ``order`` Gauss nodes per heterogeneous block."""
    names = list(inputs)
    rules = [discrete_gauss_rule(*inputs[b].in_degree.support(), order) for b in names]
    if names:
        k = np.array(list(itertools.product(*[r[0] for r in rules])), dtype=np.float64).reshape(-1, len(names))
        prob = np.array([np.prod(p) for p in itertools.product(*[r[1] for r in rules])], dtype=np.float64)
    else:
        k, prob = np.zeros((1, 0)), np.ones(1)
    mean_k = np.array([inputs[b].in_degree.mean for b in names], dtype=np.float64)
    star, star_of_k = {}, {}
    for receiver, laws in outputs.items():
        if receiver == population and laws.copula_rho not in (None, 0.0) and population in inputs:
            column = names.index(population)
            support, _ = laws.in_degree.support()
            cond = conditional_out_mean(laws.in_degree, laws.out_degree, laws.copula_rho, support)
            ok = np.isfinite(cond)
            mean_out = float(laws.out_degree.mean)

            def factor(kk: np.ndarray, s=support[ok], c=cond[ok], m=mean_out) -> np.ndarray:
                return np.interp(kk, s, c) / m

            g = factor(k[:, column])
            star[receiver] = g / np.dot(prob, g)
            star_of_k[receiver] = (column, factor)
    in_laws = [inputs[b].in_degree for b in names]

    def sampler(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        kk = np.stack([law.sample(n, rng) for law in in_laws], -1).astype(np.float64) if in_laws else np.zeros((n, 0))
        weights = {c: f(kk[:, col]) for c, (col, f) in star_of_k.items()}
        return kk, {c: weights.get(c, np.ones(n)) for c in outputs}

    return DegreeNodes(names, k, prob, star, mean_k, sampler)


def nodes_from_scaffold(scaffold: SparseScaffold, population: str, bins: int) -> DegreeNodes:
    """Empirical nodes: neurons of ``population`` binned by ``bins`` quantiles of each in-degree; each cell gives
    its mean in-degree vector, its share of neurons and its mean out-degree towards every receiver.

    ``bins <= 0``: exact cells, one per distinct in-degree vector (the rate of a neuron depends on its in-degrees
    only, and rho* is linear in the out-degrees, so the cell means of L make the distributional theory exact for
    the realised scaffold, theory §8.4). ``DegreeNodes.cell_of`` then maps every neuron to its cell."""
    in_deg = {pre: d.numpy().astype(np.float64) for pre, d in scaffold.in_degrees(population).items() if d.sum() > 0}
    out_deg = {
        post: d.numpy().astype(np.float64) for post, d in scaffold.out_degrees(population).items() if d.sum() > 0
    }
    names = list(in_deg)
    n = scaffold.populations[population]
    codes = np.zeros(n, dtype=np.int64)
    if bins <= 0:
        table = np.stack([in_deg[p] for p in names], -1) if names else np.zeros((n, 1))
        _, codes = np.unique(table, axis=0, return_inverse=True)
        codes = codes.ravel()
    for pre in names if bins > 0 else []:
        edges = np.unique(np.quantile(in_deg[pre], np.linspace(0, 1, bins + 1)[1:-1]))
        codes = codes * (bins + 1) + np.searchsorted(edges, in_deg[pre], side="right")
    cells, cell_of = np.unique(codes, return_inverse=True)
    cell_of = cell_of.ravel()
    count = np.bincount(cell_of, minlength=cells.size).astype(np.float64)
    k = (
        np.stack([np.bincount(cell_of, in_deg[p], cells.size) / count for p in names], -1)
        if names
        else np.zeros((cells.size, 0))
    )
    star = {post: (np.bincount(cell_of, d, cells.size) / count) / d.mean() for post, d in out_deg.items()}
    mean_k = np.array([in_deg[p].mean() for p in names])
    table = np.stack([in_deg[p] for p in names], -1) if names else np.zeros((n, 0))

    def sampler(m: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        pick = rng.integers(0, n, size=m)
        return table[pick], {post: d[pick] / d.mean() for post, d in out_deg.items()}

    return DegreeNodes(names, k, count / n, star, mean_k, sampler, cell_of if bins <= 0 else None)
