"""Hierarchical dose-response model fitted by ADVI (bonus notebook).

Everything ``bonus/ADVI_dose_response.ipynb`` imports: a simulator, the
model's log density as one vectorised function, automatic differentiation
variational inference (ADVI) with two Gaussian families, summaries, and the
same model written in PyMC for the reference fits (NUTS, PyMC's own ADVI).

The model. Group ``g`` (a compound, a plate, a patient) has four parameters
``theta[g] = (bottom, top, log_ic50, log_hill)`` and a four-parameter
logistic curve of the log dose ``x``::

    f(x) = bottom + (top - bottom) / (1 + exp(hill * (x - log_ic50)))

with ``hill = exp(log_hill)``. Responses are ``y ~ Normal(f(x), sigma)``.
The groups' parameters come from a population, ``theta[g, k] ~
Normal(mu[k], tau[k])``, with priors ``mu[k] ~ Normal(0, 2)``, ``tau[k] ~
HalfNormal(1)`` and ``sigma ~ HalfNormal(1)``.

ADVI works on unconstrained coordinates: ``theta`` (G, 4) and a global
vector ``(mu (4), log tau (4), log sigma)`` of 9 numbers. The variational
family is a Gaussian over all of them, block-diagonal: one block per group
(diagonal for ``"meanfield"``, a full 4x4 Cholesky factor for
``"fullrank"``) and one block for the 9 globals (diagonal, or full 9x9).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from .._utils import (
    check_choice,
    check_float,
    check_int,
    check_tensor,
    one_thread,
    progress_bar,
)

PARAMETERS = ("bottom", "top", "log_ic50", "log_hill")
"""Names of the four group parameters, in column order."""

FAMILIES = ("meanfield", "fullrank")

PRIOR_MU_SD = 2.0
"""Standard deviation of the Normal(0, .) prior of each population mean."""

TRUE_MU = (0.1, 1.0, 0.0, 0.0)
TRUE_TAU = (0.05, 0.1, 1.0, 0.3)
TRUE_SIGMA = 0.1
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class DoseResponse:
    """Observations of many groups, checked by :func:`make_data`.

    Attributes:
        log_dose: (n,) natural log of each observation's dose.
        response: (n,) measured responses.
        group: (n,) int64 group index of each observation, in [0, n_groups).
        n_groups: number of groups G.
    """

    log_dose: torch.Tensor
    response: torch.Tensor
    group: torch.Tensor
    n_groups: int


@dataclasses.dataclass(frozen=True)
class Truth:
    """The values a simulation used: group parameters (G, 4), mu, tau, sigma."""

    theta: torch.Tensor
    mu: torch.Tensor
    tau: torch.Tensor
    sigma: float


def make_data(log_dose, response, group, n_groups=None) -> DoseResponse:
    """Check observations and return them as a :class:`DoseResponse`.

    Args:
        log_dose: (n,) log doses, finite.
        response: (n,) responses, finite.
        group: (n,) whole numbers in [0, n_groups).
        n_groups: number of groups, >= 1; default ``max(group) + 1``.

    Raises:
        ValueError: NaN or infinite values, mismatched lengths, fewer than
            one observation, or a group index out of range.
    """
    log_dose = check_tensor("log_dose", log_dose, (None,)).double()
    n = log_dose.shape[0]
    if n < 1:
        raise ValueError("log_dose must hold at least 1 observation, got 0")
    response = check_tensor("response", response, (n,)).double()
    group = torch.as_tensor(group)
    if group.shape != (n,) or group.is_floating_point() or group.dtype == torch.bool:
        raise ValueError(f"group must hold {n} whole numbers (one per observation), "
                         f"got dtype {group.dtype} and shape {tuple(group.shape)}")
    group = group.long()
    if n_groups is None:
        n_groups = int(group.max()) + 1
    n_groups = check_int("n_groups", n_groups, minimum=1)
    low, high = int(group.min()), int(group.max())
    if low < 0 or high >= n_groups:
        bad = low if low < 0 else high
        raise ValueError(f"group index {bad} is out of range; allowed 0 to "
                         f"n_groups - 1 = {n_groups - 1}")
    return DoseResponse(log_dose.float(), response.float(), group, n_groups)


def curve(log_dose, bottom, top, log_ic50, log_hill):
    """Four-parameter logistic curve, elementwise (tensors that broadcast).

    Args:
        log_dose: log doses, e.g. (n,).
        bottom, top, log_ic50, log_hill: the parameters, e.g. (S, n).

    Returns:
        Curve values, the broadcast shape, e.g. (S, n).
    """
    return bottom + (top - bottom) * torch.sigmoid(
        -log_hill.exp() * (log_dose - log_ic50))


def simulate(n_groups=3000, n_doses=9, n_replicates=15, seed=0):
    """Simulate a dose-response study (default: 3,000 groups, 405,000 rows).

    Each group is measured at ``n_doses`` log-spaced doses from 0.01 to 100,
    ``n_replicates`` times each; true values are ``TRUE_MU``, ``TRUE_TAU``
    and ``TRUE_SIGMA``.

    Args:
        n_groups: number of groups G, >= 1.
        n_doses: doses per group, >= 1.
        n_replicates: replicates per dose, >= 1.
        seed: seed of the simulation.

    Returns:
        ``(data, truth)``: a :class:`DoseResponse` with
        ``G * n_doses * n_replicates`` rows, and the :class:`Truth`.
    """
    n_groups = check_int("n_groups", n_groups, minimum=1)
    n_doses = check_int("n_doses", n_doses, minimum=1)
    n_replicates = check_int("n_replicates", n_replicates, minimum=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    mu = torch.tensor(TRUE_MU, dtype=torch.float64)
    tau = torch.tensor(TRUE_TAU, dtype=torch.float64)
    theta = mu + tau * torch.randn(n_groups, 4, generator=generator,
                                   dtype=torch.float64)
    doses = torch.linspace(math.log(0.01), math.log(100.0), n_doses,
                           dtype=torch.float64)
    group = torch.arange(n_groups).repeat_interleave(n_doses * n_replicates)
    log_dose = doses.repeat_interleave(n_replicates).repeat(n_groups)
    mean = curve(log_dose, *theta[group].unbind(-1))
    response = mean + TRUE_SIGMA * torch.randn(mean.shape, generator=generator,
                                               dtype=torch.float64)
    data = DoseResponse(log_dose.float(), response.float(), group, n_groups)
    return data, Truth(theta.float(), mu.float(), tau.float(), TRUE_SIGMA)


def subset(data: DoseResponse, groups) -> DoseResponse:
    """Return the observations of the listed groups, renumbered 0, 1, ...

    Args:
        data: the full data.
        groups: sequence of group indices to keep, in the new order.
    """
    groups = torch.as_tensor(groups, dtype=torch.long)
    new_index = torch.full((data.n_groups,), -1, dtype=torch.long)
    new_index[groups] = torch.arange(len(groups))
    keep = new_index[data.group] >= 0
    return DoseResponse(data.log_dose[keep], data.response[keep],
                        new_index[data.group[keep]], len(groups))


def normal_log_pdf(x, mean, sd):
    """Log density of Normal(mean, sd) at x, elementwise."""
    return -0.5 * ((x - mean) / sd) ** 2 - torch.log(sd) - HALF_LOG_2PI


def log_density(theta, globals_, data: DoseResponse, batch=None):
    """Log joint density on unconstrained coordinates (section 2).

    Includes the Jacobians of ``tau = exp(log_tau)`` and ``sigma =
    exp(log_sigma)``, and every normalising constant (as PyMC does).

    Args:
        theta: (S, G, 4) group parameters of S draws.
        globals_: (S, 9) mu (4), log tau (4), log sigma.
        data: the observations.
        batch: optional (B,) indices of observations; their log likelihood is
            scaled by n / B, an unbiased estimate of the full sum.

    Returns:
        (S,) log density of each draw.
    """
    mu, log_tau, log_sigma = globals_[:, :4], globals_[:, 4:8], globals_[:, 8]
    tau, sigma = log_tau.exp(), log_sigma.exp()
    log_dose, response, group = data.log_dose, data.response, data.group
    scale = 1.0
    if batch is not None:
        log_dose, response, group = log_dose[batch], response[batch], group[batch]
        scale = data.response.shape[0] / batch.shape[0]
    # Work per group first (G numbers each), then look up each observation's
    # group: cheaper than exp() and top - bottom once per observation.
    bottom, top, log_ic50, log_hill = theta.unbind(-1)  # each (S, G)
    per_group = torch.stack([bottom, top - bottom, log_ic50, log_hill.exp()])
    low, span, centre, hill = [v.index_select(-1, group) for v in per_group]
    mean = low + span * torch.sigmoid(hill * (centre - log_dose))  # (S, n)
    residual = response - mean
    likelihood = (-0.5 * (residual**2).sum(-1) / sigma**2
                  - response.shape[0] * (log_sigma + HALF_LOG_2PI))
    population = normal_log_pdf(theta, mu[:, None], tau[:, None]).sum((-2, -1))
    prior_mu = normal_log_pdf(mu, torch.zeros(()), torch.tensor(PRIOR_MU_SD)).sum(-1)
    # HalfNormal(1) densities of tau and sigma, plus log|d exp(u)/du| = u.
    half_normal = (math.log(2.0) - HALF_LOG_2PI) * 5
    prior_scales = (half_normal - 0.5 * (tau**2).sum(-1) - 0.5 * sigma**2
                    + log_tau.sum(-1) + log_sigma)
    return scale * likelihood + population + prior_mu + prior_scales


def init_variational(data: DoseResponse, family="fullrank"):
    """Starting values of the variational parameters, from the data.

    Each group's mean starts at ``top`` = mean response below the group's
    mean log dose, ``bottom`` = mean response above it, ``log_ic50`` = mean
    log dose, ``log_hill`` = 0; every standard deviation starts at 0.1.

    Args:
        data: the observations.
        family: ``"meanfield"`` or ``"fullrank"``.

    Returns:
        A dict of leaf tensors that require grad: ``loc`` (G, 4), ``scale``
        (G, 4, 4) raw Cholesky factors (only the diagonal is used for
        mean-field), ``global_loc`` (9,), ``global_scale`` (9, 9).
    """
    check_choice("family", family, FAMILIES)
    G = data.n_groups

    def group_mean(values, weights):
        total = torch.zeros(G).index_add_(0, data.group, values * weights)
        count = torch.zeros(G).index_add_(0, data.group, weights)
        return total / count.clamp(min=1.0)

    ones = torch.ones_like(data.response)
    centre = group_mean(data.log_dose, ones)
    below = (data.log_dose < centre[data.group]).float()
    top = group_mean(data.response, below)
    bottom = group_mean(data.response, 1.0 - below)
    loc = torch.stack([bottom, top, centre, torch.zeros(G)], dim=-1)
    # Globals: the groups' mean and log spread, and the log spread of all data.
    spread = loc.std(0).clamp(min=0.05) if G > 1 else torch.full((4,), 0.3)
    noise = data.response.std().clamp(min=1e-3) if len(data.response) > 1 \
        else torch.tensor(1.0)
    global_loc = torch.cat([loc.mean(0), spread.log(), noise.log().reshape(1)])
    # Raw Cholesky factors: log standard deviations on the diagonal.
    scale = torch.diag_embed(torch.full((G, 4), math.log(0.1)))
    global_scale = torch.diag(torch.full((9,), math.log(0.1)))
    params = {"loc": loc, "scale": scale, "global_loc": global_loc,
              "global_scale": global_scale}
    return {name: value.clone().requires_grad_() for name, value in params.items()}


def cholesky(raw: torch.Tensor, family: str) -> torch.Tensor:
    """Turn raw (..., d, d) factors into Cholesky factors of the family.

    The diagonal holds log standard deviations (exponentiated here); below it
    the full-rank family keeps the entries, the mean-field family zeros them.
    """
    diagonal = torch.diag_embed(raw.diagonal(dim1=-2, dim2=-1).exp())
    if family == "meanfield":
        return diagonal
    return diagonal + raw.tril(-1)


def draw(params, family, n_samples, generator=None):
    """Reparameterised draws from the variational Gaussian and its entropy.

    Args:
        params: dict from :func:`init_variational`.
        family: ``"meanfield"`` or ``"fullrank"``.
        n_samples: number of draws S.
        generator: optional ``torch.Generator``.

    Returns:
        ``(theta, globals_, entropy)``: (S, G, 4), (S, 9) and a scalar.
    """
    loc, global_loc = params["loc"], params["global_loc"]
    factor = cholesky(params["scale"], family)  # (G, 4, 4)
    global_factor = cholesky(params["global_scale"], family)  # (9, 9)
    noise = torch.randn((n_samples, *loc.shape), generator=generator)
    global_noise = torch.randn((n_samples, 9), generator=generator)
    theta = loc + (factor @ noise.unsqueeze(-1)).squeeze(-1)
    globals_ = global_loc + global_noise @ global_factor.T
    dimension = loc.numel() + 9
    log_det = (params["scale"].diagonal(dim1=-2, dim2=-1).sum()
               + params["global_scale"].diagonal().sum())
    entropy = log_det + dimension * (0.5 + HALF_LOG_2PI)
    return theta, globals_, entropy


def elbo(params, data, family, n_samples=1, generator=None, batch=None):
    """Monte Carlo estimate of the evidence lower bound (section 3).

    ELBO = E_q[log p(z, y)] + entropy(q), the expectation estimated with
    ``n_samples`` reparameterised draws, so that it can be differentiated.

    Returns:
        A scalar tensor.
    """
    theta, globals_, entropy = draw(params, family, n_samples, generator)
    return log_density(theta, globals_, data, batch).mean() + entropy


def fit_advi(data: DoseResponse, family="fullrank", n_steps=3000, lr=0.05,
             final_lr=0.002, n_samples=1, batch_size=None, seed=0,
             progress=True):
    """Maximise the ELBO with Adam (section 4).

    The learning rate decays geometrically from ``lr`` to ``final_lr``, so
    that the last steps average out the Monte Carlo noise.

    Args:
        data: the observations.
        family: ``"meanfield"`` or ``"fullrank"``.
        n_steps: number of Adam steps, >= 1.
        lr: first learning rate, > 0.
        final_lr: last learning rate, > 0.
        n_samples: draws per step, >= 1.
        batch_size: observations per step (mini-batches), or None for all.
        seed: seed of the draws and the mini-batches.
        progress: show a progress bar.

    Returns:
        ``(params, history)``: the fitted variational parameters (detached)
        and a numpy array (n_steps,) of the ELBO estimate at each step.
    """
    check_choice("family", family, FAMILIES)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict=True)
    final_lr = check_float("final_lr", final_lr, minimum=0.0, strict=True)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    n = data.response.shape[0]
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    params = init_variational(data, family)
    optimiser = torch.optim.Adam(params.values(), lr=lr)
    decay = (final_lr / lr) ** (1.0 / max(n_steps - 1, 1))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=decay)
    history = np.empty(n_steps)
    with one_thread():
        for step in progress_bar(range(n_steps), progress, desc=f"ADVI ({family})"):
            batch = None
            if batch_size is not None and batch_size < n:
                batch = torch.randint(n, (batch_size,), generator=generator)
            optimiser.zero_grad()
            loss = -elbo(params, data, family, n_samples, generator, batch)
            loss.backward()
            optimiser.step()
            schedule.step()
            history[step] = -loss.item()
    return {name: value.detach() for name, value in params.items()}, history


def summarise(params, family, level=0.9):
    """Posterior means, standard deviations and central intervals.

    Args:
        params: fitted variational parameters.
        family: the family they belong to.
        level: probability of the central intervals, in (0, 1).

    Returns:
        A dict of tensors: ``mean``, ``sd``, ``lower``, ``upper`` of the group
        parameters (G, 4), and ``global_mean``, ``global_sd`` (9,) of the
        unconstrained globals (mu, log tau, log sigma).
    """
    level = check_float("level", level, minimum=0.0, strict=True)
    if level >= 1.0:
        raise ValueError(f"level must be below 1, got {level}")
    factor = cholesky(params["scale"], family)
    sd = (factor**2).sum(-1).sqrt()  # row norms: sqrt of diag(L L^T)
    global_factor = cholesky(params["global_scale"], family)
    z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2))
    mean = params["loc"]
    return {"mean": mean, "sd": sd, "lower": mean - z * sd, "upper": mean + z * sd,
            "global_mean": params["global_loc"],
            "global_sd": (global_factor**2).sum(-1).sqrt()}


def coverage(lower, upper, truth):
    """Share of groups whose interval holds the true value, per parameter.

    Args:
        lower, upper: (G, 4) interval ends.
        truth: (G, 4) true values.

    Returns:
        (4,) numpy array of shares.
    """
    inside = (torch.as_tensor(lower) <= truth) & (truth <= torch.as_tensor(upper))
    return inside.double().mean(0).numpy()


def log_q(params, family, theta, globals_):
    """Log density of draws under the variational Gaussian (section 7).

    Args:
        params: variational parameters from :func:`fit_advi`.
        family: the family they belong to.
        theta: (S, G, 4) group parameters of S draws.
        globals_: (S, 9) unconstrained globals of the same draws.

    Returns:
        (S,) log q of each draw (block by block: one 4-block per group, one
        9-block for the globals).
    """
    def block(x, loc, raw):
        factor = cholesky(raw, family)
        # Standardise: solve L e = x - loc, then log N(e; 0, I) - log det L.
        e = torch.linalg.solve_triangular(
            factor, (x - loc).unsqueeze(-1), upper=False).squeeze(-1)
        log_det = raw.diagonal(dim1=-2, dim2=-1).sum(-1)
        return -0.5 * (e**2).sum(-1) - log_det - x.shape[-1] * HALF_LOG_2PI

    groups = block(theta, params["loc"], params["scale"]).sum(-1)  # (S,)
    return groups + block(globals_, params["global_loc"], params["global_scale"])


def psis_khat(params, family, data: DoseResponse, n_draws=2000, seed=0):
    """Pareto k-hat of the importance ratios p(y, z) / q(z), z ~ q.

    Section 7. Yao, Vehtari, Simpson and Gelman (2018): fit a generalised Pareto
    distribution to the largest ratios; below 0.5 the approximation is good
    for importance sampling, 0.5-0.7 usable, above 0.7 its tails are too
    light and its expectations not to be trusted. Uses ArviZ's ``psislw``
    (PyMC brings ArviZ; Colab ships it).

    Args:
        params: fitted variational parameters.
        family: the family they belong to.
        data: the observations they were fitted to.
        n_draws: number of draws from q, >= 10.
        seed: seed of the draws.

    Returns:
        The k-hat estimate, a float.
    """
    import arviz as az

    check_choice("family", family, FAMILIES)
    n_draws = check_int("n_draws", n_draws, minimum=10)
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    chunk = max(1, 2_000_000 // max(1, data.response.shape[0]))  # draws a pass
    weights = []
    with torch.no_grad(), one_thread():
        for start in range(0, n_draws, chunk):
            size = min(chunk, n_draws - start)
            theta, globals_, _ = draw(params, family, size, generator)
            weights.append((log_density(theta, globals_, data)
                            - log_q(params, family, theta, globals_)).double())
    log_weights = torch.cat(weights).numpy()
    _, khat = az.psislw(log_weights)
    return float(khat)


def pymc_model(data: DoseResponse, parameterisation="centred"):
    """The same model in PyMC (its own ADVI and NUTS use it).

    Args:
        data: the observations.
        parameterisation: ``"centred"`` samples ``theta`` itself (the
            coordinates our ADVI uses, so log densities and ELBOs compare);
            ``"noncentred"`` samples standard Normal ``z`` and sets
            ``theta = mu + tau * z``, the form NUTS explores without the
            funnel between ``theta`` and ``tau`` (section 8).

    Returns:
        A ``pymc.Model`` with variables ``theta`` (G, 4) (free, or
        deterministic when non-centred), ``mu`` (4), ``tau`` (4) and ``sigma``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    check_choice("parameterisation", parameterisation, ("centred", "noncentred"))
    group = data.group.numpy()
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, PRIOR_MU_SD, shape=4)
        tau = pm.HalfNormal("tau", 1.0, shape=4)
        sigma = pm.HalfNormal("sigma", 1.0)
        if parameterisation == "centred":
            theta = pm.Normal("theta", mu, tau, shape=(data.n_groups, 4))
        else:
            z = pm.Normal("z", 0.0, 1.0, shape=(data.n_groups, 4))
            theta = pm.Deterministic("theta", mu + tau * z)
        rows = theta[group]
        hill = pt.exp(rows[:, 3])
        x = data.log_dose.numpy().astype("float64")
        mean = rows[:, 0] + (rows[:, 1] - rows[:, 0]) * pm.math.sigmoid(
            -hill * (x - rows[:, 2]))
        pm.Normal("y", mean, sigma, observed=data.response.numpy().astype("float64"))
    return model


def summarise_draws(theta_draws, level=0.9):
    """Means, standard deviations and central intervals of (D, G, 4) draws."""
    draws = torch.as_tensor(np.asarray(theta_draws), dtype=torch.float64)
    tail = (1.0 - level) / 2
    return {"mean": draws.mean(0).float(), "sd": draws.std(0).float(),
            "lower": draws.quantile(tail, dim=0).float(),
            "upper": draws.quantile(1.0 - tail, dim=0).float()}
