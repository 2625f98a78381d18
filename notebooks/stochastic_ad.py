# %% [markdown]
# # Bonus: derivatives of programs with discrete randomness
#
# *Backup material of the NORBIS workshop "Differentiable programming for
# flexible modelling with small data", Python edition.*
#
# Part I differentiated programs with loops and branches (its section 2)
# in *reverse mode*: record the operations, then walk them back. Every
# number there was a smooth function of the parameters. Here we meet
# programs where that fails: programs that draw **discrete** random
# numbers. Many models in biostatistics are such programs: chain-binomial
# epidemics, branching processes, agent-based models, anything that
# counts. If a parameter $p$ changes the *probabilities* of the counts, the
# expected output $E[f(X_p)]$ changes smoothly with $p$, but every single
# simulated run is a step function of $p$, and autodiff differentiates the
# run.
#
# This notebook builds, in plain PyTorch, the **stochastic triples** of Arya,
# Schauer, Schäfer and Rackauckas ("Automatic differentiation of programs
# with discrete randomness", NeurIPS 2022, arXiv:2210.08572), the idea behind
# the Julia package [StochasticAD.jl](https://github.com/gaurav-arya/StochasticAD.jl):
#
# 1. the problem: zero pathwise derivatives, and why finite differences do
#    not rescue us;
# 2. the score-function (REINFORCE) estimator: unbiased, but noisy, and
#    the baselines that reduce its noise;
# 3. forward-mode autodiff with dual numbers, the machinery triples extend
#    (you write one operation);
# 4. stochastic triples: the idea with a picture, then the code (the triple
#    and a Bernoulli draw written here, then imported from `helpers`; you
#    write a geometric draw's alternative);
# 5. StochasticAD.jl's random-walk tutorial, reproduced, against the exact
#    derivative, and the estimators compared per unit of compute;
# 6. an epidemic (Reed-Frost): the derivative of the expected final size,
#    and its infection probability fitted by exact likelihood and by
#    stochastic gradients of the mean;
# 7. limits.
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
import os
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
      f"d/dp E[X_n^2] = {exact_derivative:.4f} (exact, section 5 shows how)")

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
# (the score has mean 0) and usually cuts the variance, *provided $b$ does
# not depend on the sample's own path*. The batch average $\bar f$ of all
# $N$ samples breaks that proviso a little: it contains $f_i/N$, so
# $E[(f_i - \bar f)\,s_i] = (1 - 1/N)\,\frac{d}{dp}E[f]$, biased towards 0
# by the factor $1 - 1/N$ (the other samples are independent of $s_i$,
# whose mean is 0). The **leave-one-out** baseline, the mean of the *other*
# $N - 1$ samples' $f$, has no such term and is unbiased; algebraically it is
# the batch-mean estimate times $N/(N - 1)$. At $N = 10{,}000$ the bias is
# 0.01%, far below the noise, but it is there, and with small batches
# (say $N = 10$) it is 10%.


# %%
def score_function(p, n_steps, n_samples, seed, baseline):
    """Per-sample score-function estimates for the walk, (n_samples,).

    baseline: "none", "batch mean" (biased by 1 - 1/N) or "leave-one-out".
    """
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
    if baseline == "batch mean":
        f = f - f.mean()  # includes f_i itself: the (1 - 1/N) bias
    elif baseline == "leave-one-out":
        f = f - (f.sum() - f) / (n_samples - 1)  # mean of the other samples
    return f * score


for baseline in ("none", "batch mean", "leave-one-out"):
    ours = score_function(P, N_STEPS, N_SAMPLES, SEED, baseline)
    torch.testing.assert_close(
        ours, st.random_walk_score(P, N_STEPS, N_SAMPLES, SEED, baseline))
    mean, error = mean_and_error(ours)
    print(f"score function, baseline {baseline:13s}: {mean:7.3f} ± {error:.3f}, "
          f"standard deviation {ours.std():7.2f}")
print(f"exact{'':30s}: {exact_derivative:7.3f}")

