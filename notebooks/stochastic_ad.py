# %% [markdown]
# # Bonus: derivatives of programs with discrete randomness
#
# *Backup material of the NORBIS workshop "Differentiable programming for
# flexible modelling with small data", Python edition.*
#
# Part I ended with a limit: automatic differentiation has nothing to say
# about a program that draws **discrete** random numbers. Many models in
# biostatistics are such programs: chain-binomial epidemics, branching
# processes, agent-based models, anything that counts. If a parameter $p$
# changes the *probabilities* of the counts, the expected output
# $E[f(X_p)]$ changes smoothly with $p$, but every single simulated run is a
# step function of $p$, and autodiff differentiates the run.
#
# This notebook builds, in plain PyTorch, the **stochastic triples** of Arya,
# Schauer, Schäfer and Rackauckas ("Automatic differentiation of programs
# with discrete randomness", NeurIPS 2022, arXiv:2210.08572), the idea behind
# the Julia package [StochasticAD.jl](https://github.com/gaurav-arya/StochasticAD.jl):
#
# 1. the problem: zero pathwise derivatives, and why finite differences do
#    not rescue us;
# 2. the score-function (REINFORCE) estimator: unbiased, but noisy;
# 3. stochastic triples: the idea with a picture, then the code (the triple
#    and a Bernoulli draw written here, then imported from `helpers`);
# 4. StochasticAD.jl's random-walk tutorial, reproduced, against the exact
#    derivative;
# 5. an epidemic (Reed-Frost): the derivative of the expected final size,
#    and a parameter fitted by stochastic gradient descent;
# 6. limits.
#
# Everything runs on a CPU in well under a minute (the sample counts below
# are chosen for that; more samples only shrink the error bars).

# %% [setup]

# %% [markdown]
# ## Imports
#
# `helpers/bonus/stochastic_ad.py` holds the triples, the draws and the two example
# models with their exact derivatives. One seed names every random stream.

# %%
import math
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch

from helpers.bonus import stochastic_ad as st

SEED = 2022
torch.set_num_threads(1)  # small tensors: one thread is fastest


def mean_and_error(estimates):
    """Mean and standard error of per-sample estimates."""
    return estimates.mean().item(), estimates.std().item() / math.sqrt(
        len(estimates))


# %% [markdown]
# ## 1. The problem: zero pathwise derivatives
#
# The simplest case: $X \sim \text{Bernoulli}(p)$ has $E[X] = p$, so
# $\frac{d}{dp}E[X] = 1$. PyTorch draws $X$ happily, with `requires_grad`
# even, but the derivative of every draw is 0:

# %%
p = torch.full((5,), 0.3, requires_grad=True)
x = torch.bernoulli(p)
x.sum().backward()
print("draws:", x.tolist(), " autodiff derivatives:", p.grad.tolist())

# %% [markdown]
# That is not a bug. For a fixed random number $u$, the draw is
# $X = 1$ if $u < p$ else $0$: a step function of $p$, flat almost
# everywhere. The derivative of the expectation lives in the rare event
# that a small change of $p$ *flips* the outcome.
#
# Our running example is the random walk from StochasticAD.jl's tutorial:
# $X_0 = 0$; at each step $X$ goes up by one with probability
# $e^{-X/p}$, else down by one; the output is $f = X_n^2$ after $n$ steps.
# The walk drifts up while $X$ is small compared with $p$. Here it is, written
# plainly for many samples at once (one entry per sample):


