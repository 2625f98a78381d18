# %% [markdown]
# # Part II: Neural networks and differential equations for disease trajectories
#
# ## The motivating problem
#
# Spinal muscular atrophy (SMA) is a rare neuromuscular disease. A registry
# records baseline characteristics (age, SMA type) and, at irregular later
# visits, motor-function tests such as RULM and HFMSE.
#
# ![The SMA registry as a schematic](pictures/sma_example.png)
#
# Behind the tests lie a **latent health status**, its **dynamics**, and
# **heterogeneity** between patients. The plan: a network compresses each
# visit into a two-dimensional latent state, a linear ODE moves it through
# time, and another network turns each patient's baseline into the ODE's
# parameters, all fitted at once, on simulated data of the registry's shape.

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
# results) by a latent state $z$, in the language of a mixed model:
#
# * the **prior** $p(z) = N(0, I)$ plays the random-effects distribution;
# * the **decoder**, a network, gives the likelihood
#   $p(x \mid z) = N\big(m(z), \operatorname{diag} s^2(z)\big)$;
# * the **encoder**, another network, gives an approximate posterior
#   $q(z \mid x) = N\big(\mu(x), \operatorname{diag} \sigma^2(x)\big)$ for
#   each visit, much like a BLUP with its uncertainty, but computed by one
#   network for everyone.
#
# Both networks are fitted by maximising
#
# $$\mathbb{E}_{z \sim q(z \mid x)}\big[\log p(x \mid z)\big]
#   - \beta \operatorname{KL}\big(q(z \mid x) \,\|\, p(z)\big),$$
#
# with $\operatorname{KL} = \tfrac12 \sum_k (\sigma_k^2 + \mu_k^2 - 1 - \log
# \sigma_k^2)$. With $\beta = 1$ this is the evidence lower bound (ELBO) on
# $\log p(x)$. Like the original we use $\beta = \tfrac12$, a
# **beta-weighted ELBO**, which is no longer a bound: a smaller $\beta$
# shrinks the latent states less towards the prior and favours sharper
# reconstructions. The decoder's weights get a ridge penalty
# $0.01\,\lVert \theta_{\text{dec}} \rVert^2$, a Gaussian prior on them.
#
# **Reparameterisation.** The expectation is estimated with one draw,
# $z = \mu(x) + \sigma(x) \odot \varepsilon$, $\varepsilon \sim N(0, I)$: the
# randomness sits in $\varepsilon$, and $z$ is differentiable in $\mu, \sigma$.

# %% [markdown]
# ## Simulating the data
#
# * 100 individuals, two groups of 50. The true state $u$ follows $u' = A u$
#   from $u(0) = (2, 1)$ with $A = \operatorname{diag}(-0.2, -0.2)$ (group 1)
#   or $\operatorname{diag}(-0.2, 0.2)$ (group 2): $u_2$ declines in group 1
#   and rises in group 2.
# * A baseline visit at $t = 0$ and 1 to 10 follow-ups at random times in
#   $[1.5, 10]$.
# * $p = 10$ measurements per visit: variables 1-5 copy $u_1$, 6-10 copy
#   $u_2$, each with an offset (sd 0.1) and fresh noise (sd 0.5).
# * $q = 50$ baseline variables; variables 1-5 scatter around $a_{11}$, 6-10
#   around the group's $a_{22}$ (sd 0.1), the other 40 are noise.
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
# At the first visits the groups look alike; by $t = 10$ the second component
# differs by a factor of more than 50.
#
# ## A VAE for single visits
#
# The encoder and the decoder, written out. `helpers.VAE` holds the layers
# (Glorot-initialised) and computes exactly this, as the assert checks:

# %%
def encode(vae, x):
    """Latent mean and log-variance, each (n_visits, 2), of visits x (n_visits, p)."""
    hidden = torch.tanh(vae.encoder(x)) + 1  # (n_visits, p)
    mean = vae.encoder_mean(hidden)
    logvar = -torch.relu(vae.encoder_logvar(hidden))  # at most 0: sigma <= 1
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
# ### The loss, written out
#
# For the visits of **one** individual, `x` of shape `(n_visits, p)`, with
# $\varepsilon$ passed in so that we can compare with `helpers`:

# %%
def reparameterise(mean, logvar, eps):
    """Draw z = mean + sigma * eps, differentiable in mean and logvar."""
    return mean + torch.exp(0.5 * logvar) * eps


def negative_elbo(model, x, latent_mean, latent_logvar, eps):
    """-(log p(x | z) - kl_weight * KL), summed over the visits in ``x``."""
    z = reparameterise(latent_mean, latent_logvar, eps)  # (n_visits, zdim)
    decoded_mean, decoded_logvar = decode(model, z)  # (n_visits, p) each
    log_likelihood = helpers.gaussian_log_likelihood(
        x, decoded_mean, decoded_logvar).sum()
    kl = helpers.kl_to_standard_normal(latent_mean, latent_logvar).sum()
    return -(log_likelihood - model.kl_weight * kl)


def vae_loss_one(model, x, eps):
    """The VAE loss of one individual's visits ``x`` ``(n_visits, p)``."""
    latent_mean, latent_logvar = encode(model, x)
    penalty = model.penalty_weight * model.decoder_penalty()
    return negative_elbo(model, x, latent_mean, latent_logvar, eps) + penalty


print(f"beta (kl_weight) {vae.kl_weight}, ridge weight {vae.penalty_weight}")
eps = torch.randn(len(x), vae.zdim, generator=torch.Generator().manual_seed(SEED))
ours = vae_loss_one(vae, x, eps)
theirs = vae.loss(helpers.make_batch(cohort, [0]), eps=eps)
print(f"loss of individual 0: ours {ours.item():.4f}, helpers {theirs.item():.4f}")
assert torch.allclose(ours, theirs)

# %% [markdown]
# ### Training the VAE
#
# `helpers.train` minimises this loss, summed over individuals, with Adam.
# An **epoch** is one pass through all individuals; `batch_size` individuals
# share one update (here all 100: one update per epoch). Before training,
# the latent means (dots) of four individuals against their true trajectories
# (dotted):

# %%
helpers.plot_training_panels(vae, cohort, epoch=0)  # individuals 0-3
plt.show()

# %% [markdown]
# A latent space is only defined up to some transformations: the prior
# $N(0, I)$ looks the same after any rotation, and the decoder can undo sign,
# scale and shift. The plots align the latent means to the truth by order,
# sign, scale and shift per axis (least squares), which cannot undo a
# rotation; $R^2$ in the title is the share of the truth's variance explained.

# %%
def show_progress(model, epoch):
    helpers.plot_training_panels(model, cohort, epoch=epoch)
    plt.show()


vae_history = helpers.train(vae, cohort, epochs=60, seed=SEED,
                            callback=show_progress, every=60)
print(f"loss per individual: {vae_history['loss'].iloc[0]:.1f} (epoch 1) -> "
      f"{vae_history['loss'].iloc[-1]:.1f} (epoch {len(vae_history)})")

# %% [markdown]
# The encoder follows the truth, but each visit is encoded on its own:
# nothing says how the state moves between visits, and nothing uses the
# baseline variables.
#
# ![A plain VAE encodes every visit on its own](pictures/vae_timeseries.png)