# %% [markdown]
# All three agree with `st.random_walk_score` (which section 5 and the
# benchmark use). The baseline cuts the spread by more than half; the
# batch-mean and leave-one-out columns differ only in the fourth digit, as
# the factor $N/(N-1)$ says. But the score is a sum over all $n$ steps,
# each adding noise, and every sample's weight is its whole $f$: the
# standard deviation grows quickly with $n$, as section 5 shows.
#
# ## 3. Forward mode: dual numbers
#
# Part I's autodiff runs the program, then walks the record backwards
# (*reverse mode*). Stochastic triples use the other mode, **forward
# mode**, which needs no record at all: every number carries its
# derivative along with it. A **dual number** is a pair
# $(v, \dot v)$, "value $v$, changing at rate $\dot v$ per unit of the
# input $p$". Start from $(p, 1)$ (the input changes at rate 1), and let every
# operation apply the chain rule as it goes:
# $(a, \dot a) + (b, \dot b) = (a + b, \dot a + \dot b)$ and
# $(a, \dot a)(b, \dot b) = (ab, \dot a b + a \dot b)$. The output's
# second part is the derivative. One run gives the derivative with respect
# to one input: cheap when there is one parameter, as here.


# %%
class Dual:
    """A value and its derivative with respect to one input (forward mode)."""

    def __init__(self, value, delta):
        self.value, self.delta = value, delta

    def __add__(self, other):
        other = other if isinstance(other, Dual) else Dual(other, 0.0)
        return Dual(self.value + other.value, self.delta + other.delta)

    def __mul__(self, other):
        other = other if isinstance(other, Dual) else Dual(other, 0.0)
        return Dual(self.value * other.value,
                    self.delta * other.value + self.value * other.delta)

    __radd__, __rmul__ = __add__, __mul__


p_dual = Dual(torch.tensor(1.5, dtype=torch.float64), 1.0)  # the input, rate 1
output = 3 * p_dual * p_dual + 2 * p_dual  # 3 p^2 + 2 p
print(f"3 p^2 + 2 p at p = 1.5: value {output.value:.2f}, derivative "
      f"{output.delta:.2f} (by hand: 6 p + 2 = 11)")
assert abs(output.delta - 11.0) < 1e-12

# %% [markdown]
# ### Your turn: the exponential of a dual number
#
# The random walk needs $e^{-X/p}$. Complete `dual_exp` so that it returns
# the dual number of $e^{x}$ for a dual number `x` (its `value` and `delta`
# are tensors): the value is $e^{v}$, and the derivative follows from the
# chain rule, $\frac{d}{dp} e^{v(p)} = e^{v}\,\dot v$.

# %%
# Your turn: replace the `...` with your code
def dual_exp(x):
    # a Dual: exp of x.value, and its derivative by the chain rule
    ...


# %%
# Check: dual_exp against exp and the chain rule, number by number
values = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=torch.float64)
rates = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
expected_value, expected_delta = values.exp(), values.exp() * rates
answer = dual_exp(Dual(values, rates))
if answer is None:
    verdict = "Not yet: dual_exp returns None; complete it above."
elif not isinstance(answer, Dual):
    verdict = f"Wrong: return a Dual(value, delta), got {type(answer).__name__}."
