"""A VAE for counts (scVI) on real single-cell data.

Introduced in ``bonus/Counts_VAE.ipynb``: section 1 reads the data
(:func:`load_pbmc`), section 2 writes the count log-likelihoods and the
model (:class:`CountsVAE`) in full and checks them against this module,
section 3 trains it (:func:`train`), and sections 4-7 evaluate it
(:func:`marginal_log_likelihood`, :func:`latent_metrics`,
:func:`sample_counts`). The settings follow scvi-tools' ``SCVI`` defaults
(Lopez et al., Nature Methods 2018); the code is written here from the paper
and the defaults, not copied.

Shapes: ``counts`` is ``(n_cells, n_genes)``, one row per cell; latent
points are ``(n_cells, n_latent)``.
"""

import math
import time
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from .._utils import (
    check_choice,
    check_float,
    check_int,
    data_path,
    one_thread,
    progress_bar,
)

LIKELIHOODS = ("zinb", "nb", "poisson", "gaussian")
COUNTS_FILE = "pbmc68k_counts.npz"
CELLS_FILE = "pbmc68k_cells.csv"


# --- data ----------------------------------------------------------------------


class CountData(NamedTuple):
    """The PBMC counts: ``counts`` (n_cells, n_genes) float32 tensor of whole
    numbers, ``cells`` a DataFrame (barcode, bulk_labels, louvain, n_counts),
    ``genes`` the gene names."""

    counts: torch.Tensor
    cells: pd.DataFrame
    genes: list


def rebuild_counts(log_normalised, n_counts):
    """UMI counts from scanpy's ``log1p(counts * 1e4 / n_counts)``.

    Args:
        log_normalised: ``(n_cells, n_genes)`` array, ``adata.raw.X``.
        n_counts: ``(n_cells,)`` each cell's total count, ``obs["n_counts"]``.

    Returns:
        ``(n_cells, n_genes)`` int64 array.
    """
    values = np.asarray(log_normalised, dtype=np.float64)
    totals = np.asarray(n_counts, dtype=np.float64)[:, None]
    unrounded = np.expm1(values) * totals / 1e4
    counts = np.rint(unrounded)
    distance = np.abs(unrounded - counts).max()
    if distance > 0.25:
        raise ValueError(
            f"log_normalised is not log1p(counts * 1e4 / n_counts) of whole numbers: "
            f"a value lies {distance:.2f} from the nearest integer (allowed: 0.25)"
        )
    return counts.astype(np.int64)


def counts_from_scanpy():
    """Rebuild the counts from scanpy's bundled ``pbmc68k_reduced`` (needs scanpy).

    Returns:
        ``(counts, cells, genes)``: int64 array (700, 765), DataFrame, names.
    """
    import scanpy  # only for rebuilding data/; not a dependency of the bundle

    adata = scanpy.datasets.pbmc68k_reduced()
    raw = adata.raw.X
    raw = raw.toarray() if hasattr(raw, "toarray") else np.asarray(raw)
    counts = rebuild_counts(raw, adata.obs["n_counts"].to_numpy())
    cells = pd.DataFrame({
        "barcode": adata.obs_names.to_numpy(),
        "bulk_labels": adata.obs["bulk_labels"].astype(str).to_numpy(),
        "louvain": adata.obs["louvain"].astype(int).to_numpy(),
        "n_counts": adata.obs["n_counts"].to_numpy(),
    })
    return counts, cells, list(adata.raw.var_names)


def load_pbmc():
    """Read the shipped counts ``data/pbmc68k_counts.npz`` and cell table.

    Returns:
        A :class:`CountData` with 700 cells and 765 genes.
    """
    with np.load(data_path(COUNTS_FILE)) as stored:
        counts = torch.from_numpy(stored["counts"].astype(np.float32))
        genes = stored["genes"].tolist()
    cells = pd.read_csv(data_path(CELLS_FILE))
    return CountData(counts, cells, genes)  # shipped whole numbers, tested