# %%
def walk_squared(p, n_steps, n_samples, seed):
    """X_n^2 of the random walk for n_samples walks, (n_samples,)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(n_samples, dtype=torch.float64)
    for _ in range(n_steps):
        up = torch.rand(n_samples, generator=generator, dtype=torch.float64)
        x = x + torch.where(up < torch.exp(-x / p), 1.0, -1.0)
    return x**2


N_STEPS, N_SAMPLES = 20, 10_000
P = 2.0 * N_STEPS
exact_mean, exact_derivative = st.random_walk_exact(P, N_STEPS)
print(f"n = {N_STEPS}, p = {P}: E[X_n^2] = {exact_mean:.3f}, "
      f"d/dp E[X_n^2] = {exact_derivative:.4f} (exact, section 4 shows how)")

# %% [markdown]
# **Finite differences** $\big(\bar f(p + h) - \bar f(p)\big)/h$ need two
# simulations. With *independent* random numbers, the noise of two means is
# divided by $h$: small $h$ gives wild estimates. With **common random
# numbers** (the same seed on both sides) most walks take the same path, so
# their difference is exactly 0, and the few whose path flips contribute a
# huge $(f(p+h) - f(p))/h$: unbiased only as $h \to 0$, and noisier the
# smaller $h$ is. Large $h$ cuts the noise but adds bias (the curve bends).

# %%
rows = []
base = walk_squared(P, N_STEPS, N_SAMPLES, seed=SEED)
for h in (8.0, 2.0, 0.5, 0.05):
    shifted_common = walk_squared(P + h, N_STEPS, N_SAMPLES, seed=SEED)
    shifted_independent = walk_squared(P + h, N_STEPS, N_SAMPLES, seed=SEED + 1)
    common = (shifted_common - base) / h  # one estimate per pair of walks
    mean_common, error_common = mean_and_error(common)
    mean_independent = (shifted_independent.mean() - base.mean()).item() / h
    error_independent = math.sqrt(
        (base.var() + shifted_independent.var()).item() / N_SAMPLES) / h
    rows.append({"h": h, "common numbers": f"{mean_common:.2f} ± {error_common:.2f}",
                 "pairs that differ": f"{(common != 0).float().mean():.1%}",
                 "independent": f"{mean_independent:.2f} ± {error_independent:.2f}"})
print(f"exact derivative {exact_derivative:.3f}; finite differences, "
      f"{N_SAMPLES:,} samples, mean ± standard error:")
pd.DataFrame(rows)

# %% [markdown]
# Neither column gives a trustworthy number at a usable cost: the
# independent one drowns in noise once $h$ is small; the common-numbers one
# rests on a shrinking share of walks whose path flipped, and for large $h$
# it estimates the slope of a chord, not the derivative.
#
# ## 2. The score-function (REINFORCE) estimator
#
# The classic unbiased estimator differentiates the *probability* of the
# path instead of the path: for a path with probability $P_p(\text{path})$,
# $$\frac{d}{dp} E[f] = E\Big[f \cdot \frac{d}{dp}\log P_p(\text{path})\Big],$$
# and the log-probability of the walk is a sum over steps: $\log q$ for a
# step up with $q = e^{-X/p}$, $\log(1 - q)$ for a step down, with
# $\frac{d}{dp}\log q = X/p^2$ and $\frac{d}{dp}\log(1 - q) = -q X /
# (p^2 (1 - q))$. Subtracting a **baseline** $b$ from $f$ keeps it unbiased
# (the score has mean 0) and usually cuts the variance; the batch average of
# $f$ is the simplest choice.


# %%
def score_function(p, n_steps, n_samples, seed, baseline):
    """Per-sample score-function estimates for the walk, (n_samples,)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(n_samples, dtype=torch.float64)
    score = torch.zeros(n_samples, dtype=torch.float64)  # d/dp log P(path)
    for _ in range(n_steps):
        prob_up = torch.exp(-x / p)
        up = torch.rand(n_samples, generator=generator, dtype=torch.float64) < prob_up
        dprob_up = prob_up * x / p**2
        score = score + torch.where(up, x / p**2, -dprob_up / (1 - prob_up))
        x = x + torch.where(up, 1.0, -1.0)
    f = x**2
    return (f - f.mean()) * score if baseline else f * score


for baseline in (False, True):
    ours = score_function(P, N_STEPS, N_SAMPLES, SEED, baseline)
    torch.testing.assert_close(
        ours, st.random_walk_score(P, N_STEPS, N_SAMPLES, SEED, baseline))
    mean, error = mean_and_error(ours)
    print(f"score function{' with baseline' if baseline else '':14s}: "
          f"{mean:7.3f} ± {error:.3f}, standard deviation {ours.std():7.2f}")
