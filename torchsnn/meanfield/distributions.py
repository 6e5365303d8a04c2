"""Predicted distributions of rates and of plastic weights at a solved fixed point (theory §5.3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from torchsnn.meanfield.model import MeanFieldModel


@dataclass
class Distribution:
    """A predicted law: ``mean``/``std`` (exact quadrature values for rates, Monte Carlo for weights) and Monte
    Carlo ``samples`` for the median, CDF, density and comparisons. Rates in Hz, weights in mV."""

    name: str
    mean: float
    std: float
    samples: np.ndarray
    unit: str = "hz"

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    def cdf(self, value: np.ndarray) -> np.ndarray:
        s = np.sort(self.samples)
        return np.searchsorted(s, value, side="right") / s.size

    def with_counting_noise(self, window_s: float, rng: np.random.Generator) -> np.ndarray:
        """Rate samples as a window of ``window_s`` measures them: Poisson counts of mean nu T, divided by T."""
        return rng.poisson(self.samples * window_s) / window_s

    def summary(self) -> dict[str, float]:
        u = self.unit
        key = "rate" if u == "hz" else "weight"
        return {
            f"{key}_mean_{u}": self.mean,
            f"{key}_std_{u}": self.std,
            f"{key}_median_{u}": self.median,
            "n_samples": int(self.samples.size),
        }


@dataclass
class PopulationSamples:
    """Monte Carlo neurons of one population: rates, in-degrees, rho* factors per receiver."""

    rates_hz: np.ndarray
    k: np.ndarray
    star: dict[str, np.ndarray]


def sample_population(
    model: MeanFieldModel, x: torch.Tensor, name: str, n: int, rng: np.random.Generator, chunk: int = 50_000
) -> PopulationSamples:
    """Draw ``n`` neurons of population ``name`` (K from the degree law or the realised degrees; the Gaussian
    fluctuations from N(0, I)) and compute their rates at the fixed point ``x``."""
    k, star = model.populations[name].nodes.sample(n, rng)
    dim = model._gauss[name][0].shape[1]
    xi = rng.standard_normal((n, dim))
    parts = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            r = model.rates_at(x, name, torch.as_tensor(k[sl]), torch.as_tensor(xi[sl]), per_neuron=True)
            parts.append(r.nu_hz[:, 0].numpy())
    return PopulationSamples(np.concatenate(parts) if parts else np.zeros(0), k, star)


def rate_distribution(model: MeanFieldModel, x: torch.Tensor, samples: PopulationSamples, name: str) -> Distribution:
    """The law of nu over population ``name`` (K ~ rho_K)."""
    with torch.no_grad():
        nu = model.node_rates(x, name).nu_hz
        w = model.node_weights(name)
        mean = float((w * nu).sum())
        std = float(((w * (nu - mean) ** 2).sum()).clamp(min=0).sqrt())
    return Distribution(name, mean, std, samples.rates_hz)


def weight_distribution(
    model: MeanFieldModel, block_index: int, samples: dict[str, PopulationSamples], rng: np.random.Generator
) -> Distribution:
    """The law of |w| over the edges of a plastic block: the presynaptic neuron of a random edge is drawn from
    rho* (out-degree weighted), the postsynaptic one in proportion to its in-degree from that block."""
    block = model.blocks[block_index]
    pre, post = samples[block.pre], samples[block.post]
    n = pre.rates_hz.size
    w_pre = pre.star.get(block.post, np.ones(n))
    column = model.populations[block.post].nodes.inputs.index(block.pre)
    w_post = post.k[:, column]
    i = rng.choice(n, size=n, p=w_pre / w_pre.sum())
    j = rng.choice(post.rates_hz.size, size=n, p=w_post / w_post.sum())
    with torch.no_grad():
        w = block.weight_mv(torch.as_tensor(pre.rates_hz[i]), torch.as_tensor(post.rates_hz[j])).abs().numpy()
    return Distribution(f"{block.post}<-{block.pre}", float(w.mean()), float(w.std()), w, unit="mv")


def neuron_rates(
    model: MeanFieldModel,
    x: torch.Tensor,
    name: str,
    k: np.ndarray,
    levels: int | None = None,
    chunk: int = 20000,
) -> np.ndarray:
    """Predicted mean rate of each neuron given its realised in-degree vector ``k`` (n, n_inputs): the average over
    the Gaussian fluctuations of its inputs, by the population's own Gaussian rule, at the neuron's own in-degrees
    (neurons share the evaluation of identical degree vectors). Where rates are implicit (a root search per node)
    a coarse Gaussian rule serves and, by default, an input with more than 64 distinct in-degrees is first binned
    into 64 quantile bins (each neuron gets the value at its bin's mean in-degree); ``levels`` sets that binning
    for every population (None: none where rates are explicit). Used for initial conditions and per-neuron
    comparisons."""
    k = np.asarray(k, dtype=np.float64)
    implicit = model.has_implicit_rates(name)
    levels = (64 if implicit else None) if levels is None else levels
    binned = k.copy()
    for col in range(k.shape[1] if levels else 0):
        if np.unique(k[:, col]).size > levels:
            edges = np.unique(np.quantile(k[:, col], np.linspace(0, 1, levels + 1)[1:-1]))
            cell = np.searchsorted(edges, k[:, col], side="right")
            means = np.bincount(cell, k[:, col]) / np.maximum(np.bincount(cell), 1)
            binned[:, col] = means[cell]
    rows, inverse = np.unique(binned, axis=0, return_inverse=True)
    xi, weights = model._gaussian_rule(name, coarse=implicit)
    out = []
    with torch.no_grad():
        for start in range(0, rows.shape[0], chunk):
            kk = torch.as_tensor(rows[start : start + chunk])
            out.append((model.rates_at(x, name, kk, xi).nu_hz * weights).sum(-1).numpy())
    values = np.concatenate(out) if out else np.zeros(0)
    return values[inverse.ravel()]
