# %% [markdown]
# # Bonus: Bayesian inference at scale by gradient descent (ADVI)
#
# *Backup material of the NORBIS workshop "Differentiable programming for
# flexible modelling with small data", Python edition.*
#
# A practitioner told us about a hierarchical dose-response model with more
# than 400,000 observations in over 3,000 groups (compounds measured on many
# plates). Sampling its posterior with NUTS would have taken about a week;
# automatic differentiation variational inference (**ADVI**, in PyMC) gave a
# similar picture of the uncertainty in about 2.5 hours.
#
# ADVI is Part II's idea without the encoder. There, a variational
# autoencoder maximised the evidence lower bound (ELBO) with the
# reparameterisation trick: draw noise, shift and scale it by parameters,
# push the draw through the model, and let autodiff give the gradient. ADVI
# does exactly that for *every* parameter of a statistical model: the
# approximate posterior is a Gaussian on unconstrained coordinates, and its
# means and scales are fitted by gradient descent.
#
# In this notebook you will
#
# * simulate a dose-response study with known true values;
# * write the model's log density as one vectorised function, and the ELBO
#   with two Gaussian families: **mean-field** (independent coordinates)
#   and **full-rank per group** (a 4x4 covariance for each group);
# * fit both and check them: population values, the coverage of the 90%
#   intervals for the true group parameters, and posterior curve bands;
# * compare both with NUTS (PyMC) on a few groups.
#
# The notebook runs a small study (120 groups) in about a minute on a CPU;
# one line in the imports cell below (`N_GROUPS = 3000`) switches to the
# full 3,000 groups (about 405,000 observations).

# %% [setup]

# %% [markdown]
# ## Imports and scale
#
# The simulator, the fast log density, the fitting loop, the summaries and
# the PyMC model live in `helpers/bonus/advi_dose_response.py`. This notebook writes the
# two ideas of the lesson, the log density and the ELBO, itself and checks
# them against that module.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from helpers.bonus import advi_dose_response as dr

SEED = 2026
N_GROUPS = 120  # full scale: N_GROUPS = 3000 (405,000 observations, ~2 min a fit)
N_STEPS = 3000 if N_GROUPS >= 1000 else 2000
# Small tensors run fastest on one CPU thread (see `one_thread` in helpers/_utils.py).
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The data
#
# Each group `g` has four parameters, `theta[g] = (bottom, top, log_ic50,
# log_hill)`, and its response to a log dose `x` follows a four-parameter
# logistic curve,
#
# $$f(x) = \text{bottom} + \frac{\text{top} - \text{bottom}}
#    {1 + \exp\big(\text{hill}\,(x - \log \text{IC}_{50})\big)},
#    \qquad \text{hill} = e^{\log \text{hill}},$$
#
# measured with Normal noise of standard deviation `sigma`. The groups'
# parameters come from a population: `theta[g, k] ~ Normal(mu[k], tau[k])`.
# Priors: `mu[k] ~ Normal(0, 2)`, `tau[k] ~ HalfNormal(1)`, `sigma ~
# HalfNormal(1)`. The simulation measures every group at 9 doses from 0.01 to
# 100, 15 times each (135 observations per group).

# %%
data, truth = dr.simulate(n_groups=N_GROUPS, seed=SEED)
print(f"{data.n_groups} groups, {len(data.response):,} observations")
print("true population means mu:", dict(zip(dr.PARAMETERS, truth.mu.tolist())))
print("true population sds tau: ", dict(zip(dr.PARAMETERS, truth.tau.tolist())))
print("true noise sd sigma:     ", truth.sigma)

grid = torch.linspace(math.log(0.005), math.log(200.0), 100)
fig, ax = plt.subplots(figsize=(7, 4))
for g, colour in zip(range(4), ["C0", "C1", "C2", "C3"]):
    rows = data.group == g
    ax.plot(data.log_dose[rows], data.response[rows], ".", color=colour, alpha=0.4)
    ax.plot(grid, dr.curve(grid, *truth.theta[g]), color=colour,
            label=f"group {g}: true curve")
ax.set_xlabel("log dose")
ax.set_ylabel("response")
ax.set_title("Four groups: measurements and true curves")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. The log density as one program
#
# ADVI needs the log joint density `log p(y, z)` as a function of the
# unconstrained coordinates `z`: the group parameters `theta` (G, 4) as they
# are, and 9 globals `mu` (4), `log tau` (4), `log sigma` (1). Because we
# sample `log tau` and exponentiate, the density gets the log-Jacobian of
# `tau = exp(log tau)`, which is simply `+ log tau` (the same for `sigma`).
#
# Written for `S` draws at once, every group and every observation in one
# vectorised expression: no loop over 3,000 groups.