print(f"exact{'':23s}: {exact_derivative:7.3f}")

# %% [markdown]
# Unbiased, and the same as `st.random_walk_score` (which sections 4 and the
# benchmark use). But the score is a sum over all $n$ steps, each adding
# noise, and every sample's weight is its whole $f$: the standard deviation
# grows quickly with $n$, as section 4 shows.
#
# ## 3. Stochastic triples
#
# ### The idea
#
# Go back to one draw $X = [u < p]$. Move $p$ up by a tiny $\varepsilon$.
# If $X = 1$ nothing changes. If $X = 0$ (so $u \ge p$) the outcome flips
# to 1 exactly when $u$ lies in $[p, p + \varepsilon)$, which, given
# $X = 0$, has probability $\varepsilon / (1 - p)$. So the draw carries,
# besides its value, an **alternative** value (here $1$, a *jump* of $+1$)
# and a **weight**: the rate $1/(1-p)$ per unit of $\varepsilon$ at which the
# alternative happens. Then
# $$\frac{d}{dp}E[f(X)] = E\big[\,\text{weight} \times
# (f(X + \text{jump}) - f(X))\,\big],$$
# one sample at a time, with no $h$ to choose and no division by a small
# number.

# %%
fig, ax = plt.subplots(figsize=(8, 2.2))
p_draw, eps = 0.35, 0.08
ax.barh(0, p_draw, color="tab:blue", label="u < p: X = 1")
ax.barh(0, eps, left=p_draw, color="tab:red",
        label="u in [p, p + ε): X flips from 0 to 1")
ax.barh(0, 1 - p_draw - eps, left=p_draw + eps, color="tab:gray", alpha=0.4,
        label="X = 0 either way")
for position, text in ((p_draw, "p"), (p_draw + eps, "p + ε")):
    ax.annotate(text, (position, 0.45), ha="center", fontsize=11)
ax.set_xlim(0, 1)
ax.set_ylim(-0.6, 0.8)
ax.set_yticks([])
ax.set_xlabel("the draw's uniform number u")
ax.set_title("Given X = 0, the outcome flips with probability ε / (1 − p)")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=3, fontsize=9)
plt.show()

# %% [markdown]
# Everything computed from a draw carries this along: a **stochastic triple**
# holds, for every sample (a *lane*), the value, its ordinary derivative
# `delta` (for the smooth parts, e.g. $p^2$), and one weighted alternative.
# An operation applies itself to the value and to the alternative:
# alternative of $g(X)$ is $g(X + \text{jump})$, same weight. Two rules keep
# it small and correct:
#
# * **Pruning.** A later draw makes a new alternative while an earlier one
#   is still around. Each lane keeps **one**: the new one with probability
#   $w_\text{new} / (w_\text{old} + w_\text{new})$, else the old one, and
#   the survivor gets the weight $w_\text{old} + w_\text{new}$ (its weight
#   divided by its chance of surviving). On average this adds up both
#   contributions, so the estimate stays unbiased.
# * **Coupling.** A draw whose probability carries an alternative is made
#   in the alternative world with the **same** uniform number $u$, so the
#   two worlds stay as close as they can.
#
# `st.Lanes` holds what all triples of one run share: the random number
# generator and, per lane, which draw made the live alternative (`tag`) and
# its weight. Here is the triple with `+` and `*`, and the Bernoulli draw:


# %%
class Triple:
    """Value, derivative and one alternative per lane (a minimal version)."""

    def __init__(self, value, delta, jump, tag, lanes):
        self.value, self.delta, self.jump = value, delta, jump
        self.tag, self.lanes = tag, lanes  # tag: which draw the jump belongs to

    def alternative(self):
        live = self.tag == self.lanes.tag  # a pruned alternative no longer counts
        return self.value + torch.where(live, self.jump, 0.0)

    def __add__(self, other):
        other = lift(other, self.lanes)
        value = self.value + other.value
        alternative = self.alternative() + other.alternative()
        return Triple(value, self.delta + other.delta, alternative - value,
                      self.lanes.tag, self.lanes)

    def __mul__(self, other):
        other = lift(other, self.lanes)
        value = self.value * other.value
        delta = self.delta * other.value + self.value * other.delta
        alternative = self.alternative() * other.alternative()
        return Triple(value, delta, alternative - value, self.lanes.tag, self.lanes)

    __radd__, __rmul__ = __add__, __mul__