def check_counts(counts):
    """Return ``counts`` as a float32 tensor, or raise if they are not counts.

    Args:
        counts: ``(n_cells, n_genes)`` whole numbers >= 0, every cell with a
            positive total (its library size).
    """
    tensor = torch.as_tensor(counts)
    if tensor.dim() != 2 or 0 in tensor.shape:
        raise ValueError(
            "counts must be a 2-D (n_cells, n_genes) array with at least one "
            f"cell and gene, got shape {tuple(tensor.shape)}"
        )
    tensor = tensor.to(torch.float32)
    problems = (
        (~torch.isfinite(tensor), "is not finite"),
        (tensor < 0, "is negative"),
        (tensor != torch.round(tensor), "is not a whole number"),
    )
    for bad, what in problems:
        if bad.any():
            cell, gene = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"counts[{cell}, {gene}] = {tensor[cell, gene].item()} {what}; "
                "counts must be whole numbers >= 0"
            )
    empty = (tensor.sum(1) == 0).nonzero()
    if len(empty):
        raise ValueError(
            f"cell {int(empty[0])} of counts has library size 0 (no counts in any "
            "gene); every cell needs at least one count: drop such cells first"
        )
    return tensor


def stratified_split(labels, heldout_share=0.1, seed=0):
    """Hold out about ``heldout_share`` of the cells of each label.

    Args:
        labels: ``(n_cells,)`` labels of any kind.
        heldout_share: share of each label's cells held out, in (0, 1).
        seed: seed of the shuffle.

    Returns:
        ``(train, heldout)``: sorted int64 index tensors.
    """
    share = check_float("heldout_share", heldout_share, minimum=0.0, strict=True)
    if share >= 1:
        raise ValueError(f"heldout_share must be in (0, 1), got {heldout_share!r}")
    codes = _codes(labels)
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    heldout = []
    for code in range(int(codes.max()) + 1):
        members = (codes == code).nonzero().flatten()
        order = members[torch.randperm(len(members), generator=generator)]
        heldout.append(order[: round(share * len(members))])
    heldout = torch.sort(torch.cat(heldout)).values
    train = torch.ones(len(codes), dtype=torch.bool)
    train[heldout] = False
    return train.nonzero().flatten(), heldout


def log_normalise(counts, target=1e4):
    """``log1p(counts / library * target)``, the biologist's first transform."""
    return torch.log1p(counts / counts.sum(1, keepdim=True) * target)


# --- log-likelihoods, each (n_cells, n_genes) ------------------------------------


def _where_positive(x, values):
    """``values(x_flat, index)`` placed where ``x > 0``, zero elsewhere.

    ``index`` holds the flat positions of the positive entries of ``x`` and
    ``x_flat`` is ``x`` flattened. The log-gamma terms below are exactly 0 at a
    zero count, and most counts are zero (two thirds in the PBMC data), so
    computing them (and, in the backward pass, their digamma derivatives) at
    the positive counts only saves most of their cost without changing any
    value.
    """
    x_flat = x.reshape(-1)
    index = (x_flat > 0).nonzero().squeeze(1)
    picked = values(x_flat.index_select(0, index), index)
    return torch.zeros(x_flat.shape, dtype=picked.dtype, device=x.device).index_put(
        (index,), picked).reshape(x.shape)


def _log_gamma_ratio(x, dispersion):
    """``lgamma(x + dispersion) - lgamma(dispersion) - lgamma(x + 1)``."""
    log_gamma = torch.lgamma(dispersion)  # at its own shape: once per gene
    x, dispersion, log_gamma = torch.broadcast_tensors(x, dispersion, log_gamma)

    def values(positive, index):
        theta = dispersion.reshape(-1).index_select(0, index)
        return (torch.lgamma(positive + theta)
                - log_gamma.reshape(-1).index_select(0, index)
                - torch.lgamma(positive + 1))

    return _where_positive(x, values)


def nb_log_prob(x, mean, dispersion):
    """Negative binomial log-probability with mean ``mean`` and inverse
    dispersion ``dispersion`` (variance ``mean + mean**2 / dispersion``).
    All arguments broadcast: a ``(n_genes,)`` dispersion is cheapest."""
    log_total = torch.log(dispersion + mean)
    return (dispersion * (torch.log(dispersion) - log_total)
            + x * (torch.log(mean) - log_total)
            + _log_gamma_ratio(x, dispersion))


def zinb_log_prob(x, mean, dispersion, zero_logits):
    """Zero-inflated NB: an extra zero with probability ``sigmoid(zero_logits)``."""
    nb = nb_log_prob(x, mean, dispersion)
    log_not_extra = -nn.functional.softplus(zero_logits)  # log(1 - pi)
    at_zero = torch.logaddexp(zero_logits, nb) + log_not_extra
    return torch.where(x == 0, at_zero, nb + log_not_extra)


def poisson_log_prob(x, mean):
    """Poisson log-probability."""
    x = torch.broadcast_tensors(x, mean)[0]
    return x * torch.log(mean) - mean - _where_positive(
        x, lambda positive, index: torch.lgamma(positive + 1))