# %%
def normal_logpdf(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - torch.log(sd) - 0.5 * math.log(2 * math.pi)


def half_normal_logpdf(x):  # HalfNormal(1), for x > 0
    return math.log(2.0) + normal_logpdf(x, torch.zeros(()), torch.ones(()))


def log_density(theta, globals_, data):
    """theta (S, G, 4), globals_ (S, 9) -> log p(y, z) of each draw (S,)."""
    mu, log_tau, log_sigma = globals_[:, :4], globals_[:, 4:8], globals_[:, 8]
    tau, sigma = log_tau.exp(), log_sigma.exp()
    rows = theta[:, data.group]  # each observation's group parameters (S, n, 4)
    mean = dr.curve(data.log_dose, *rows.unbind(-1))  # (S, n)
    likelihood = normal_logpdf(data.response, mean, sigma[:, None]).sum(-1)
    population = normal_logpdf(theta, mu[:, None], tau[:, None]).sum((1, 2))
    priors = (normal_logpdf(mu, torch.zeros(()), torch.tensor(2.0)).sum(-1)
              + half_normal_logpdf(tau).sum(-1) + half_normal_logpdf(sigma))
    jacobian = log_tau.sum(-1) + log_sigma
    return likelihood + population + priors + jacobian


# At the truth, and at three random points: ours equals the helpers' version
# (which computes the same sum faster, per group before per observation).
log_sigma = torch.tensor([truth.sigma]).log()
true_globals = torch.cat([truth.mu, truth.tau.log(), log_sigma])
points = torch.cat([truth.theta[None],
                    truth.theta + 0.1 * torch.randn(3, N_GROUPS, 4)])
globals_ = torch.cat([true_globals[None], true_globals + 0.1 * torch.randn(3, 9)])
ours = log_density(points, globals_, data)
theirs = dr.log_density(points, globals_, data)
torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-2)
print("log density at the truth:", round(ours[0].item(), 1), "(equal to helpers)")

# %% [markdown]
# ## 3. The variational family and the ELBO
#
# The approximation `q` is a Gaussian over all `4 G + 9` coordinates, built
# from blocks: one block of 4 per group, one block for the 9 globals. Each
# block is `loc + L @ eps` with `eps ~ Normal(0, I)` and a lower-triangular
# `L` with a positive diagonal (its log is the parameter):
#
# * **mean-field**: `L` diagonal, every coordinate independent;
# * **full-rank per group**: `L` a full 4x4 lower triangle, so the
#   four parameters of a group may be correlated (bottom with log IC50,
#   log IC50 with the Hill slope, ...), while groups stay independent.
#
# The ELBO is `E_q[log p(y, z)] + entropy(q)`. The entropy of a Gaussian
# is known in closed form: the sum of the logs of `L`'s diagonals plus a
# constant. The expectation is estimated with reparameterised draws, so
# autodiff differentiates it with respect to `loc` and `L`.

# %%
def lower_triangle(raw, family):
    """Raw (..., d, d) -> Cholesky factor: exp on the diagonal."""
    factor = torch.diag_embed(raw.diagonal(dim1=-2, dim2=-1).exp())
    return factor if family == "meanfield" else factor + raw.tril(-1)


def elbo(params, data, family, n_samples, generator):
    loc, global_loc = params["loc"], params["global_loc"]
    eps = torch.randn((n_samples, *loc.shape), generator=generator)  # (S, G, 4)
    global_eps = torch.randn((n_samples, 9), generator=generator)
    L = lower_triangle(params["scale"], family)  # (G, 4, 4)
    L_global = lower_triangle(params["global_scale"], family)  # (9, 9)
    theta = loc + torch.einsum("gij,sgj->sgi", L, eps)
    globals_ = global_loc + global_eps @ L_global.T
    n_coordinates = loc.numel() + 9
    entropy = (params["scale"].diagonal(dim1=-2, dim2=-1).sum()
               + params["global_scale"].diagonal().sum()
               + 0.5 * n_coordinates * (1 + math.log(2 * math.pi)))
    return log_density(theta, globals_, data).mean() + entropy


# The same draws (same seed) give the same ELBO as the helpers' version.
for family in dr.FAMILIES:
    params = dr.init_variational(data, family)
    with torch.no_grad():
        params["scale"].add_(0.05 * torch.randn(params["scale"].shape))
    ours = elbo(params, data, family, 4, torch.Generator().manual_seed(1))
    theirs = dr.elbo(params, data, family, 4, torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-2)
    print(f"{family}: ELBO at the start {ours.item():,.1f} (equal to helpers)")

