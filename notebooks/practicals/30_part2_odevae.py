# %% [markdown]
# ## The ODE-VAE: a latent state that moves by an ODE
#
# The latent state of individual $i$ now follows a linear ODE with the
# individual's own rates, from the encoder's mean of the **baseline visit**:
#
# $$z_i'(t) = A_i\, z_i(t), \qquad A_i = \operatorname{diag}(a_{i,11}, a_{i,22}),
#   \qquad z_i(0) = \mu\big(x_i(0)\big).$$
#
# A third network, the **parameter network**, turns the $q = 50$ baseline
# variables $b_i$ into the rates,
#
# $$(a_{i,11}, a_{i,22}) = s \odot \Big(\operatorname{sigmoid}\big(W_2
#   \tanh(W_1 b_i + c_1) + c_2\big) - \tfrac12\Big) + d,$$
#
# with trainable $s$ and $d$: a regression of the ODE's parameters on the
# baseline. Know what these covariates carry: with the default
# `baseline="trueparams"`, variables 1-5 are each person's true $a_{11}$
# and 6-10 the true $a_{22}$, plus noise of sd 0.1: the network is handed
# the answer. With `"groupsonly"` it gets only a noisy group label (Results
# shows both).
#
# ![The ODE-VAE: baseline variables set the ODE parameters, the encoded
# baseline visit is the initial value, the ODE solution is decoded at the
# follow-up times](pictures/odevae.png)
#
# **The objective is the original workshop's penalised objective, not the
# ELBO of a generative model.** For individual $i$ with visits at
# $t_0 = 0 < \dots \le t_m$, the path $\tilde\mu_i(t) = e^{A_i
# t}\mu(x_i(0))$ is deterministic, from the encoder's *mean*. The loss adds:
#
# * per visit $j = 0, \dots, m$: $-\log p(x_{ij} \mid z_{ij})$ with one draw
#   $z_{ij} = \tilde\mu_i(t_j) + \sigma(x_{ij})\,\varepsilon_{ij}$ (weight 1),
#   plus $\beta = \tfrac12$ times
#   $\operatorname{KL}\big(N(\tilde\mu_i(t_j), \sigma^2(x_{ij}))\,\|\,N(0, I)\big)$,
#   a KL for *every* visit, which pulls the whole path towards 0;
# * the ridge penalty $0.01\,\lVert \theta_{\text{dec}} \rVert^2$;
# * an **ODE-consistency term** of weight 1,
#   $\sum_{j=1}^{m} \lVert \tilde\mu_i(t_j) - \mu(x_i(t_j)) \rVert^2$,
#   keeping the encoder's view of each follow-up close to the path.
#
# A coherent latent-ODE model (Rubanova et al. 2019) puts the uncertainty
# on the start, $z_i(0) \sim N(0, I)$, $z_i(t) = e^{A_i t} z_i(0)$; its ELBO
# $\mathbb{E}_{q(z_i(0) \mid \text{visits})}\big[\sum_j \log
# p(x_{ij} \mid z_i(t_j))\big] - \operatorname{KL}\big(q(z_i(0) \mid
# \text{visits})\,\|\,N(0, I)\big)$ has **one** KL per person. We keep
# the original's penalised fit.
#
# We hold out each individual's **last visit** (if they have two follow-ups
# or more).

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch

import helpers

SEED = 0  # network initialisation and training noise

cohort = helpers.load_cohort()
train_cohort, heldout = helpers.split_last_visit(cohort)
print(f"{len(heldout['ids'])} of {cohort.n} individuals have their last visit held out")

# %%
def ode_params(model, baseline):
    """ODE parameters (n, 2) from baseline variables (n, q): the parameter network."""
    hidden = torch.tanh(model.param_hidden(baseline))  # (n, q)
    raw = torch.sigmoid(model.param_out(hidden)) - 0.5  # (n, 2), in (-1/2, 1/2)
    return model.param_scale * raw + model.param_shift


model = helpers.ODEVAE(cohort.p, cohort.q, seed=SEED)
assert torch.allclose(ode_params(model, train_cohort.baseline),
                      model.ode_params(train_cohort.baseline))
network = (model.param_hidden, model.param_out, model.param_scale, model.param_shift)
n_network = sum(w.numel() for part in network for w in
                (part.parameters() if hasattr(part, "parameters") else [part]))
n_total = sum(weights.numel() for weights in model.parameters())
print(f"{n_total} parameters: {n_total - n_network} in the VAE, "
      f"{n_network} in the parameter network")

# %% [markdown]
# ### Your turn: the objective of one individual
#
# `latent_means_one` below returns the encoder means and log-variances of
# every visit and the ODE path `smooth_mean` at the visit times
# ($e^{A_i t} \mu(x_i(0))$); `consistency_term` sums the squared distances
# over the follow-ups.