def _log_one_minus_exp(a):
    """``log(1 - exp(a))`` for ``a <= 0``, accurate at both ends."""
    return torch.where(a > -math.log(2), torch.log(-torch.expm1(a)),
                       torch.log1p(-torch.exp(a)))


def discretised_gaussian_log_prob(x, mean, log_sd):
    """Gaussian on ``log1p(x)``, made a count distribution: the probability
    that ``log1p(y)`` with ``y ~`` the Gaussian falls in the bin of count ``x``,
    ``[log1p(x - 1/2), log1p(x + 1/2))`` (from minus infinity for ``x = 0``)."""
    sd = torch.exp(log_sd)
    upper = (torch.log1p(x + 0.5) - mean) / sd
    lower = (torch.log1p((x - 0.5).clamp(min=-0.4)) - mean) / sd  # finite at 0
    flip = lower > 0  # both in the right tail: use 1 - Phi for accuracy
    high = torch.where(flip, -lower, upper)
    low = torch.where(flip, -upper, lower)
    log_high = torch.special.log_ndtr(high)
    between = log_high + _log_one_minus_exp(torch.special.log_ndtr(low) - log_high)
    return torch.where(x == 0, torch.special.log_ndtr(upper), between)


def kl_to_standard_normal(mean, variance):
    """KL(N(mean, variance) || N(0, 1)) summed over the latent axis, (n_cells,)."""
    return 0.5 * (variance + mean**2 - 1 - torch.log(variance)).sum(-1)


# --- the model -------------------------------------------------------------------


class CountsVAE(nn.Module):
    """scVI's VAE: log1p counts in, a count distribution per gene out.

    Args:
        n_genes: genes per cell.
        n_hidden: units of the one hidden layer (encoder and decoder).
        n_latent: latent dimensions.
        likelihood: ``"zinb"``, ``"nb"``, ``"poisson"`` or ``"gaussian"``
            (a Gaussian on log1p counts, see :func:`discretised_gaussian_log_prob`).
        dropout: dropout rate after the encoder's hidden layer.
        seed: seed of the initial weights.
    """

    def __init__(self, n_genes, n_hidden=128, n_latent=10, likelihood="zinb",
                 dropout=0.1, seed=0):
        super().__init__()
        self.n_genes = check_int("n_genes", n_genes, minimum=1)
        n_hidden = check_int("n_hidden", n_hidden, minimum=1)
        self.n_latent = check_int("n_latent", n_latent, minimum=1)
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        dropout = check_float("dropout", dropout, minimum=0.0)
        with torch.random.fork_rng():
            torch.manual_seed(check_int("seed", seed))
            self.encoder_hidden = nn.Sequential(
                nn.Linear(n_genes, n_hidden),
                nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3),
                nn.ReLU(), nn.Dropout(dropout))
            self.encoder_mean = nn.Linear(n_hidden, n_latent)
            self.encoder_variance = nn.Linear(n_hidden, n_latent)
            self.decoder_hidden = nn.Sequential(
                nn.Linear(n_latent, n_hidden),
                nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3), nn.ReLU())
            self.decoder_scale = nn.Linear(n_hidden, n_genes)
            if likelihood == "zinb":
                self.decoder_zero = nn.Linear(n_hidden, n_genes)
            if likelihood in ("nb", "zinb"):
                self.log_dispersion = nn.Parameter(torch.randn(n_genes))
            if likelihood == "gaussian":
                self.log_sd = nn.Parameter(torch.zeros(n_genes))

    def encode(self, counts):
        """Mean and variance, each (n_cells, n_latent), of q(z | counts)."""
        hidden = self.encoder_hidden(torch.log1p(counts))
        variance = torch.exp(self.encoder_variance(hidden)) + 1e-4
        return self.encoder_mean(hidden), variance

    def decode(self, z, library):
        """Parameters of p(counts | z), each (n_cells, n_genes), as a dict
        (the dispersion, one per gene, is ``(n_genes,)`` and broadcasts).

        Args:
            z: ``(n_cells, n_latent)``.
            library: ``(n_cells, 1)`` each cell's total count.
        """
        hidden = self.decoder_hidden(z)
        if self.likelihood == "gaussian":
            mean = self.decoder_scale(hidden)
            return {"mean": mean, "log_sd": self.log_sd.expand_as(mean)}
        shares = torch.softmax(self.decoder_scale(hidden), dim=-1)  # rows sum to 1
        params = {"mean": library * shares}
        if self.likelihood != "poisson":
            params["dispersion"] = torch.exp(self.log_dispersion)  # (n_genes,)
        if self.likelihood == "zinb":
            params["zero_logits"] = self.decoder_zero(hidden)
        return params

    def log_likelihood(self, counts, params):
        """log p(counts | z) summed over genes, (n_cells,)."""
        log_prob = {"zinb": zinb_log_prob, "nb": nb_log_prob,
                    "poisson": poisson_log_prob,
                    "gaussian": discretised_gaussian_log_prob}[self.likelihood]
        return log_prob(counts, **params).sum(-1)

    def loss(self, counts, kl_weight=1.0, eps=None):
        """Negative ELBO per cell, averaged over the cells of ``counts``.

        Args:
            counts: ``(n_cells, n_genes)``.
            kl_weight: weight of the KL term (warm-up).
            eps: optional ``(n_cells, n_latent)`` standard normal draws.
        """
        mean, variance = self.encode(counts)
        if eps is None:
            eps = torch.randn_like(mean)
        z = mean + variance.sqrt() * eps
        params = self.decode(z, counts.sum(1, keepdim=True))
        elbo = self.log_likelihood(counts, params) - kl_weight * kl_to_standard_normal(
            mean, variance)
        return -elbo.mean()