def lift(number, lanes):
    """A plain number as a triple: no derivative, no alternative."""
    if isinstance(number, Triple):
        return number
    value = torch.full(lanes.tag.shape, float(number), dtype=torch.float64)
    zeros = torch.zeros_like(value)
    return Triple(value, zeros, zeros, lanes.tag, lanes)


def bernoulli(prob):
    """X = 1 if u < prob else 0, with its own alternative, pruned and coupled."""
    lanes = prob.lanes
    u = lanes.uniform()
    x = (u < prob.value).double()
    x_alternative = (u < prob.alternative()).double()  # coupling: the same u
    # delta > 0: 0 -> 1 at rate delta / (1 - p); delta < 0: 1 -> 0 at -delta / p
    d = prob.delta
    weight = torch.where(d > 0, d / (1 - prob.value), -d / prob.value)
    can_flip = torch.where(d > 0, x == 0, x == 1) & (d != 0)
    weight = torch.where(can_flip, weight, 0.0)
    jump = torch.where(d > 0, 1.0, -1.0)
    # pruning: keep the new alternative with probability weight / total
    lanes.draws += 1
    total = lanes.weight + weight
    keep_new = lanes.uniform() * total < weight
    lanes.tag = torch.where(keep_new, lanes.draws, lanes.tag)
    lanes.weight = total
    jump = torch.where(keep_new, jump, x_alternative - x)
    return Triple(x, torch.zeros_like(x), jump, lanes.tag, lanes)


def estimate(program, p, n_samples, seed):
    """Per-sample estimates delta + weight * jump of d/dp E[program(p)]."""
    lanes = st.Lanes(n_samples, seed)
    ones = torch.ones(n_samples, dtype=torch.float64)
    output = program(Triple(p * ones, ones, 0 * ones, lanes.tag, lanes))
    return output.delta + lanes.weight * (output.alternative() - output.value)


# %% [markdown]
# First check: $E[X] = p$ for $X \sim \text{Bernoulli}(p)$, derivative 1.
# Then a program with a smooth part and two draws, the second one's
# probability depending on the first (so coupling and pruning both act):
# $X_1 \sim \text{Bernoulli}(p^2)$, $X_2 \sim \text{Bernoulli}(0.2 + 0.6 X_1)$,
# output $p X_1 + 3 X_2$, with $E = p^3 + 0.6 + 1.8 p^2$. The helpers' full
# version, `st.derivative_estimate`, runs the same algorithm and must give
# the same numbers, lane by lane.

# %%
one_draw = estimate(bernoulli, 0.3, N_SAMPLES, seed=SEED)
mean, error = mean_and_error(one_draw)
print(f"d/dp E[Bernoulli(p)] at p = 0.3: {mean:.3f} ± {error:.3f} (exact 1); "
      f"{(one_draw != 0).float().mean():.0%} of the samples are not 0")


def two_draws(p, draw):
    first = draw(p * p)
    second = draw(first * 0.6 + 0.2)  # 0.2 or 0.8, depending on the first draw
    return first * p + second * 3


ours = estimate(lambda p: two_draws(p, bernoulli), 0.4, N_SAMPLES, seed=SEED)
theirs = st.derivative_estimate(lambda p: two_draws(p, st.bernoulli), 0.4,
                                N_SAMPLES, seed=SEED)
torch.testing.assert_close(ours, theirs)
# E = p^3 + 3 (0.2 + 0.6 p^2), so the derivative is 3 p^2 + 3.6 p
mean, error = mean_and_error(theirs)
exact = 3 * 0.4**2 + 3.6 * 0.4
print(f"two draws: {mean:.3f} ± {error:.3f} (exact {exact:.3f}, "
      f"{abs(mean - exact) / error:.1f} standard errors away); the notebook's "
      "triple and the helpers' agree in every lane")

