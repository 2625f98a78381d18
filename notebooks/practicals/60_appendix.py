# %% [markdown]
# <a id="appendix"></a>
# # Appendix (optional): how the training is made fast
#
# This appendix is engineering, not modelling: how `helpers.train` solves a
# whole cohort in one go, and how the original workshop's one-person-at-a-time
# scheme compares. It runs on its own after the set-up cells; the last
# comparison trains for about a minute.

# %%
import math
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch

import helpers

SEED = 0  # as in Part II

cohort = helpers.load_cohort()
train_cohort, heldout = helpers.split_last_visit(cohort)

# %% [markdown]
# ## The original training loop, by hand
#
# The original trained one individual at a time: that individual's loss (a
# batch of one, `make_batch(cohort, [i])`), backpropagation, an Adam step,
# the next individual. Here is one pass over the first 30 individuals.
# `helpers.train` with `ORIGINAL_SETTINGS` runs the same scheme; with the same
# seed it draws the same noise and ends with the same weights.

# %%
print("original settings:", helpers.ORIGINAL_SETTINGS)
first_30 = train_cohort.subset(range(30))

by_hand = helpers.ODEVAE(cohort.p, cohort.q, seed=SEED)
optimiser = torch.optim.Adam(by_hand.parameters(), lr=helpers.ORIGINAL_SETTINGS["lr"])
noise = torch.Generator().manual_seed(SEED)
hand_losses = []
for i in range(first_30.n):  # fixed order, one individual per update
    eps = torch.randn(len(first_30.ts[i]), by_hand.zdim, generator=noise)
    loss = by_hand.loss(helpers.make_batch(first_30, [i]), eps=eps)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    hand_losses.append(loss.item())

with_helpers = helpers.ODEVAE(cohort.p, cohort.q, seed=SEED)
one_pass = dict(helpers.ORIGINAL_SETTINGS, epochs=1)
helper_history = helpers.train(with_helpers, first_30, seed=SEED, progress=False,
                               **one_pass)
difference = max((a - b).abs().max().item()
                 for a, b in zip(by_hand.parameters(), with_helpers.parameters()))
print(f"mean loss: by hand {sum(hand_losses) / len(hand_losses):.3f}, "
      f"helpers {helper_history['loss'].iloc[0]:.3f}")
print(f"largest difference between the trained weights: {difference:.1e}")
assert difference < 1e-4

# %% [markdown]
# ## The training engine of Part II
#
# `helpers.train`'s defaults put the whole cohort in one batch (one solve
# and one Adam update per epoch, 400 epochs), with Adam's averaging set to
# `betas=(0.85, 0.99)` (these betas are Adam's, not regression coefficients
# nor the KL weight) and a learning rate that rises linearly to 0.05 over
# the first 10% of the updates (a warm-up, which keeps early steps from
# saturating the tanh layers) and then falls along a cosine to 5% of it.
# Three starting points train side by side, judged by how well each
# predicts the training visits from each person's first visit: the worst
# stops after a sixth of the epochs, the better of the other two is kept
# after half of them and goes on alone. One batch removes the noise of
# picking individuals; the gradient is still a Monte Carlo estimate, since
# $\varepsilon$ is one random draw per visit.
#
# ## Many individuals in one solve: a clock for every visit
#
# Individuals have different visit times, yet one ODE solve serves the whole
# cohort. Give every visit $k$ (time $t_k$) its own copy of its individual's
# latent state and its own clock $s = t / t_k$ from 0 to 1. The copy
# $u_k(s) = z(s\,t_k)$ obeys
#
# $$\frac{du_k}{ds} = t_k \, f\big(s\,t_k,\, u_k;\ \theta_i\big),
# \qquad u_k(0) = z_i(0),$$
#
# so one solve of all visits from $s = 0$ to $s = 1$ ends with every visit at
# its own time: no interpolation between output times, and no visit waits for
# another's step sizes. (A baseline visit has $t_k = 0$ and stays put.) This
# is `model.solve` with a torchdiffeq solver, for any right-hand side
# (`ODEVAE(dynamics=..., method="rk4")`). A fixed-step solver must bound its
# step in real time: four steps per clock, an earlier default, are unstable
# once $|a|\,t_k/4 > 2.78$ (at $a = -1.5$, $t = 10$ they gave 194 for
# $e^{-15} = 3 \cdot 10^{-7}$), so the step is at most 0.5 time units. For
# the linear latent ODE of the practicals the default needs no solver at all:
# `method="closed_form"` computes the exact $e^{A t_k} z_i(0)$ for every visit
# in one batched call (`helpers.linear_solution`), accurate and stable at any
# rate. `helpers.make_batch` stacks the visits and records who owns each; the
# batched loss is the sum of the single ones:

# %%
batch = helpers.make_batch(train_cohort, [0, 1, 2])
print(f"{len(batch.x)} visits of {len(batch.ids)} individuals")
print("individual of each visit:", batch.owner.tolist())
print("time of each visit:      ", [round(t, 1) for t in batch.t.tolist()])
fresh = helpers.ODEVAE(cohort.p, cohort.q, seed=SEED)
ours = sum(fresh.loss(helpers.make_batch(train_cohort, [i]),
                      eps=torch.zeros(len(train_cohort.ts[i]), 2))
           for i in range(3))
theirs = fresh.loss(batch, eps=torch.zeros(len(batch.x), 2))
print(f"sum of three single losses {ours.item():.3f}, batched loss {theirs.item():.3f}")
assert torch.allclose(ours, theirs, rtol=1e-5)

# %% [markdown]
# (With $\varepsilon = 0$ for a noise-free comparison.) The previous engine
# solved once on the union of all visit times instead, interpolating at each
# one: extra output times add no solver steps, but each interpolation costs
# time, forwards and backwards (see `benchmarks/README.md`).
#
# ## The original settings, side by side
#
# The training defaults of Part II against the original scheme, on the same
# data and from the same initial weights: one individual per update, fixed
# order, Adam with learning rate $5 \cdot 10^{-4}$, 25 epochs. The
# comparison changes six things at once (batch size, learning rate, epochs,
# Adam's betas, the warm-up and cosine schedule, three starts): it shows the
# net effect of the engine, not which change matters, and it is one run.

# %%
def summarise(trained, history, batch_size, seconds):
    """One row of the results table."""
    scores = helpers.evaluate(trained, train_cohort, heldout)
    updates = len(history) * math.ceil(train_cohort.n / batch_size)
    return {"epochs": len(history), "Adam updates": updates, "seconds": seconds,
            "held-out MSE": scores["heldout_mse"], "LOCF MSE": scores["locf_mse"],
            "group AUC": scores["group_auc"], "latent R2": scores["latent_r2"]}


model = helpers.ODEVAE(cohort.p, cohort.q, seed=SEED)
start = time.perf_counter()
history = helpers.train(model, train_cohort, seed=SEED)
batched_seconds = time.perf_counter() - start

original = helpers.ODEVAE(cohort.p, cohort.q, seed=SEED)
start = time.perf_counter()
original_history = helpers.train(original, train_cohort, seed=SEED,
                                  **helpers.ORIGINAL_SETTINGS)
original_seconds = time.perf_counter() - start
default_batch = helpers.training.DEFAULT_BATCH_SIZE  # the whole cohort at once
results = {
    "batched (defaults)": summarise(model, history, default_batch, batched_seconds),
    "original settings": summarise(original, original_history,
                                   helpers.ORIGINAL_SETTINGS["batch_size"],
                                   original_seconds),
}
print(pd.DataFrame.from_dict(results, orient="index")
      .to_string(float_format="{:.3f}".format))
print(f"the batched defaults trained {original_seconds / batched_seconds:.1f} "
      "times faster")

# %%
figure, axes = plt.subplots(1, 3, figsize=(15, 4))
helpers.plot_losses({"batched (defaults)": history,
                     "original settings": original_history},
                    ax=axes[0], log_scale=True)
for ax, group in zip(axes[1:], (1, 2)):
    helpers.plot_group(original, train_cohort, group, ax=ax)
    ax.set_title(f"original settings, group {group}")
figure.tight_layout()
plt.show()

# %% [markdown]
# **Why the batched defaults win.** Per epoch, the original scheme lowers the
# training loss faster at first (left): it takes 100 Adam steps per epoch,
# the batched defaults one. But each of its steps needs its own ODE solve and
# follows a one-person gradient, noisy from the choice of person, so its
# learning rate must stay small; after 25 epochs it is still far from
# converged: compare its held-out MSE with the LOCF MSE in the table, and its
# group-1 curves with the truth (middle). The batched defaults take one step
# per epoch on the whole cohort's loss, which tolerates a 100 times larger
# learning rate; 400 such epochs, even with three starts, cost less time and
# get close to the noise floor of 0.25.