# --- training and evaluation ------------------------------------------------------


def _adam(parameters, lr):
    """scvi-tools' Adam (eps 0.01, weight decay 1e-6), the fused version where
    this torch has it on the CPU (torch >= 2.4): the same update, a few times
    faster for a network this small than one tensor at a time."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, eps=0.01, weight_decay=1e-6,
                                fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(parameters, lr=lr, eps=0.01, weight_decay=1e-6)


def train(model, counts, train_cells, heldout_cells=None, epochs=400, batch_size=128,
          lr=1e-3, kl_warmup=400, seed=0, progress=True):
    """Adam on minibatches with scvi-tools' settings (eps 0.01, weight decay 1e-6).

    The KL weight rises linearly from 0 to 1 over ``kl_warmup`` epochs.
    Dropout, shuffling and draws use torch's global generator, seeded with
    ``seed`` inside and restored after, so one seed repeats a run. Runs on
    one CPU thread (fastest for a network this small).

    Args:
        model: a :class:`CountsVAE`.
        counts: ``(n_cells, n_genes)``.
        train_cells, heldout_cells: index tensors of cells.
        progress: show a tqdm bar (``TQDM_DISABLE=1`` hides it).

    Returns:
        DataFrame, one row per epoch: epoch, kl_weight, train and heldout
        (negative ELBO per cell at that KL weight), seconds.
    """
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=2)
    lr = check_float("lr", lr, minimum=0.0, strict=True)
    kl_warmup = check_int("kl_warmup", kl_warmup, minimum=0)
    counts = check_counts(counts)
    optimiser = _adam(model.parameters(), lr)
    rows, start = [], time.perf_counter()
    with torch.random.fork_rng(), one_thread():
        torch.manual_seed(check_int("seed", seed))
        for epoch in progress_bar(range(epochs), progress, desc="epochs"):
            kl_weight = min(1.0, epoch / kl_warmup) if kl_warmup else 1.0
            model.train()
            order = train_cells[torch.randperm(len(train_cells))]
            total = 0.0
            for batch in order.split(batch_size):
                if len(batch) < 2:  # batch norm needs two cells
                    continue
                loss = model.loss(counts[batch], kl_weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            row = {"epoch": epoch + 1, "kl_weight": kl_weight,
                   "train": total / len(train_cells), "heldout": math.nan}
            if heldout_cells is not None:
                model.eval()
                with torch.no_grad():
                    row["heldout"] = model.loss(counts[heldout_cells], kl_weight).item()
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
    model.eval()
    return pd.DataFrame(rows)


@torch.no_grad()
def marginal_log_likelihood(model, counts, n_samples=100, seed=0, chunk=50):
    """log p(counts) per cell by importance sampling with q(z | counts).

    ``log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)``, z_k drawn from q:
    a lower bound in expectation that tightens as ``n_samples`` K grows.

    Returns:
        ``(n_cells,)`` float64 tensor.
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    counts = check_counts(counts)
    model.eval()
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    mean, variance = model.encode(counts)
    sd, library = variance.sqrt(), counts.sum(1, keepdim=True)
    weights = []
    for size in torch.arange(n_samples).split(chunk):
        eps = torch.randn(len(size), *mean.shape, generator=generator)
        z = mean + sd * eps  # (samples, n_cells, n_latent)
        flat = z.reshape(-1, model.n_latent)
        params = model.decode(flat, library.repeat(len(size), 1))
        log_lik = model.log_likelihood(counts.repeat(len(size), 1), params)
        log_prior = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
        log_q = -0.5 * (eps**2 + math.log(2 * math.pi)).sum(-1) - sd.log().sum(-1)
        weights.append(log_lik.reshape(z.shape[:2]).double() + log_prior - log_q)
    weights = torch.cat(weights)  # (n_samples, n_cells)
    return torch.logsumexp(weights, 0) - math.log(n_samples)