# %% [markdown]
# `helpers.bonus.stochastic_ad` adds what a real program needs: `-`, `/`, `**`,
# `exp`, `log` (also as `torch.exp`, `torch.log`), and the draws
# `binomial(n, prob)` (`n` may itself be a draw), `poisson(rate)`,
# `geometric(prob)` (failures before the first success) and
# `categorical(probs)`, each with its own jump weights (for instance a
# binomial count gains one success at rate $\delta\,(n - X)/(1 - p)$, a
# Poisson count one event at rate $\delta$). A quick check of each against
# the exact derivative of $E[X^2]$:

# %%
checks = {  # name: (program, p, exact derivative of E[X^2])
    "bernoulli(p)": (lambda p: st.bernoulli(p) ** 2, 0.3, 1.0),
    "binomial(10, p)": (lambda p: st.binomial(10, p) ** 2, 0.3,
                        10 * (1 - 2 * 0.3) + 200 * 0.3),
    "poisson(p)": (lambda p: st.poisson(p) ** 2, 2.5, 1 + 2 * 2.5),
    "geometric(p)": (lambda p: st.geometric(p) ** 2, 0.4,
                     -4 / 0.4**3 + 3 / 0.4**2),
    "categorical([p, 1-2p, p])": (
        lambda p: st.categorical([p, 1 - 2 * p, p]) ** 2, 0.2, 2.0),
}
rows = []
for name, (program, p_check, exact) in checks.items():
    mean, error = mean_and_error(st.derivative_estimate(program, p_check,
                                                        N_SAMPLES, seed=SEED))
    rows.append({"draw": name, "p": p_check, "exact": round(exact, 3),
                 "estimate": f"{mean:.3f} ± {error:.3f}"})
pd.DataFrame(rows)

# %% [markdown]
# ## 4. The random walk, reproduced
#
# As in StochasticAD.jl's tutorial: $n = 10, 20, \dots, 100$ steps with
# $p = 2n$, 10,000 samples per estimator. With triples, the walk is the
# plain program below (also `st.random_walk`): no hand-made score, no $h$.
#
# The **exact** derivative: the walk never goes below 0 (at $X = 0$ it
# steps up with probability 1) nor above $n$, so it is a Markov chain on
# $0, \dots, n$ with a transition matrix $T(p)$. The distribution after
# $n$ steps is the first row of $T(p)^n$, $E[X_n^2]$ is a dot product, and
# autodiff differentiates through the matrix power
# (`st.random_walk_exact`).


# %%
def random_walk(p, n_steps):
    x = 0.0
    for _ in range(n_steps):
        step = st.bernoulli(st.exp(-x / p))
        x = x + 2 * step - 1
    return x**2


rows = []
for n in range(10, 101, 10):
    exact = st.random_walk_exact(2.0 * n, n)[1]
    start = time.perf_counter()
    triples = st.derivative_estimate(random_walk, 2.0 * n, N_SAMPLES,
                                     seed=SEED + n, n_steps=n)
    seconds = time.perf_counter() - start
    score = st.random_walk_score(2.0 * n, n, N_SAMPLES, seed=SEED + n)
    score_baseline = st.random_walk_score(2.0 * n, n, N_SAMPLES, seed=SEED + n,
                                          baseline=True)
    mean, error = mean_and_error(triples)
    rows.append({"n": n, "exact": exact, "triples mean": mean,
                 "s.e.": error, "|mean - exact| / s.e.": abs(mean - exact) / error,
                 "std triples": triples.std().item(),
                 "std score + baseline": score_baseline.std().item(),
                 "std score": score.std().item(), "seconds (triples)": seconds})
walk = pd.DataFrame(rows).set_index("n")
# the program above is the helpers' one: same numbers on the same seed
torch.testing.assert_close(triples, st.derivative_estimate(
    st.random_walk, 2.0 * n, N_SAMPLES, seed=SEED + n, n_steps=n))