# %% [markdown]
# ## 4. Gradient descent on the ELBO
#
# One step is what you wrote in Part II: estimate the ELBO, call
# `backward()`, let Adam move the means and the Cholesky factors. Here are
# 100 steps by hand, with one draw per step.

# %%
params = dr.init_variational(data, "fullrank")
optimiser = torch.optim.Adam(params.values(), lr=0.05)
generator = torch.Generator().manual_seed(SEED)
by_hand = []
for step in range(100):
    optimiser.zero_grad()
    loss = -elbo(params, data, "fullrank", 1, generator)
    loss.backward()
    optimiser.step()
    by_hand.append(-loss.item())
print(f"ELBO after 1 step {by_hand[0]:,.0f}, after 100 steps {by_hand[-1]:,.0f}")

# %% [markdown]
# `dr.fit_advi` runs the same loop (with `helpers`' faster log density) for
# `N_STEPS` steps, with a learning rate that decays from 0.05 to 0.002 so
# that the last steps average out the noise of the single draws. It starts
# each group's mean from its data (mean response at low and high doses).
# `batch_size=...` switches to mini-batches of observations, each step's
# log likelihood scaled up by `n / batch_size`. Here: full batches.

# %%
fits, histories, seconds = {}, {}, {}
for family in dr.FAMILIES:
    start = time.perf_counter()
    fits[family], histories[family] = dr.fit_advi(
        data, family, n_steps=N_STEPS, seed=SEED)
    seconds[family] = time.perf_counter() - start
    print(f"{family}: {seconds[family]:.1f} s for {N_STEPS} steps, final ELBO "
          f"{histories[family][-100:].mean():,.1f} (mean of the last 100 steps)")

fig, ax = plt.subplots(figsize=(7, 4))
for family in dr.FAMILIES:
    ax.plot(histories[family], label=family, alpha=0.8)
low = min(np.percentile(h, 5) for h in histories.values())
ax.set_ylim(low, max(h.max() for h in histories.values()) + 50)
ax.set_xlabel("Adam step")
ax.set_ylabel("ELBO estimate (one draw)")
ax.set_title("Both families climb to a plateau")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. Did it work?
#
# The simulation knows the truth, so we can check. First the population:
# posterior means of `mu`, `tau` and `sigma` (for the scales, `exp` of the
# mean of the log) next to the true values.

# %%
summaries = {family: dr.summarise(fits[family], family) for family in dr.FAMILIES}
names = [f"mu[{p}]" for p in dr.PARAMETERS] + [f"tau[{p}]" for p in dr.PARAMETERS]
table = pd.DataFrame({"true": [*truth.mu.tolist(), *truth.tau.tolist(), truth.sigma]},
                     index=names + ["sigma"])
for family, summary in summaries.items():
    values = summary["global_mean"].clone()
    values[4:] = values[4:].exp()
    table[family] = values.numpy()
table.round(3)

# %% [markdown]
# Now each group's 90% interval for each of its four parameters. With a good
# posterior approximation about 90% of the groups' intervals hold the true
# value. The mean-field family ignores the correlations inside a group and
# its intervals come out too narrow.

# %%
coverage = pd.DataFrame(
    {family: dr.coverage(s["lower"], s["upper"], truth.theta)
     for family, s in summaries.items()}, index=dr.PARAMETERS)
coverage["sd ratio (mean-field / full-rank)"] = (
    summaries["meanfield"]["sd"] / summaries["fullrank"]["sd"]).mean(0).numpy()
print("share of groups whose 90% interval holds the true value:")
coverage.round(2)

# %% [markdown]
# Curves drawn from the full-rank posterior of four groups, as 90% bands,
# over the data and the true curve.

# %%
def curve_band(params, family, group, n_draws=200, seed=0):
    """5%, 50% and 95% points of the posterior curve of one group."""
    generator = torch.Generator().manual_seed(seed)
    L = lower_triangle(params["scale"][group], family)
    eps = torch.randn(n_draws, 4, generator=generator)
    draws = params["loc"][group] + eps @ L.T  # (n_draws, 4)
    curves = dr.curve(grid, *draws.T[:, :, None])  # (n_draws, 100)
    return curves.quantile(torch.tensor([0.05, 0.5, 0.95]), dim=0)


fig, axes = plt.subplots(1, 4, figsize=(14, 3.5), sharey=True)
for g, ax in enumerate(axes):
    rows = data.group == g
    low, middle, high = curve_band(fits["fullrank"], "fullrank", g)
    ax.plot(data.log_dose[rows], data.response[rows], ".", color="grey", alpha=0.4,
            label="data")
    ax.fill_between(grid, low, high, color="C0", alpha=0.3, label="90% band")
    ax.plot(grid, middle, color="C0", label="posterior median")
    ax.plot(grid, dr.curve(grid, *truth.theta[g]), "k--", label="true curve")
    ax.set_title(f"group {g}")
    ax.set_xlabel("log dose")