@torch.no_grad()
def latent_means(model, counts):
    """Means of q(z | counts), (n_cells, n_latent)."""
    model.eval()
    return model.encode(check_counts(counts))[0]


@torch.no_grad()
def sample_counts(model, counts, seed=0):
    """One simulated data set: z from q(z | counts), then counts from p(x | z).

    Returns:
        ``(n_cells, n_genes)`` float32 tensor of whole numbers.
    """
    counts = check_counts(counts)
    model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(check_int("seed", seed))
        mean, variance = model.encode(counts)
        z = mean + variance.sqrt() * torch.randn_like(mean)
        params = model.decode(z, counts.sum(1, keepdim=True))
        if model.likelihood == "gaussian":
            log_counts = torch.normal(params["mean"], params["log_sd"].exp())
            return torch.floor(torch.expm1(log_counts) + 0.5).clamp(min=0)
        if model.likelihood == "poisson":
            return torch.poisson(params["mean"])
        dispersion = params["dispersion"]
        simulated = torch.distributions.NegativeBinomial(
            dispersion, probs=params["mean"] / (params["mean"] + dispersion)).sample()
        if model.likelihood == "zinb":
            extra = torch.bernoulli(torch.sigmoid(params["zero_logits"]))
            simulated = simulated * (1 - extra)
        return simulated


def gene_summaries(counts):
    """Per gene: mean, variance and share of zeros over cells, a DataFrame."""
    return pd.DataFrame({"mean": counts.mean(0).numpy(),
                         "variance": counts.var(0).numpy(),
                         "zero share": (counts == 0).float().mean(0).numpy()})


# --- latent-space metrics (small versions of scikit-learn's) ---------------------


def _codes(labels):
    """Labels of any kind as int64 codes 0..k-1, (n_cells,)."""
    return torch.from_numpy(np.unique(np.asarray(labels), return_inverse=True)[1]
                            .reshape(-1).astype(np.int64))


def pca(data, n_components):
    """Scores ``(n_cells, n_components)`` on the top principal components."""
    data = torch.as_tensor(data, dtype=torch.float64)
    centred = data - data.mean(0)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    return u[:, :n_components] * s[:n_components]


def silhouette(points, labels):
    """Mean silhouette width (Euclidean); 0 for a cell alone in its label."""
    codes = _codes(labels)
    distances = torch.cdist(*(2 * [torch.as_tensor(points, dtype=torch.float64)]))
    one_hot = nn.functional.one_hot(codes).double()  # (n_cells, k)
    sizes = one_hot.sum(0)
    sums = distances @ one_hot  # distance of each cell to each label, summed
    own_size = sizes[codes]
    inside = sums.gather(1, codes[:, None]).squeeze(1) / (own_size - 1).clamp(min=1)
    means = sums / sizes
    means.scatter_(1, codes[:, None], math.inf)
    nearest = means.min(1).values
    widths = (nearest - inside) / torch.maximum(nearest, inside)
    return torch.where(own_size > 1, widths, 0.0).mean().item()


def _contingency(a, b):
    codes_a, codes_b = _codes(a), _codes(b)
    table = torch.zeros(int(codes_a.max()) + 1, int(codes_b.max()) + 1,
                        dtype=torch.float64)
    table.index_put_((codes_a, codes_b), torch.ones(len(codes_a), dtype=torch.float64),
                     accumulate=True)
    return table


def _pairs(n):
    """Number of pairs, n (n - 1) / 2, summed over entries."""
    return (n * (n - 1) / 2).sum()


def _entropy(p):
    """Entropy (nats) of probabilities ``p``."""
    p = p[p > 0]
    return -(p * p.log()).sum()