walk.round(3)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for column, label in (("std score", "score function"),
                      ("std score + baseline", "score function, batch-mean baseline"),
                      ("std triples", "stochastic triples")):
    ax.plot(walk.index, walk[column], "o-", label=label)
ax.set_yscale("log")
ax.set_xlabel("number of steps n (p = 2n)")
ax.set_ylabel("standard deviation of one estimate")
ax.set_title("Random walk: spread of the derivative estimators")
ax.legend()
plt.show()
print("at n = 100, triples' std / score function with baseline: "
      f"{walk.loc[100, 'std triples'] / walk.loc[100, 'std score + baseline']:.2f}"
      f", / plain score function: "
      f"{walk.loc[100, 'std triples'] / walk.loc[100, 'std score']:.3f}")

# %% [markdown]
# Every triple mean is within a few standard errors of the exact value, and
# the triples' spread grows far more slowly with $n$ than the score
# function's. `benchmarks/bench_stochastic.py` repeats this table on other
# seeds and times it.
#
# ## 5. An epidemic: the Reed-Frost chain binomial
#
# A small population (a household, a ward, a school class) with $S_0$
# susceptibles and $I_0$ infectives. In each generation every susceptible
# escapes each infective independently with probability $1 - \pi$, so
# $$I_{t+1} \sim \text{Binomial}\big(S_t,\; 1 - (1 - \pi)^{I_t}\big),\qquad
# S_{t+1} = S_t - I_{t+1}.$$
# The **final size** is the number of the $S_0$ who were ever infected. Its
# expectation has no closed form, but a small population allows an exact
# **dynamic programme** over the states $(S, I)$: the probability of every
# state after each generation, with autodiff through it
# (`st.reed_frost_exact`). The triple program is the model as written; note
# that the binomial's count $S_t$ is itself a random draw, and that the
# loop runs a fixed $S_0$ generations (a finished epidemic draws zeros): a
# `while I > 0` would branch on a random value (section 6).


# %%
def reed_frost(pi, susceptible, infected):
    s, i = susceptible, infected
    for _ in range(susceptible):
        new = st.binomial(s, 1 - (1 - pi) ** i)
        s, i = s - new, new
    return susceptible - s


SUSCEPTIBLE, INFECTED, PI = 19, 1, 0.08
exact_size, exact_slope = st.reed_frost_exact(PI, SUSCEPTIBLE, INFECTED)
sizes, slopes = st.derivative_estimate(
    reed_frost, PI, N_SAMPLES, seed=SEED, return_values=True,
    susceptible=SUSCEPTIBLE, infected=INFECTED)
torch.testing.assert_close(slopes, st.derivative_estimate(
    st.reed_frost, PI, N_SAMPLES, seed=SEED, susceptible=SUSCEPTIBLE,
    infected=INFECTED))
mean, error = mean_and_error(slopes)
print(f"S0 = {SUSCEPTIBLE}, I0 = {INFECTED}, pi = {PI}: E[final size] = "
      f"{exact_size:.3f} (exact), {sizes.mean():.3f} (simulated)")
print(f"d/dpi E[final size]: exact {exact_slope:.2f}, triples {mean:.2f} ± "
      f"{error:.2f} ({abs(mean - exact_slope) / error:.1f} standard errors away)")

# %% [markdown]
# ### Fitting $\pi$ by stochastic gradient descent
#
# Suppose outbreaks in wards of this size end, on average, with 8 infected
# among the 19 susceptibles. Which $\pi$ gives that mean? With
# $m(\pi) = E[\text{final size}]$, the loss $(m(\pi) - 8)^2$ has gradient
# $2\,(m(\pi) - 8)\,m'(\pi)$. We estimate the two
# factors from **two halves** of one batch of simulations (a product of two
# estimates from the same samples would be biased) and hand the gradient
# to Adam. No derivative of the simulator was written by hand. Near the
# answer the gradient is mostly noise, so the estimate of $\pi$ is the
# average of the last 20 of 50 steps (Polyak averaging).

