# %% [markdown]
# # Part II: Neural networks and differential equations for disease trajectories
#
# ## The motivating problem
#
# A registry of spinal muscular atrophy (SMA), a rare neuromuscular
# disease, records baseline characteristics and, at irregular visits,
# motor-function tests.
#
# ![The SMA registry as a schematic](pictures/sma_example.png)
#
# Behind the tests lie a **latent health status**, its **dynamics**, and
# **heterogeneity** between patients. The plan: a network compresses each
# visit into a two-dimensional latent state, a linear ODE moves it, and
# another network turns each patient's baseline into the ODE's parameters,
# all fitted at once, on simulated data of the registry's shape.

# %%
import matplotlib.pyplot as plt
import torch

import helpers

SEED = 0  # Part II's seed: network initialisation and training noise

# %% [markdown]
# ## Background: variational autoencoders
#
# ![A variational autoencoder for one visit](pictures/vae.png)
#
# A **variational autoencoder** (VAE) describes a visit $x$ ($p = 10$ test
# results) by a latent state $z$ of its own: a **nonlinear factor
# analysis**, not a mixed model ($z$ is drawn per visit, not shared by a
# person's visits).
#
# * the **prior** $p(z) = N(0, I)$: the distribution of the factor scores;
# * the **decoder**, a network: the likelihood
#   $p(x \mid z) = N\big(m(z), \operatorname{diag} s^2(z)\big)$;
# * the **encoder**, another network: an approximate posterior
#   $q(z \mid x) = N\big(\mu(x), \operatorname{diag} \sigma^2(x)\big)$,
#   one network for every visit.
#
# Both networks are fitted by maximising
#
# $$\mathbb{E}_{z \sim q(z \mid x)}\big[\log p(x \mid z)\big]
#   - \beta \operatorname{KL}\big(q(z \mid x) \,\|\, p(z)\big),$$
#
# with $\operatorname{KL} = \tfrac12 \sum_k (\sigma_k^2 + \mu_k^2 - 1 - \log
# \sigma_k^2)$. With $\beta = 1$ this is the evidence lower bound (ELBO) on
# $\log p(x)$. Like the original we use $\beta = \tfrac12$, a
# **beta-weighted ELBO**, no longer a bound: it shrinks the latent states
# less towards the prior. The decoder's weights **and biases** get a ridge
# penalty $0.01\,\lVert \theta_{\text{dec}} \rVert^2$ once per individual:
# its total weight $0.01\,n$ grows with the cohort, so it is a penalty, not
# a fixed prior.
#
# **Reparameterisation.** The expectation is estimated with one draw,
# $z = \mu(x) + \sigma(x) \odot \varepsilon$, $\varepsilon \sim N(0, I)$,
# differentiable in $\mu, \sigma$.

# %% [markdown]
# ## Simulating the data
#
# * 100 individuals, two groups of 50. The true state follows $u' = A u$
#   from $u(0) = (2, 1)$ with $A = \operatorname{diag}(-0.2, -0.2)$ (group 1)
#   or $\operatorname{diag}(-0.2, 0.2)$ (group 2).
# * A baseline visit at $t = 0$ and 1 to 10 follow-ups at random times in
#   $[1.5, 10]$.
# * $p = 10$ measurements per visit: variables 1-5 copy $u_1$, 6-10 copy
#   $u_2$, each with an offset shared by everyone (sd 0.1) and fresh noise
#   (sd 0.5).
# * $q = 50$ baseline variables: 1-5 scatter around $a_{11}$, 6-10 around
#   the group's $a_{22}$ (sd 0.1), the other 40 are noise.
#
# `data/cohort.csv` holds this cohort (`helpers.load_cohort()` reads it).

# %%
cohort = helpers.simulate_cohort(n=100, p=10, q=50, baseline="trueparams",
                                 maxntps=10, sigma_var=0.1, sigma_ind=0.5, seed=12)
frame = cohort.to_frame()  # one row per visit
visits = frame.groupby("id").size()
print(f"{cohort.n} individuals, {len(frame)} visits "
      f"({visits.min()} to {visits.max()} per individual, median {visits.median():g})")
print(frame[["id", "group", "visit", "time", "x1", "x2", "x6", "x7", "b1", "b6"]]
      .head(8).to_string(index=False, float_format="{:.2f}".format))

# %%
helpers.plot_truth_and_data(cohort)
plt.show()

# %% [markdown]
# ## A VAE for single visits
#
# The encoder and the decoder, written out; `helpers.VAE` computes exactly
# this, as the assert checks:

# %%
def encode(vae, x):
    """Latent mean and log-variance, each (n_visits, 2), of visits x (n_visits, p)."""
    hidden = torch.tanh(vae.encoder(x)) + 1  # (n_visits, p)
    mean = vae.encoder_mean(hidden)
    logvar = -torch.relu(vae.encoder_logvar(hidden))  # at most 0 before the
    # trainable scale and shift below, which can move it anywhere
    return mean, vae.logvar_scale * logvar + vae.logvar_shift


def decode(vae, z):
    """Mean and log-variance, each (n_visits, p), of the likelihood at z."""
    hidden = torch.tanh(vae.decoder(z))
    return vae.decoder_mean(hidden), vae.decoder_logvar(hidden)