def adjusted_rand_index(a, b):
    """Adjusted Rand index of two labellings (1: identical, about 0: random)."""
    table = _contingency(a, b)
    index, rows, columns = _pairs(table), _pairs(table.sum(1)), _pairs(table.sum(0))
    expected = rows * columns / _pairs(table.sum())
    top = (rows + columns) / 2
    return 1.0 if top == expected else ((index - expected) / (top - expected)).item()


def normalised_mutual_information(a, b):
    """Mutual information over the mean of the two entropies (scikit-learn's
    default, ``average_method="arithmetic"``)."""
    joint = _contingency(a, b)
    joint = joint / joint.sum()
    row, column = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    nonzero = joint > 0
    information = (joint[nonzero] * (joint / (row * column))[nonzero].log()).sum()
    mean_entropy = (_entropy(row) + _entropy(column)) / 2
    return 1.0 if mean_entropy == 0 else (information / mean_entropy).item()


def kmeans(points, n_clusters, seed=0, n_starts=10, iterations=100):
    """Lloyd's k-means from k-means++ starts; the labels of the best start."""
    points = torch.as_tensor(points, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    best, best_inertia = None, math.inf
    for _ in range(n_starts):
        centres = points[torch.randint(len(points), (1,), generator=generator)]
        while len(centres) < n_clusters:
            nearest = torch.cdist(points, centres).min(1).values ** 2
            pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
            centres = torch.cat([centres, points[pick]])
        for _ in range(iterations):
            labels = torch.cdist(points, centres).argmin(1)
            moved = torch.stack([points[labels == k].mean(0) if (labels == k).any()
                                 else centres[k] for k in range(n_clusters)])
            if torch.equal(moved, centres):
                break
            centres = moved
        inertia = (torch.cdist(points, centres).min(1).values ** 2).sum().item()
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def knn_accuracy(points, labels, k=15):
    """Share of cells whose label is the majority among their k nearest
    others (ties to the lowest label code)."""
    codes = _codes(labels)
    distances = torch.cdist(*(2 * [torch.as_tensor(points, dtype=torch.float64)]))
    distances.fill_diagonal_(math.inf)
    neighbours = distances.topk(k, largest=False).indices  # (n_cells, k)
    votes = nn.functional.one_hot(codes[neighbours]).sum(1)  # (n_cells, n_labels)
    return (votes.argmax(1) == codes).double().mean().item()


def latent_metrics(points, labels, seed=0):
    """Silhouette, ARI and NMI of k-means (k = number of labels), kNN accuracy."""
    clusters = kmeans(points, len(np.unique(np.asarray(labels))), seed=seed)
    return {"silhouette": silhouette(points, labels),
            "ARI": adjusted_rand_index(labels, clusters),
            "NMI": normalised_mutual_information(labels, clusters),
            "kNN accuracy": knn_accuracy(points, labels)}


# --- plots -------------------------------------------------------------------------


def plot_history(history, ax=None):
    """Training and held-out negative ELBO per cell against epoch."""
    figure, ax = plt.subplots(figsize=(5, 3.5)) if ax is None else (ax.figure, ax)
    ax.plot(history["epoch"], history["train"], label="training cells")
    ax.plot(history["epoch"], history["heldout"], label="held-out cells")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO per cell (nats)")
    ax.set_title("loss (KL weight rising to 1)")
    ax.legend()
    return figure


def plot_latent(points, labels, ax=None, title="latent space"):
    """The first two coordinates of ``points``, coloured by label."""
    figure, ax = plt.subplots(figsize=(6, 4.5)) if ax is None else (ax.figure, ax)
    points, labels = np.asarray(points), np.asarray(labels)
    for label in np.unique(labels):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, label=str(label))
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.set_title(title)
    ax.legend(fontsize=6, markerscale=2, loc="best")
    return figure


def plot_predictive_checks(observed, simulated, axes=None):
    """Per-gene mean, variance and share of zeros: observed against simulated.

    Args:
        observed, simulated: DataFrames from :func:`gene_summaries`.
        axes: optional three axes.
    """
    if axes is None:
        figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    figure = axes[0].figure
    for ax, column in zip(axes, ("mean", "variance", "zero share")):
        ax.scatter(observed[column], simulated[column], s=5, alpha=0.6)
        low = min(observed[column].min(), simulated[column].min())
        high = max(observed[column].max(), simulated[column].max())
        ax.plot([low, high], [low, high], "k--", lw=1, label="equal")
        if column != "zero share":
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"observed {column}")
        ax.set_ylabel(f"simulated {column}")
        ax.set_title(f"per gene: {column}")
        ax.legend()
    figure.tight_layout()
    return figure