# %%
TARGET = 8.0
pi = torch.tensor(0.04, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.Adam([pi], lr=0.01)
path = []
for step in range(50):
    sizes, slopes = st.derivative_estimate(
        st.reed_frost, pi.item(), 1000, seed=SEED + step, return_values=True,
        susceptible=SUSCEPTIBLE, infected=INFECTED)
    pi.grad = 2 * (sizes[:500].mean() - TARGET) * slopes[500:].mean()
    optimizer.step()
    with torch.no_grad():
        pi.clamp_(0.001, 0.999)
    path.append(pi.item())
fitted = sum(path[-20:]) / 20

grid = torch.linspace(0.02, 0.2, 10).tolist()
curve = [st.reed_frost_exact(value, SUSCEPTIBLE, INFECTED)[0] for value in grid]
# the curve rises with pi: interpolate where it crosses the target
above = next(k for k, size in enumerate(curve) if size > TARGET)
share = (TARGET - curve[above - 1]) / (curve[above] - curve[above - 1])
crossing = grid[above - 1] + share * (grid[above] - grid[above - 1])
print(f"fitted pi = {fitted:.4f}; exact E[final size] there: "
      f"{st.reed_frost_exact(fitted, SUSCEPTIBLE, INFECTED)[0]:.2f} (target "
      f"{TARGET}; the exact curve crosses it near pi = {crossing:.3f})")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
left.plot(grid, curve, "o-", markersize=3,
          label="exact E[final size] (dynamic programme)")
left.axhline(TARGET, color="gray", linestyle=":", label=f"target {TARGET}")
left.axvline(fitted, color="tab:red", linestyle="--", label="fitted π")
left.set_xlabel("π (infection probability per contact)")
left.set_ylabel("expected final size")
left.legend(loc="lower right")
right.plot(range(1, len(path) + 1), path, "o-", markersize=3,
           label="π after each Adam step")
right.axhline(fitted, color="tab:red", linestyle="--",
              label="fitted π (mean of the last 20)")
right.set_xlabel("step")
right.set_ylabel("π")
right.legend()
fig.suptitle("Reed-Frost: fitting π to a mean final size of 8 with triple "
             "gradients")
plt.show()

# %% [markdown]
# ## 6. Limits
#
# * **No branching on a random value.** A triple follows one path per
#   sample; an `if` on a draw would need the alternative's path too. The
#   helpers refuse clearly (below); write the choice as arithmetic
#   (`flag * a + (1 - flag) * b`), or run a fixed number of steps.
# * **Draws by comparison** such as `torch.rand(()) < p` are invisible to
#   the triples: use the draws of `helpers.bonus.stochastic_ad`, which know their
#   jump rates.
# * **First derivatives only**, in forward mode: one parameter per run (for
#   several parameters, one run each). StochasticAD.jl has more: other
#   distributions, other pruning strategies, and integration with Julia's
#   autodiff tools.
# * **Variance still grows** in long programs with many draws (users of the
#   Julia package report this too), though far more slowly than the score
#   function's.
# * **Relaxations are the alternative, and biased.** The straight-through
#   estimator (use the draw forward, pretend it was the identity backward)
#   and Gumbel-softmax (replace a categorical draw by a soft, temperature-
#   controlled one) give low-variance gradients of a *different* model;
#   the bias does not go away with more samples.

# %%
def branching_walk(p):
    x = st.bernoulli(p)
    if x:  # the learner's `if` on a draw
        return x * 2
    return x


try:
    st.derivative_estimate(branching_walk, 0.5, 10)
except TypeError as error:
    print("TypeError:", error)

# %% [markdown]
# ## Summary
#
# * Autodiff differentiates each simulated path; with discrete draws the
#   path is flat in the parameter, so the information sits in the rare flips.
# * Stochastic triples carry those flips along as one weighted alternative
#   per sample, pruned to stay small and coupled to stay close: unbiased
#   derivative estimates of the *expected* output, from the plain program.
# * On StochasticAD.jl's random walk they are several times less noisy than
#   the score function with a baseline; on a chain-binomial epidemic they give
#   the exact derivative's value within the error bars and drive a fit.
#
# For speed and the full table on other seeds, see
# `benchmarks/README.md` (section "Stochastic triples").
