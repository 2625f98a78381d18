# %% [markdown]
# # Part II: Neural networks and differential equations for disease trajectories
#
# ## The motivating problem
#
# Spinal muscular atrophy (SMA) is a rare neuromuscular disease. A patient
# registry follows patients over years: at the first visit we know baseline
# characteristics such as age and SMA type, and at later visits, at irregular
# times, patients take motor-function tests such as RULM (Revised Upper Limb
# Module) and HFMSE (Hammersmith Functional Motor Scale Expanded).
#
# ![The SMA registry as a schematic](pictures/sma_example.png)
#
# What we would like to learn is hidden behind the measurements:
#
# * a **latent health status** that the different tests measure, each in its
#   own way and with noise;
# * its **dynamics**: how it changes over time, smoothly;
# * **heterogeneity**: patients (and subgroups of patients) progress
#   differently, and the baseline characteristics may tell us how.
#
# With few patients and a handful of irregular visits each, a large black-box
# model has no chance. The plan: a small neural network compresses each visit
# into a two-dimensional latent state, a *known form* of dynamics (a linear ODE)
# moves that state through time, and another small network turns each
# patient's baseline characteristics into the parameters of their ODE. All of
# it is one differentiable program, fitted at once. The real registry data
# are not public, so we simulate data of the same shape.

# %%
import matplotlib.pyplot as plt
import torch

import helpers

SEED = 0  # Part II's seed: network initialisation and training noise

# %% [markdown]
# ## Background: variational autoencoders
#
# A **variational autoencoder** (VAE) learns a low-dimensional representation
# $z$ of a measurement $x$ (here: one visit, $p = 10$ test results).
#
# ![A variational autoencoder for one visit](pictures/vae.png)
#
# * The **encoder**, a neural network, maps a visit $x$ to the mean $\mu(x)$
#   and the log-variance $\log \sigma^2(x)$ of a Gaussian
#   $q(z \mid x) = N\big(\mu(x), \operatorname{diag} \sigma^2(x)\big)$: a
#   guess of the latent state, with its uncertainty.
# * The **decoder**, another network, maps a latent state $z$ to the mean
#   $m(z)$ and log-variance $\log s^2(z)$ of a Gaussian likelihood
#   $p(x \mid z) = N\big(m(z), \operatorname{diag} s^2(z)\big)$.
# * The **prior** of the latent state is standard normal, $p(z) = N(0, I)$.
#
# Both networks are fitted by maximising the **evidence lower bound** (ELBO),
# a lower bound of the log-likelihood $\log p(x)$:
#
# $$\operatorname{ELBO}(x) = \mathbb{E}_{z \sim q(z \mid x)}
#   \big[\log p(x \mid z)\big] - \operatorname{KL}\big(q(z \mid x) \,\|\, p(z)\big).$$
#
# The first term rewards good reconstructions; the second keeps the latent
# distribution close to the prior. For two Gaussians the KL term has a closed
# form,
# $\operatorname{KL} = \tfrac12 \sum_k \big(\sigma_k^2 + \mu_k^2 - 1 - \log
# \sigma_k^2\big)$. The expectation is estimated with a single draw of $z$.
#
# **The reparameterisation trick.** A random draw $z \sim q(z \mid x)$ has no
# derivative with respect to $\mu$ and $\sigma$. Written as
#
# $$z = \mu(x) + \sigma(x) \odot \varepsilon, \qquad \varepsilon \sim N(0, I),$$
#
# all randomness sits in $\varepsilon$, and $z$ is an ordinary differentiable
# function of the encoder's outputs.
#
# As in the original workshop, the KL term gets weight $\tfrac12$, the decoder's
# parameters a small penalty $0.01\,\lVert \theta_{\text{dec}} \rVert^2$, and
# an individual's loss is the sum over their visits.