vae = helpers.VAE(cohort.p, zdim=2, seed=SEED)
print("parameters:", sum(weights.numel() for weights in vae.parameters()))
x = cohort.xs[0]  # the visits of individual 0
z = torch.randn(len(x), 2, generator=torch.Generator().manual_seed(SEED))
for ours, theirs in zip((*encode(vae, x), *decode(vae, z)), (*vae.encode(x),
                                                              *vae.decode(z))):
    assert torch.allclose(ours, theirs)

# %% [markdown]
# ### Your turn: the loss of one individual
#
# For the visits of **one** individual, `x` of shape `(n_visits, p)`, the
# loss is the penalised, beta-weighted negative ELBO summed over the visits:
#
# $$-\sum_j \Big(\log p(x_j \mid z_j) - \beta\,\operatorname{KL}_j\Big)
#   + 0.01\,\lVert \theta_{\text{dec}} \rVert^2,
#   \qquad z_j = \mu(x_j) + \sigma(x_j) \odot \varepsilon_j .$$
#
# **Your turn:** complete `vae_loss_one` with `encode`, `decode`,
# `reparameterise`, `helpers.gaussian_log_likelihood(x, mean, logvar)`
# (elementwise), `helpers.kl_to_standard_normal(mean, logvar)` (one value
# per visit), and the model's `kl_weight` ($\beta$), `penalty_weight` and
# `decoder_penalty()`.

# %%
def reparameterise(mean, logvar, eps):
    """Draw z = mean + sigma * eps, differentiable in mean and logvar."""
    return mean + torch.exp(0.5 * logvar) * eps


print(f"beta (kl_weight) {vae.kl_weight}, ridge weight {vae.penalty_weight}")
eps = torch.randn(len(x), vae.zdim, generator=torch.Generator().manual_seed(SEED))


# %%
# Your turn: replace the `...` with your code
def vae_loss_one(model, x, eps):
    # the loss (a scalar) of one individual's visits x (n_visits, p)
    ...


# %%
# Check: your loss against helpers.VAE.loss for individual 0
expected = vae.loss(helpers.make_batch(cohort, [0]), eps=eps)
mean_0, logvar_0 = vae.encode(x)
elbo_part = vae.negative_elbo(x, mean_0, logvar_0, eps=eps)
penalty_part = vae.penalty_weight * vae.decoder_penalty()
kl_part = helpers.kl_to_standard_normal(mean_0, logvar_0).sum()
answer = vae_loss_one(vae, x, eps)
if answer is None:
    verdict = "Not yet: vae_loss_one returns None; complete it above."
elif not torch.is_tensor(answer) or answer.numel() != 1:
    shape = tuple(answer.shape) if torch.is_tensor(answer) else type(answer).__name__
    verdict = f"Wrong: expected one number (sum over the visits), got {shape}."
elif torch.allclose(answer, expected, rtol=1e-5):
    verdict = f"Right: {answer.item():.4f}, as helpers computes."
elif any(torch.allclose(answer, -elbo_part + sign * penalty_part, rtol=1e-5)
         for sign in (1, -1)):
    verdict = "Wrong sign: the loss is the NEGATIVE ELBO plus the penalty."
elif torch.allclose(answer, elbo_part, rtol=1e-5):
    verdict = "Almost: add the ridge penalty, penalty_weight * decoder_penalty()."
elif torch.allclose(answer, expected + (1 - vae.kl_weight) * kl_part, rtol=1e-5):
    verdict = "Almost: weight the KL term by model.kl_weight (beta = 0.5)."
else:
    verdict = (f"Wrong: got {answer.item():.4f}, helpers says "
               f"{expected.item():.4f}; compare term by term.")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def vae_loss_one(model, x, eps):
#     mean, logvar = encode(model, x)
#     z = reparameterise(mean, logvar, eps)  # (n_visits, zdim)
#     decoded_mean, decoded_logvar = decode(model, z)  # (n_visits, p) each
#     log_likelihood = helpers.gaussian_log_likelihood(
#         x, decoded_mean, decoded_logvar).sum()
#     kl = helpers.kl_to_standard_normal(mean, logvar).sum()
#     penalty = model.penalty_weight * model.decoder_penalty()
#     return -(log_likelihood - model.kl_weight * kl) + penalty
# ```
#
# `helpers.VAE.negative_elbo` holds the first five lines; the ODE-VAE
# reuses it.
# </details>

# %% [markdown]
# ### Training the VAE
#
# `helpers.train` minimises this loss, summed over individuals, with Adam;
# an **epoch** is one pass through all individuals (here one update). Before
# training, the latent means (dots) of four individuals against their true
# trajectories (dotted):

# %%
helpers.plot_training_panels(vae, cohort, epoch=0)  # individuals 0-3
plt.show()

# %% [markdown]
# A latent space is identified only up to transformations: the prior looks
# the same after any rotation, and the decoder can undo sign, scale and
# shift. The plots align the latent means to the truth by order, sign,
# scale and shift per axis (not rotation); $R^2$ is the share of the
# truth's variance explained.

# %%
def show_progress(model, epoch):
    helpers.plot_training_panels(model, cohort, epoch=epoch)
    plt.show()


vae_history = helpers.train(vae, cohort, epochs=60, seed=SEED,
                            callback=show_progress, every=60)
print(f"loss per individual: {vae_history['loss'].iloc[0]:.1f} (epoch 1) -> "
      f"{vae_history['loss'].iloc[-1]:.1f} (epoch {len(vae_history)})")

# %% [markdown]
# Each visit is encoded on its own: nothing says how the state moves
# between visits, and the baseline variables are unused.
#
# ![A plain VAE encodes every visit on its own](pictures/vae_timeseries.png)