# %%
def latent_means_one(model, x, t, baseline):
    """Encoder means, log-variances and ODE-smoothed means, each (n_visits, 2)."""
    mean, logvar = model.encode(x)
    rates = ode_params(model, baseline[None])  # (1, 2): a11, a22 of this individual
    n_visits = len(t)
    smooth_mean = model.solve(mean[0].expand(n_visits, -1),
                              rates.expand(n_visits, -1), t)  # (n_visits, 2)
    return mean, logvar, smooth_mean


def consistency_term(smooth_mean, mean):
    """Squared distance between ODE path and encoder means, over follow-ups."""
    return ((smooth_mean[1:] - mean[1:]) ** 2).sum()


individual = 0
x, t, baseline = (train_cohort.xs[individual], train_cohort.ts[individual],
                  train_cohort.baseline[individual])
eps = torch.randn(len(t), model.zdim, generator=torch.Generator().manual_seed(SEED))

# %% [markdown]
# **Your turn:** complete `odevae_loss_one`, the three terms above:
# `model.negative_elbo(x, latent_mean, latent_logvar, eps=eps)` at the
# path's means and the encoder's log-variances, plus
# `model.penalty_weight * model.decoder_penalty()`, plus
# `model.consistency_weight` times the consistency term.

# %%
# Your turn: replace the `...` with your code
def odevae_loss_one(model, x, t, baseline, eps):
    # the objective (a scalar) of one individual: visits x (n, p) at times t (n,)
    ...


# %%
# Check: your objective against helpers.ODEVAE.loss for one individual
expected = model.loss(helpers.make_batch(train_cohort, [individual]), eps=eps)
mean_i, logvar_i, smooth_i = latent_means_one(model, x, t, baseline)
penalty_i = model.penalty_weight * model.decoder_penalty()
gap_i = consistency_term(smooth_i, mean_i)
at_encoder = model.negative_elbo(x, mean_i, logvar_i, eps=eps) + penalty_i + gap_i
answer = odevae_loss_one(model, x, t, baseline, eps)
if answer is None:
    verdict = "Not yet: odevae_loss_one returns None; complete it above."
elif not torch.is_tensor(answer) or answer.numel() != 1:
    shape = tuple(answer.shape) if torch.is_tensor(answer) else type(answer).__name__
    verdict = f"Wrong: expected one number, got {shape}."
elif torch.allclose(answer, expected, rtol=1e-5):
    verdict = f"Right: {answer.item():.4f}, as helpers computes."
elif torch.allclose(answer, at_encoder, rtol=1e-5):
    verdict = ("Almost: take the negative ELBO at the ODE path's means "
               "(smooth_mean), not the encoder's.")
elif torch.allclose(answer, expected - 2 * model.consistency_weight * gap_i,
                    rtol=1e-5):
    verdict = "Wrong sign: ADD the consistency term; it is a penalty."
elif torch.allclose(answer, expected - model.consistency_weight * gap_i, rtol=1e-5):
    verdict = "Almost: add the consistency term, weighted by consistency_weight."
elif torch.allclose(answer, expected - penalty_i, rtol=1e-5):
    verdict = "Almost: add the ridge penalty, penalty_weight * decoder_penalty()."
else:
    verdict = (f"Wrong: got {answer.item():.4f}, helpers says "
               f"{expected.item():.4f}; compare term by term.")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def odevae_loss_one(model, x, t, baseline, eps):
#     mean, logvar, smooth_mean = latent_means_one(model, x, t, baseline)
#     loss = model.negative_elbo(x, smooth_mean, logvar, eps=eps)
#     loss = loss + model.penalty_weight * model.decoder_penalty()
#     return loss + model.consistency_weight * consistency_term(smooth_mean, mean)
# ```
# </details>

# %% [markdown]
# ### Training
#
# `helpers.train` minimises the sum over individuals with Adam, the whole
# cohort in one batch, 400 epochs (its engineering is in the
# [appendix](#appendix)). Four individuals before training, solid lines
# their latent ODE paths:

# %%
visit_counts = torch.tensor([len(t) for t in train_cohort.ts])
examples = []
for group in (1, 2):
    members = torch.nonzero(train_cohort.groups == group).flatten()
    most = torch.argsort(visit_counts[members], descending=True, stable=True)
    examples += members[most[:2]].tolist()
helpers.plot_training_panels(model, train_cohort, examples, epoch=0)
plt.show()

# %%
plotting_seconds = []


def show_progress(model, epoch):
    start = time.perf_counter()
    helpers.plot_training_panels(model, train_cohort, examples, epoch=epoch)
    plt.show()
    plotting_seconds.append(time.perf_counter() - start)


start = time.perf_counter()
history = helpers.train(model, train_cohort, epochs=400, seed=SEED,
                        callback=show_progress, every=400)
batched_seconds = time.perf_counter() - start - sum(plotting_seconds)
print(f"trained in {batched_seconds:.1f} s (without plotting)")

# %% [markdown]
# Dots: encoder means; dotted: the truth (aligned).
#
# ## Results
#
# One individual of each group, then every individual of each group:

# %%
figure, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, group in zip(axes, (1, 2)):
    first_member = int(torch.nonzero(train_cohort.groups == group)[0])
    helpers.plot_individual(model, train_cohort, first_member, ax=ax)
figure.tight_layout()
plt.show()

# %%
figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, group in zip(axes, (1, 2)):
    helpers.plot_group(model, train_cohort, group, ax=ax)
figure.tight_layout()
plt.show()

# %% [markdown]
# From the baseline variables alone, the model has learned whose second
# component will rise. `helpers.evaluate` reports:
#
# * **held-out MSE**: each held-out visit predicted from the **first** visit
#   and the baseline variables (floor $\sigma^2 = 0.25$);
# * **LOCF MSE**: carrying the **last** observed visit forward. It uses
#   later visits than the model, but carries one *noisy* visit forward
#   (floor $2\sigma^2 = 0.5$): the simplest baseline, not a like-for-like
#   one;
# * **group AUC**: how well a learned ODE parameter separates the groups
#   (best parameter and direction, so above 0.5 even with no difference);
# * **latent $R^2$**: share of the true trajectories' variance explained
#   after alignment. Only the sign of a rate is identified, not its size
#   (see the exercises).

# %%
scores = helpers.evaluate(model, train_cohort, heldout)
print(pd.Series({name: scores[name] for name in
                 ("heldout_mse", "locf_mse", "group_auc", "latent_r2")})
      .to_string(float_format="{:.3f}".format))

# %% [markdown]
# ### Your turn: predict a held-out visit by hand
#
# Complete `predict_visit`: encode the baseline visit `x0` (the mean),
# compute the rates with `ode_params(model, baseline[None])[0]`, solve
# $z' = A z$ with `torchdiffeq.odeint` over `torch.tensor([0.0, t])` (keep
# the last row), and decode (the mean).

# %%
# Your turn: replace the `...` with your code
def predict_visit(model, x0, baseline, t):
    # predicted visit (p,) at time t from the first visit x0 (p,), baseline (q,)
    ...


# %%
# Check: your predictions against helpers.evaluate
with torch.no_grad():
    predictions = [predict_visit(model, train_cohort.xs[i][0],
                                 train_cohort.baseline[i], float(t))
                   for i, t in zip(heldout["ids"].tolist(), heldout["times"])]
if any(prediction is None for prediction in predictions):
    verdict = "Not yet: predict_visit returns None; complete it above."
elif any(tuple(torch.as_tensor(pred).shape) != (cohort.p,) for pred in predictions):
    verdict = f"Wrong: each prediction must have shape ({cohort.p},)."
else:
    yours = ((torch.stack(predictions) - heldout["values"]) ** 2).mean().item()
    expected = helpers.evaluate(model, train_cohort, heldout)
    # your solver approximates the model's exact exp(A t) z0: allow 1%
    if abs(yours - expected["heldout_mse"]) <= 0.01 * expected["heldout_mse"]:
        verdict = (f"Right: held-out MSE {yours:.3f}, as evaluate says; carrying "
                   f"the last visit forward gives {expected['locf_mse']:.3f}.")
    else:
        verdict = (f"Wrong: your held-out MSE is {yours:.3f}, evaluate says "
                   f"{expected['heldout_mse']:.3f}.")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# from torchdiffeq import odeint
#
#
# def predict_visit(model, x0, baseline, t):
#     z0 = model.encode(x0)[0]
#     rates = ode_params(model, baseline[None])[0]
#     path = odeint(lambda s, z: rates * z, z0, torch.tensor([0.0, t]))
#     return model.decode(path[-1])[0]
# ```
#
# </details>
#
# The numbers above are one run. Over five data seeds not used to choose any
# default (2000-2004, `benchmarks/bench_results.py`), held-out MSE, mean
# $\pm$ sd:
#
# | method (what it uses) | `"trueparams"` | `"groupsonly"` |
# | --- | ---: | ---: |
# | LOCF (the person's last visit) | 1.19 $\pm$ 0.22 | 1.19 $\pm$ 0.22 |
# | linear mixed model (all the person's visits) | 0.76 $\pm$ 0.10 | 0.76 $\pm$ 0.10 |
# | ODE-VAE (first visit, baseline variables) | 0.34 $\pm$ 0.05 | 0.34 $\pm$ 0.05 |
#
# The linear mixed model (`helpers.mixed_model_predictions`) is the baseline
# a statistician would fit: per variable a random intercept and slope in
# time (REML), predicting each held-out visit from the fixed line plus the
# person's BLUP from all their earlier visits. It beats LOCF (it averages
# the noise instead of carrying one noisy visit), but a straight line
# through a few noisy visits extrapolates poorly to the last one and cannot
# follow a curve that decays or grows exponentially. The ODE-VAE does best
# although it sees only the first visit: it knows the curve's shape, and
# the baseline variables tell it which shape. It does so just as well with
# only a noisy group label, because the true rates differ only between
# groups. Part of every gap to LOCF is denoising (floors 0.5 and 0.25).