# %% [markdown]
# ## Simulating the data
#
# The simulation mirrors the registry's shape (all standard deviations):
#
# * 100 individuals in two groups of 50. The true latent state
#   $u = (u_1, u_2)$ follows $u' = A u$ from $u(0) = (2, 1)$ with
#   $A = \operatorname{diag}(-0.2, -0.2)$ in group 1 and
#   $\operatorname{diag}(-0.2, 0.2)$ in group 2: $u_1$ declines in everyone,
#   $u_2$ declines in group 1 and rises in group 2.
# * A baseline visit at $t = 0$ and 1 to 10 follow-up visits at random times
#   between 1.5 and 10 (on a 0.1 grid; the same time can occur twice).
# * $p = 10$ measurements per visit: variables 1-5 are noisy copies of $u_1$,
#   variables 6-10 of $u_2$, each with its own offset (sd 0.1) and fresh noise
#   (sd 0.5).
# * $q = 50$ baseline variables; 10 of them carry information: variables 1-5
#   scatter around $a_{11} = -0.2$ (the same in both groups), variables 6-10
#   around the group's $a_{22}$ (-0.2 or 0.2), sd 0.1. The other 40 are noise.
#
# `data/cohort.csv` holds exactly this cohort, if you want to look at it with
# other software (`helpers.load_cohort()` reads it back).

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
# Left: the true trajectories of the two groups (dotted). Right: every
# measurement on top (dots). At the first visits the groups look alike; by
# $t = 10$ the second component differs by a factor of more than 50.
#
# ## A VAE for single visits
#
# `helpers.VAE` has the original's architecture for $p = 10$ variables and a
# two-dimensional latent space: encoder $h = \tanh(Wx + b) + 1$, then linear
# layers for $\mu$ and for $\log \sigma^2$ (the latter passed through
# $-\operatorname{relu}$ and a trainable scale and shift); decoder
# $\tanh(W' z + b')$, then linear layers for $m$ and $\log s^2$.

# %%
vae = helpers.VAE(cohort.p, zdim=2, seed=SEED)
print(vae)
print("parameters:", sum(weights.numel() for weights in vae.parameters()))

# %% [markdown]
# ### The loss, written out
#
# The networks are plumbing; the loss is the lesson. Here it is for the
# visits of **one** individual, `x` of shape `(n_visits, p)`, with the
# noise $\varepsilon$ passed in so that we can compare with `helpers`:

# %%
def reparameterise(mean, logvar, eps):
    """Draw z = mean + sigma * eps, differentiable in mean and logvar."""
    return mean + torch.exp(0.5 * logvar) * eps


def negative_elbo(model, x, latent_mean, latent_logvar, eps):
    """-(log p(x | z) - kl_weight * KL), summed over the visits in ``x``."""
    z = reparameterise(latent_mean, latent_logvar, eps)  # (n_visits, zdim)
    decoded_mean, decoded_logvar = model.decode(z)  # (n_visits, p) each
    log_likelihood = helpers.gaussian_log_likelihood(
        x, decoded_mean, decoded_logvar).sum()
    kl = helpers.kl_to_standard_normal(latent_mean, latent_logvar).sum()
    return -(log_likelihood - model.kl_weight * kl)


def vae_loss_one(model, x, eps):
    """The VAE loss of one individual's visits ``x`` ``(n_visits, p)``."""
    latent_mean, latent_logvar = model.encode(x)
    penalty = model.penalty_weight * model.decoder_penalty()
    return negative_elbo(model, x, latent_mean, latent_logvar, eps) + penalty


print(f"KL weight {vae.kl_weight}, decoder penalty weight {vae.penalty_weight}")
individual = 0
eps = torch.randn(len(cohort.ts[individual]), vae.zdim,
                  generator=torch.Generator().manual_seed(SEED))
ours = vae_loss_one(vae, cohort.xs[individual], eps)
theirs = vae.loss(helpers.make_batch(cohort, [individual]), eps=eps)
print(f"loss of individual {individual}: ours {ours.item():.4f}, "
      f"helpers {theirs.item():.4f}")
assert torch.allclose(ours, theirs)

# %% [markdown]
# ### Training the VAE
#
# The same loss, summed over many individuals and minimised with Adam, is what
# `helpers.train` does (fast: all visits of a mini-batch go through the
# networks together). Its `callback` lets us watch: every 30 epochs we plot
# the latent means (the encoder's $\mu$, dots) of the first four
# individuals against their true trajectories (dotted). A latent space is only
# defined up to sign, scale and shift, so the plots first align it to the
# truth by least squares; the title reports how much of the truth's variance
# the aligned latent means explain ($R^2$).

# %%
def show_progress(model, epoch):
    helpers.plot_training_panels(model, cohort, epoch=epoch)  # individuals 0-3
    plt.show()


vae_history = helpers.train(vae, cohort, epochs=60, seed=SEED,
                            callback=show_progress, every=30)
print(f"loss per individual: {vae_history['loss'].iloc[0]:.1f} (epoch 1) -> "
      f"{vae_history['loss'].iloc[-1]:.1f} (epoch {len(vae_history)})")

# %% [markdown]
# The encoder has found a latent space that follows the truth, but each visit
# is encoded on its own: the dots are not connected, nothing says how the
# state moves between visits, and nothing uses the baseline variables.
#
# ![A plain VAE encodes every visit on its own](pictures/vae_timeseries.png)