else:
    try:
        got_value = torch.as_tensor(answer.value, dtype=torch.float64)
        got_delta = torch.as_tensor(answer.delta, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        got_value = got_delta = None
    if got_value is None or got_value.shape != values.shape or (
            got_delta.shape != values.shape):
        verdict = ("Wrong: value and delta must be tensors of shape "
                   f"{tuple(values.shape)}, one entry per input number.")
    elif not torch.allclose(got_value, expected_value):
        verdict = f"Wrong: the value should be exp(v), {expected_value.tolist()}."
    elif torch.allclose(got_delta, expected_delta):
        verdict = "Right: exp(v) times the derivative of v, the chain rule."
    elif torch.allclose(got_delta, -expected_delta):
        verdict = "Wrong sign: the derivative of exp(v) is + exp(v) times v's."
    elif torch.allclose(got_delta, expected_value):
        verdict = ("Wrong: exp(v) alone is the derivative with respect to v; "
                   "multiply by x.delta, v's own derivative (chain rule).")
    else:
        verdict = (f"Wrong: delta {got_delta.tolist()}, expected "
                   f"{expected_delta.tolist()}.")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def dual_exp(x):
#     value = torch.exp(x.value)
#     return Dual(value, value * x.delta)
# ```
#
# Every function of a dual number is written like this: the function on
# the value, its derivative times the incoming rate on the second part.
# </details>

# %% [markdown]
# Now push a dual number through one Bernoulli draw, the way the random
# walk draws its steps: the value comes out, the derivative is 0, as in
# section 1. The draw turns $p$ into a 0 or a 1 and forgets how it got
# there; nothing in a dual number can say "a slightly larger $p$ would have
# flipped this draw". That missing piece is what a stochastic triple adds.

# %%
p_dual = Dual(torch.full((5,), 0.3, dtype=torch.float64), 1.0)
draw = Dual(torch.bernoulli(p_dual.value), 0.0)  # a draw is a constant to autodiff
print("draws:", draw.value.tolist(), " derivative carried:", draw.delta)

# ## 4. Stochastic triples
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
# holds, for every sample (a *lane*), the value and its ordinary derivative
# `delta` (a dual number, section 3, for the smooth parts such as $p^2$), and
# one weighted alternative.
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
# ### Your turn: the alternative of a geometric draw
#
# $X \sim \text{Geometric}(p)$ counts the failures before the first success,
# so $P(X \ge x) = (1 - p)^x$ and $P(X = x) = (1 - p)^x p$. Drawn from a
# uniform $u$ by the inverse CDF, $X$ can only *fall* when $p$ grows: more
# successes come sooner. When $p$ grows by $\varepsilon$, the probability
# $\varepsilon \cdot \big|\frac{d}{dp} P(X \ge x)\big| = \varepsilon\, x
# (1 - p)^{x - 1}$ moves from $X = x$ to $X = x - 1$. Given $X = x$, the
# draw therefore flips to $x - 1$ at the rate (the weight) of that
# probability divided by $P(X = x)$.
#
# **Your turn:** complete `geometric_alternative(x, p)` for draws `x` (a
# float64 tensor) at probability `p` and an input that grows at rate 1: return
# the pair `(jump, weight)`, tensors shaped like `x`, with the jump $-1$ (or
# 0 where no flip can happen) and the weight the rate worked out above. A
# weight is a rate, never negative: the direction goes into the jump.

# %%
# Your turn: replace the `...` with your code
def geometric_alternative(x, p):
    # (jump, weight), each shaped like x: X flips to x + jump at rate weight
    ...


# %%
# Check: your jump times weight, draw by draw, against the helpers' geometric
draws, helper_estimates = st.derivative_estimate(
    lambda p: st.geometric(p), 0.3, 200, seed=SEED, return_values=True)
answer = geometric_alternative(draws, 0.3)
if answer is None:
    verdict = "Not yet: geometric_alternative returns None; complete it above."
elif not isinstance(answer, tuple | list) or len(answer) != 2:
    verdict = f"Wrong: return a pair (jump, weight), got {type(answer).__name__}."
else:
    try:
        jump, weight = (torch.as_tensor(part, dtype=torch.float64) * torch.ones_like(
            draws) for part in answer)  # a number stands for every draw
    except (TypeError, ValueError, RuntimeError):
        jump = weight = None
    if jump is None or jump.shape != draws.shape or weight.shape != draws.shape:
        verdict = (f"Wrong: jump and weight must have the draws' shape "
                   f"{tuple(draws.shape)} (or be single numbers).")
    elif (weight < 0).any():
        verdict = "Wrong: a weight is a rate, never negative; the jump says -1."
    elif torch.allclose(jump * weight, helper_estimates):
        verdict = "Right: X falls by one at rate x / (p (1 - p)), as st.geometric."
    elif torch.allclose(jump * weight, -helper_estimates):
        verdict = "Wrong sign: a larger p makes X smaller, so the jump is -1."
    else:
        verdict = (f"Wrong: for x = 3 jump * weight should be "
                   f"{-3 / (0.3 * 0.7):.3f}; divide d/dp P(X >= x) by P(X = x).")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def geometric_alternative(x, p):
#     # d/dp P(X >= x) = -x (1 - p)^(x - 1); divided by P(X = x) = (1 - p)^x p
#     weight = x / (p * (1 - p))
#     jump = torch.where(x > 0, -1.0, 0.0)
#     return jump, weight
# ```
#
# Where $x = 0$ the weight is 0 anyway, so `jump = -torch.ones_like(x)`
# is as right. The average of `jump * weight` over many draws is
# $-E[X]/(p(1-p)) = -1/p^2 = \frac{d}{dp}\frac{1-p}{p}$, the derivative of
# $E[X]$. StochasticAD.jl and `st.geometric` use the same rule.
# </details>

# %% [markdown]
# ## 5. The random walk, reproduced
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
    seconds_triples = time.perf_counter() - start
    score = st.random_walk_score(2.0 * n, n, N_SAMPLES, seed=SEED + n)
    start = time.perf_counter()
    score_loo = st.random_walk_score(2.0 * n, n, N_SAMPLES, seed=SEED + n,
                                     baseline="leave-one-out")
    seconds_score = time.perf_counter() - start
    mean, error = mean_and_error(triples)
    rows.append({
        "n": n, "exact": exact, "triples mean": mean, "s.e.": error,
        "|mean - exact| / s.e.": abs(mean - exact) / error,
        "std triples": triples.std().item(),
        "std score, leave-one-out": score_loo.std().item(),
        "std score": score.std().item(),
        "seconds triples": seconds_triples, "seconds score": seconds_score,
        # variance x cost: the cost of reaching a given standard error
        "per second": (triples.var() * seconds_triples
                       / (score_loo.var() * seconds_score)).item(),
        # triples draw two uniforms per step (the step, the pruning), score one
        "per random number": (2 * triples.var() / score_loo.var()).item(),
    })
walk = pd.DataFrame(rows).set_index("n")
# the program above is the helpers' one: same numbers on the same seed
torch.testing.assert_close(triples, st.derivative_estimate(
    st.random_walk, 2.0 * n, N_SAMPLES, seed=SEED + n, n_steps=n))
walk.round(3)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for column, label in (("std score", "score function"),
                      ("std score, leave-one-out",
                       "score function, leave-one-out baseline"),
                      ("std triples", "stochastic triples")):
    ax.plot(walk.index, walk[column], "o-", label=label)
ax.set_yscale("log")
ax.set_xlabel("number of steps n (p = 2n)")
ax.set_ylabel("standard deviation of one estimate")
ax.set_title("Random walk: spread of the derivative estimators")
ax.legend()
plt.show()
print("at n = 100, std triples / std score with leave-one-out baseline: "
      f"{walk.loc[100, 'std triples'] / walk.loc[100, 'std score, leave-one-out']:.2f}"
      f"; / plain score function: "
      f"{walk.loc[100, 'std triples'] / walk.loc[100, 'std score']:.3f}")
print("variance x cost, triples / leave-one-out score (below 1: triples "
      f"cheaper): per second {walk['per second'].median():.2f}, per random "
      f"number {walk['per random number'].median():.2f} (medians over n; one "
      f"run, load average {os.getloadavg()[0]:.1f})")

# %% [markdown]
# Every triple mean is within a few standard errors of the exact value, and
# the triples' spread grows far more slowly with $n$ than the score
# function's: at $n = 100$ it is about 0.4 of the leave-one-out score
# function's and under a tenth of the plain one's.
#
# **Per unit of compute the picture changes.** A standard error shrinks as
# $\sqrt{\text{variance}/N}$, so the cost of a given precision is the
# variance times the cost of one sample; the last two columns divide that
# product for the triples by the one for the leave-one-out score function.
# Counted in random numbers (the triples draw two per step, one for the
# step and one for pruning) the triples need about a third of the work.
# Counted in seconds of this Python implementation they are about even:
# every triple operation does several tensor operations where the score
# function does one. The benchmark `benchmarks/bench_stochastic_ad.py`
# repeats this on other seeds and times it on a quiet core (table in
# `benchmarks/README.md`). So on this walk the triples' advantage is their
# variance and that the program is written plainly, not the clock; in a
# compiled implementation (StochasticAD.jl) the ratio per second would move
# towards the ratio per random number, which we have not measured.
#
# ## 6. An epidemic: the Reed-Frost chain binomial
#
# A small population (a household, a ward, a school class) with $S_0$
# susceptibles and $I_0$ infectives. In each generation every susceptible
# escapes each infective independently with probability $1 - \pi$, so
# $$I_{t+1} \sim \text{Binomial}\big(S_t,\; 1 - (1 - \pi)^{I_t}\big),\qquad
# S_{t+1} = S_t - I_{t+1}.$$
# The **final size** is the number of the $S_0$ who were ever infected. Its
# distribution has no closed form, but a small population allows an exact
# **dynamic programme** over the states $(S, I)$: the probability of every
# state after each generation, with autodiff through it. It gives the whole
# distribution of the final size (`st.reed_frost_final_size`) and its mean
# with the mean's derivative (`st.reed_frost_exact`). The triple program is
# the model as written; note that the binomial's count $S_t$ is itself a
# random draw, and that the
# loop runs a fixed $S_0$ generations (a finished epidemic draws zeros): a
# `while I > 0` would branch on a random value (section 7).


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
# ### The final size is bimodal
#
# The mean hides the shape. With one introduction, either the first
# infective infects nobody (probability $(1 - \pi)^{19} \approx 0.2$ at
# $\pi = 0.08$) or the outbreak takes off and reaches most of the ward:

# %%
distribution = st.reed_frost_final_size(PI, SUSCEPTIBLE, INFECTED)
simulated_share = torch.bincount(sizes.long(), minlength=SUSCEPTIBLE + 1) / N_SAMPLES
fig, ax = plt.subplots(figsize=(7, 3.2))
final_sizes = range(SUSCEPTIBLE + 1)
ax.bar(final_sizes, distribution, color="tab:blue", alpha=0.6,
       label="exact (dynamic programme)")
ax.plot(final_sizes, simulated_share, "k.",
        label=f"share of {N_SAMPLES:,} simulated epidemics")
ax.axvline(exact_size, color="tab:red", linestyle="--",
           label=f"mean {exact_size:.1f}")
ax.set_xlabel("final size (infected among the 19 susceptibles)")
ax.set_ylabel("probability")
ax.set_title(f"Reed-Frost final size, π = {PI}")
ax.legend()
plt.show()

# %% [markdown]
# ### Fitting $\pi$: exact likelihood, and the mean by stochastic gradients
#
# Suppose we observed the final sizes of outbreaks in 30 wards of this size
# (here simulated with $\pi = 0.08$). Two ways to estimate $\pi$:
#
# * **Maximum likelihood.** The exact distribution gives the
#   log-likelihood $\sum_k \log P_\pi(\text{final size}_k)$; we maximise
#   it over a grid of 300 values of $\pi$ (one vectorised dynamic
#   programme, about a second). It uses the whole bimodal shape.
# * **Matching the mean** (method of moments): the $\pi$ whose
#   $m(\pi) = E[\text{final size}]$ equals the observed mean $\bar y$. This is
#   what stochastic triples can do when **no** exact distribution exists (a
#   bigger population, an agent-based model): they estimate $m'(\pi)$ from
#   the simulator, so the loss $(m(\pi) - \bar y)^2$ with gradient
#   $2\,(m(\pi) - \bar y)\,m'(\pi)$ can go to Adam. We estimate the two
#   factors from **two halves** of one batch of simulations (a product of
#   two estimates from the same samples would be biased). No derivative of
#   the simulator was written by hand. Near the answer the gradient is
#   mostly noise, so the estimate is the average of the last 20 of 50 steps
#   (Polyak averaging).
#
# Here the exact likelihood is cheap, so it is the estimator to use; the
# triple fit shows what one does without it, and the comparison below
# shows what the mean throws away.

# %%
PI_TRUE, N_WARDS = 0.08, 30
observed = st.reed_frost_final_size(PI_TRUE, SUSCEPTIBLE, INFECTED).multinomial(
    N_WARDS, replacement=True, generator=torch.Generator().manual_seed(SEED))
grid = torch.linspace(0.01, 0.25, 300, dtype=torch.float64)
table = st.reed_frost_final_size(grid, SUSCEPTIBLE, INFECTED)  # (300, S0 + 1)
log_likelihood = table[:, observed].clamp(min=1e-300).log().sum(dim=1)  # (300,)
pi_likelihood = grid[log_likelihood.argmax()].item()
grid_means = table @ torch.arange(SUSCEPTIBLE + 1, dtype=torch.float64)
target = observed.double().mean().item()
pi_mean_exact = grid[(grid_means - target).abs().argmin()].item()

pi = torch.tensor(0.04, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.Adam([pi], lr=0.01)
path = []
for step in range(50):
    sizes_now, slopes_now = st.derivative_estimate(
        st.reed_frost, pi.item(), 1000, seed=SEED + step, return_values=True,
        susceptible=SUSCEPTIBLE, infected=INFECTED)
    pi.grad = 2 * (sizes_now[:500].mean() - target) * slopes_now[500:].mean()
    optimizer.step()
    with torch.no_grad():
        pi.clamp_(0.001, 0.999)
    path.append(pi.item())
pi_mean_triples = sum(path[-20:]) / 20
print(f"{N_WARDS} wards, observed final sizes: {sorted(observed.tolist())}")
print(f"maximum likelihood: pi = {pi_likelihood:.4f}; mean matched exactly: "
      f"{pi_mean_exact:.4f}; mean matched with triple gradients: "
      f"{pi_mean_triples:.4f} (truth {PI_TRUE}; one data set, no conclusion)")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
left.plot(grid, log_likelihood - log_likelihood.max(), label="log-likelihood")
left.axvline(pi_likelihood, color="tab:blue", linestyle="--",
             label="maximum likelihood")
left.axvline(pi_mean_exact, color="tab:orange", linestyle=":",
             label="mean matched (exact)")
left.axvline(PI_TRUE, color="gray", label="truth")
left.set_ylim(-20, 1)
left.set_xlim(0.03, 0.15)
left.set_xlabel("π (infection probability per contact)")
left.set_ylabel("log-likelihood minus its maximum")
left.legend(loc="lower right", fontsize=9)
right.plot(range(1, len(path) + 1), path, "o-", markersize=3,
           label="π after each Adam step (triple gradients)")
right.axhline(pi_mean_triples, color="tab:red", linestyle="--",
              label="triple fit (mean of the last 20)")
right.axhline(pi_mean_exact, color="tab:orange", linestyle=":",
              label="mean matched (exact)")
right.set_xlabel("step")
right.set_ylabel("π")
right.legend(fontsize=9)
fig.suptitle("Reed-Frost: π from 30 final sizes")
plt.show()

# %% [markdown]
# One data set says little. Over 500 simulated data sets of 30 wards (the
# grid table makes each fit a lookup), the two estimators compare as
# follows:

# %%
generator = torch.Generator().manual_seed(SEED + 1)
data_sets = st.reed_frost_final_size(PI_TRUE, SUSCEPTIBLE, INFECTED).multinomial(
    500 * N_WARDS, replacement=True, generator=generator).reshape(500, N_WARDS)
counts = torch.nn.functional.one_hot(data_sets, SUSCEPTIBLE + 1).sum(dim=1)
by_likelihood = grid[(counts.double() @ table.clamp(min=1e-300).log().T).argmax(dim=1)]
by_mean = grid[(grid_means[None, :]
                - data_sets.double().mean(dim=1, keepdim=True)).abs().argmin(dim=1)]
pd.DataFrame({
    name: {"mean": estimates.mean().item(), "sd": estimates.std().item(),
           "root mean squared error": (estimates - PI_TRUE).pow(2).mean().sqrt().item()}
    for name, estimates in (("maximum likelihood", by_likelihood),
                            ("mean matched", by_mean))
}).T.round(4)

# %% [markdown]
# Both are nearly unbiased; the likelihood's spread is smaller (its
# variance about two thirds of the mean-matching one's): the split between
# "no spread" and "take-off", and where the take-offs end, carry
# information that the mean averages away. The triple fit above estimates
# the mean-matching $\pi$, so it inherits that larger spread, plus its own
# optimisation noise. Triples could also differentiate each likelihood term
# $P_\pi(\text{size} = k) = E[\mathbf 1\{\text{size} = k\}]$, but a
# derivative of a small probability estimated from rare events is noisy,
# and the log of an estimate is biased; with small populations the exact
# programme is the better tool.

# %% [markdown]
# ## 7. Limits
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
# * **Variance still grows** in long programs with many draws, though in
#   section 5 far more slowly than the score function's; and per second of
#   this Python implementation the triples were no cheaper than the
#   score function with a leave-one-out baseline.
# * **Relaxations are the alternative, and biased.** The straight-through
#   estimator uses the draw in the forward pass and, in the backward pass,
#   the derivative of a smooth stand-in (for a Bernoulli draw, of its
#   probability $p$): a biased surrogate of the gradient, whose bias does
#   not shrink with more samples. Gumbel-softmax replaces a categorical draw
#   by a soft, temperature-controlled one: its gradients are those of a
#   relaxed model, unbiased for the original only as the temperature goes to
#   0, where their variance grows.

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
# * On StochasticAD.jl's random walk their spread is about 0.4 of the score
#   function's with a leave-one-out baseline (a batch-mean baseline that
#   includes the sample itself is biased by $1 - 1/N$); per random number
#   they cost about a third as much for a given precision, per second of
#   this Python code about the same.
# * On a chain-binomial epidemic they give the exact derivative's value
#   within the error bars and drive a fit of the mean; where the exact
#   final-size distribution is available, its likelihood is the better
#   estimator.
#
# For speed and the full table on other seeds, see
# `benchmarks/README.md` (section "Stochastic triples", run by
# `benchmarks/bench_stochastic_ad.py`).