axes[0].set_ylabel("response")
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 6. A reference: NUTS on a few groups
#
# NUTS (PyMC's default sampler) draws from the exact posterior, slowly. On a
# subset of groups we fit the same model three ways (NUTS, and ADVI with both
# families) and compare each group parameter's posterior mean and standard
# deviation. PyMC compiles the model to C on first use, which takes a while
# once; here NUTS runs on `N_NUTS_GROUPS` groups with short chains
# (`benchmarks/bench_advi.py` uses 30 groups and longer chains).

# %%
N_NUTS_GROUPS = 10
small = dr.subset(data, range(N_NUTS_GROUPS))
small_fits = {family: dr.summarise(dr.fit_advi(small, family, n_steps=2000,
                                               seed=SEED, progress=False)[0], family)
              for family in dr.FAMILIES}
try:
    import pymc as pm
except ImportError:
    pm = None
    print("PyMC is not installed: NUTS skipped. Install it with "
          "`pip install -r requirements-bonus.txt` to run this section.")
if pm is not None:
    start = time.perf_counter()
    with dr.pymc_model(small):
        trace = pm.sample(draws=300, tune=300, chains=2, cores=1, random_seed=SEED,
                          target_accept=0.9, progressbar=False)
    divergent = int(trace.sample_stats["diverging"].sum())
    print(f"NUTS: {time.perf_counter() - start:.0f} s (compilation included), "
          f"{divergent} divergent transitions")
    theta_draws = trace.posterior["theta"].values.reshape(-1, N_NUTS_GROUPS, 4)
    nuts = dr.summarise_draws(theta_draws)
    rows = {}
    for k, name in enumerate(dr.PARAMETERS):
        for family, s in small_fits.items():
            rows[(name, family)] = {
                "mean - NUTS mean (mean abs, in NUTS sds)":
                    ((s["mean"][:, k] - nuts["mean"][:, k]).abs()
                     / nuts["sd"][:, k]).mean().item(),
                "sd / NUTS sd (mean)": (s["sd"][:, k] / nuts["sd"][:, k]).mean().item(),
            }
    display_table = pd.DataFrame(rows).T.round(2)
    print(display_table)

# %% [markdown]
# The mean-field standard deviations are clearly smaller than NUTS's (about
# two thirds of them here); the per-group full-rank family comes close to
# NUTS. Both agree with NUTS on the means, within a fraction of a posterior
# standard deviation. (With only 10 groups the population scales `tau` are
# poorly known, and NUTS may report a few divergent transitions in that
# funnel; the benchmark's reference uses 30 groups and longer chains.)
#
# ## 7. At scale
#
# Set `N_GROUPS = 3000` in the imports cell and run again: 405,000
# observations, the size of the practitioner's study. The benchmark script
# `benchmarks/bench_advi.py` does that and also runs PyMC's own ADVI
# (`pm.fit`, mean-field and full-rank) on the same model and data. Its
# results on the workshop's 2-core machine (see `benchmarks/README.md` for
# the load while it ran):
#
# | method (3,000 steps each) | groups | seconds (load) | CPU s | 90% coverage |
# | --- | ---: | ---: | ---: | --- |
# | ours, mean-field | 3,000 | 37 (3-4), 236 (10-12) | 34-38 | 0.67-0.70 |
# | ours, full-rank per group | 3,000 | 46 (3-4), 181 (11-12) | 37 | 0.89-0.90 |
# | PyMC `advi` | 3,000 | 362 (5-9) | 133 | 0.63-0.69 |
# | ours, full-rank per group | 300 | 25 (9-10) | 8 | 0.87-0.90 |
# | PyMC `fullrank_advi` (not yet converged) | 300 | 282 (3-5) | 207 | 1.00 |
#
# Coverage is given for the four parameters (lowest to highest). Against
# NUTS on 30 groups, the mean-field standard deviations were 60-62% of
# NUTS's, the full-rank ones 95-98%.
#
# The whole model is one vectorised program, and the variational family has
# the structure of the model (one small block per group), so each step costs
# a few passes over the data. PyMC's full-rank family is one dense
# covariance over all parameters, which grows with the square of their
# number.
#
# **Further reading.** Kucukelbir, Tran, Ranganath, Gelman, Blei, *Automatic
# differentiation variational inference*, JMLR 18 (2017). Yao, Vehtari,
# Simpson, Gelman, *Yes, but did it work?: Evaluating variational
# inference*, ICML 2018 (diagnostics for when a Gaussian approximation
# misleads).
