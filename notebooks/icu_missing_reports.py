# %% [markdown]
# # Bonus: ICU demand with missing hospital reports
#
# *Backup material of the NORBIS workshop "Differentiable programming for
# flexible modelling with small data", Python edition.*
#
# Differentiable programming is not only for neural networks. From 16 April
# to 24 June 2020, 1281 German hospitals reported their current number of
# COVID-19 intensive-care patients to a central registry, but not all of them
# every day: some had gaps, some joined late. The registry published the
# last report again on days without one ("last observation carried forward",
# LOCF) and 0 before a hospital's first report. Hackenberg et al. (*The
# American Statistician* 76(3), 2022) wanted to predict the next day's
# demand per hospital with a small regression model, and the missing days
# made the usual least-squares machinery awkward. Their way out: write the
# loss as a **program**, a loop over days with an `if` for "was this day
# reported?", and let automatic differentiation produce its gradient.
#
# In this notebook you will
#
# * look at simulated registry data (the registry data are not public) made
#   by a simulator with the registry's mechanisms: a falling wave, hospitals
#   of very different sizes, late starters and gaps filled by LOCF;
# * write the loss yourself, a plain Python loop with branches, check its
#   gradient, and check it against the vectorised version in `helpers`;
# * fit one small model per hospital by gradient descent, first as the
#   original did, then with rescaling and Adam;
# * compare with the original study's baselines on each hospital's held-out
#   last day, next to the published results, with paired intervals (you
#   write the paired difference), and switch the simulator's mechanisms off
#   one at a time to see which of them the result rests on;
# * try three exercises, each with a hidden worked solution.
#
# Everything runs on a CPU in well under a minute.

# %% [setup]

# %% [markdown]
# ## Imports
#
# `helpers/bonus/icu_missing_reports.py` holds the simulator, the CSV
# reader, the vectorised loss, the fits, the baselines and the two plots.
# The loss itself you write below.

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch

import helpers
from helpers.bonus import icu_missing_reports as icu

SEED = 2022
# One number per hospital and day: one CPU thread is faster than several.
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The data
#
# One row per hospital and day: `cases` is the number of COVID-19 patients in
# the hospital's ICU as the registry published it, `reported` says whether the
# hospital reported that day, and `incidence` is the number of new infections
# per 100,000 inhabitants per day in its county (in the original study, a
# model-based estimate).

# %%
data = icu.load_hospitals(helpers.data_path("icu_hospitals.csv"))
arrays = icu.to_arrays(data)  # tensors (n_hospitals, n_days)
n_hospitals, n_days = arrays.y.shape
print(f"{n_hospitals} hospitals, {n_days} days, "
      f"{data['reported'].mean():.1%} of hospital-days reported, "
      f"{data['cases'].mean():.2f} patients per hospital and day (published)")
data.head(8)

# %% [markdown]
# ### How the data were made, and why this way
#
# The file was written by `icu.simulate_hospitals(n_hospitals=1000,
# n_days=70, seed=2022)`. Each mechanism has one setting in
# `icu.SimulationSettings`, and its docstring says where the default
# comes from. In short:
#
# * **falling wave** (`incidence_end`): the registry's window is the end of
#   the first wave. The hospitals printed in the authors' demo notebook have
#   county incidences of 2 to 12 per 100,000 on 16 April, falling to 9-16% of
#   that by 24 June; ours fall to 8-16%;
# * **small and very different hospitals** (`size_sd`): the registry's
#   hospitals had few COVID-19 patients (the demo notebook's have 0 to 2),
#   and ICUs range from a few beds to more than a hundred. Our mean census
#   starts near three patients and falls below one; sizes are log-normal with
#   a 13-fold spread between the 10th and 90th percentile (a judgement, not a
#   number from the paper);
# * **late starters** (`late_start`): hospitals that joined the registry
#   late are published as 0 before their first report (the demo notebook
#   shows such hospitals); 10% of ours start between day 7 and day 35;
# * **gaps** (`gap_start`, `gap_length`): a reporting hospital stops with a
#   daily chance of 2% and resumes after 2.5 days on average; its last
#   report is carried forward. These two numbers are our choice: neither
#   the paper nor the published code gives the registry's gap lengths.
#
# The census itself: every day admissions are Poisson with mean
# $b_3 z(t)$ and each patient leaves with probability $d$ (a stay of about
# ten days), so the expected increment is exactly $b_1 + b_2 y(t) + b_3 z(t)$
# with $b_1 = 0$, $b_2 = -d$: the model below is the true model.
#
# What we did **not** build: reporting delays and later corrections of
# reports. The paper and the authors' code describe gaps, LOCF and late
# starters, but say nothing we could find about corrections, so we do not
# invent them.
#
# Running the same call again gives the same data plus the hidden truth.

# %%
simulated, truth = icu.simulate_hospitals(
    n_hospitals=1000, n_days=70, seed=SEED, return_truth=True
)
pd.testing.assert_frame_equal(simulated, data, check_dtype=False)  # the file
print(icu.SimulationSettings())
late = truth.coefficients["first_report"] > 0
print(f"{late.mean():.0%} late starters; unreported days per hospital: "
      f"median {truth.coefficients['n_missing'].median():.0f}, "
      f"max {truth.coefficients['n_missing'].max()}")
truth.coefficients[["size", "b2", "b3", "n_missing"]].describe().round(3)

# %% [markdown]
# ## 2. The increment model
#
# For each hospital, the model predicts the change of its ICU cases from one
# day to the next:
#
# $$y(t+1) - y(t) = b_1 + b_2\,\tilde y(t) + b_3\,z(t).$$
#
# What to use for $\tilde y(t)$ when day $t$ was not reported? The published
# value (the carried-forward report) pretends that nothing changed. The
# increment model uses its own prediction instead: $\tilde y(t)$ is the
# report if there was one, and otherwise the previous $\tilde y$ plus the
# predicted increment. The model bridges the gap with itself, and the next
# report tells how well it did.
#
# ## 3. The loss is a program
#
# So the loss is most naturally a loop over days with branches:
#
# 1. skip the days before the first report;
# 2. from then on, predict each day's increment from yesterday's $\tilde y$;
# 3. if the day was reported, add the squared error and reset $\tilde y$ to
#    the report; otherwise carry the prediction forward;
# 4. divide by the number of compared days: the reported days after the
#    first one (the first report has nothing before it to compare with, as
#    in the original code).

# %% [markdown]
# Before writing it, follow it by hand on a series short enough, with
# $b = (0.5, -0.1, 0.1)$:
#
# | day | 0 | 1 | 2 | 3 | 4 | 5 |
# |---|---|---|---|---|---|---|
# | reported? | no | no | yes | no | yes | yes |
# | published $y$ | 0 | 0 | 4 | 4 | 7 | 9 |
# | incidence $z$ | 10 | 10 | 10 | 20 | 20 | 20 |
#
# Days 0 and 1 are skipped; day 2 starts with $\tilde y = 4$. Day 3 is not
# reported: $\tilde y = 4 + (0.5 - 0.4 + 1.0) = 5.1$. Day 4: the prediction
# $5.1 + (0.5 - 0.51 + 2.0) = 7.09$ meets the report 7, squared error
# $0.0081$. Day 5: $7 + (0.5 - 0.7 + 2.0) = 8.8$ against 9, squared error
# $0.04$. Two compared days, so the loss is $(0.0081 + 0.04) / 2 = 0.02405$.
#
# ### Your turn: write the loss
#
# Complete `increment_loss` as a plain loop over days with the four steps
# above. `y`, `z`, `reported` are one hospital's series (lists or 1-D
# tensors of length `n_days`), `beta` a tensor `(3,)`. Return one number,
# a tensor built from `beta` so that autodiff can go through it. Hints:
# keep $\tilde y$ in a variable that is `None` until the first report; for
# day $t$ the increment uses $\tilde y$ and $z$ of day $t - 1$.

# %%
y_hand = [0, 0, 4, 4, 7, 9]
z_hand = [10, 10, 10, 20, 20, 20]
reported_hand = [False, False, True, False, True, True]


# %%
# Your turn: replace the `...` with your code
def increment_loss(y, z, reported, beta):
    # mean squared error (a 0-d tensor) of the increment model on one series
    ...


# %%
# Check: the hand-worked series, then 20 hospitals (gaps, late starts) against
# the helpers' loss, value and gradient
beta_check = torch.tensor([0.5, -0.1, 0.1], dtype=torch.float64, requires_grad=True)
answer = increment_loss(y_hand, z_hand, reported_hand, beta_check)
some_hospitals = range(0, 1000, 50)
if answer is None:
    verdict = "Not yet: increment_loss returns None; complete it above."
elif not torch.is_tensor(answer) or answer.numel() != 1:
    verdict = ("Wrong: return one number, a tensor computed from beta (the mean "
               f"over compared days), got {answer!r}.")
elif not answer.requires_grad:
    verdict = ("Wrong: your loss carries no gradient; compute it from beta with "
               "tensor operations (no float() or .item() inside).")
elif abs(answer.item() - 0.02405) > 1e-9:
    hints = {0.0481: "you summed the squared errors: divide by their number.",
             0.0080167: "divide by the compared days (2 here), not all days.",
             0.425: "on an unreported day carry your prediction forward, not "
                    "the published (carried) value.",
             14.78605: "the error is report minus (y~ + increment): check signs."}
    verdict = next((f"Wrong: {hint}" for value, hint in hints.items()
                    if abs(answer.item() - value) < 1e-4),
                   f"Wrong: the hand-worked series gives {answer.item():.5f}, "
                   "not 0.02405; follow the steps above day by day.")
else:
    theirs, ours = [], []
    for h in some_hospitals:
        beta_h = torch.tensor([0.05, -0.1, 0.03], dtype=torch.float64,
                              requires_grad=True)
        mine = increment_loss(arrays.y[h], arrays.z[h], arrays.reported[h], beta_h)
        ours.append(torch.cat([mine.detach().reshape(1), torch.autograd.grad(
            mine, beta_h)[0]]))
        reference = icu.increment_loss(arrays.y[h], arrays.z[h],
                                       arrays.reported[h], beta_h)
        theirs.append(torch.cat([reference.detach().reshape(1),
                                 torch.autograd.grad(reference, beta_h)[0]]))
    ours, theirs = torch.stack(ours), torch.stack(theirs)  # (20, 1 + 3)
    if torch.allclose(ours, theirs):
        verdict = ("Right: 0.02405 by hand, and the helpers' values and gradients "
                   "on 20 hospitals.")
    else:
        worst = int((ours - theirs).abs().amax(dim=1).argmax())
        verdict = (f"Wrong: right on the toy series, but hospital "
                   f"{some_hospitals[worst]} gives loss and gradient "
                   f"{ours[worst].tolist()}, expected {theirs[worst].tolist()}.")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def increment_loss(y, z, reported, beta):
#     b1, b2, b3 = beta[0], beta[1], beta[2]
#     squared_error = 0.0 * beta.sum()  # a zero that backward() can go through
#     n_compared = 0
#     y_tilde = None  # no report seen yet
#     for t in range(len(y)):
#         if y_tilde is None:
#             if reported[t]:
#                 y_tilde = y[t]  # the first report: start here
#             continue
#         increment = b1 + b2 * y_tilde + b3 * z[t - 1]
#         if reported[t]:
#             squared_error = squared_error + (y[t] - y_tilde - increment) ** 2
#             n_compared += 1
#             y_tilde = y[t]  # reset to the report
#         else:
#             y_tilde = y_tilde + increment  # bridge the gap with the prediction
#     return squared_error / max(n_compared, 1)
# ```
#
# The `if`s decide on the data, never on $b$, so the loss is a smooth
# function of $b$ along the path that ran. A hospital with a single report
# has nothing to compare and gets 0.
# </details>

# %% [markdown]
# The rest of the notebook needs a working loss: yours once the check says
# "Right"; until then `icu.increment_loss`, the helpers' version (the
# vectorised loss of section 5 run on one hospital), stands in.

# %%
if verdict.startswith("Right"):
    loss_of_one = increment_loss
else:
    loss_of_one = icu.increment_loss
    print("Using icu.increment_loss until your increment_loss is right.")
loss_hand = loss_of_one(y_hand, z_hand, reported_hand,
                        torch.tensor([0.5, -0.1, 0.1], dtype=torch.float64))
print(f"loss = {loss_hand.item():.5f} (by hand: 0.02405)")
assert abs(loss_hand.item() - 0.02405) < 1e-12

# %% [markdown]
# ## 4. Autodiff differentiates the loop
#
# PyTorch records the operations that actually ran (which branch was taken
# depends on the data, not on $b$) and `backward()` walks them back with the
# chain rule. Is the result right? We compare it with central finite
# differences, $\partial L / \partial b_j \approx (L(b + h e_j) - L(b - h
# e_j)) / 2h$, in double precision, for the toy series and for a hospital
# with a gap.

# %%
def finite_difference_gradient(loss_fn, beta, h=1e-6):
    """Central differences of a scalar function of beta (float64)."""
    steps = torch.eye(len(beta), dtype=torch.float64) * h
    with torch.no_grad():
        return torch.stack(
            [(loss_fn(beta + step) - loss_fn(beta - step)) / (2 * h) for step in steps]
        )


gappy = int(truth.coefficients["n_missing"].idxmax())
series = {
    "toy series": (y_hand, z_hand, reported_hand),
    f"hospital {gappy}": (arrays.y[gappy], arrays.z[gappy], arrays.reported[gappy]),
}
rows = []
for name, (y, z, reported) in series.items():
    beta = torch.tensor([0.2, -0.1, 0.1], dtype=torch.float64, requires_grad=True)
    loss_of_one(y, z, reported, beta).backward()
    numeric = finite_difference_gradient(
        lambda b, y=y, z=z, reported=reported: loss_of_one(y, z, reported, b),
        beta.detach(),
    )
    for j in range(3):
        rows.append({"series": name, "coefficient": f"b{j + 1}",
                     "autodiff": beta.grad[j].item(),
                     "finite differences": numeric[j].item()})
gradients = pd.DataFrame(rows)
gradients["relative difference"] = (
    (gradients["autodiff"] - gradients["finite differences"]).abs()
    / gradients["finite differences"].abs()
)
assert (gradients["relative difference"] < 1e-6).all()
print(gradients.to_string(float_format=lambda value: f"{value:.3g}"))

# %% [markdown]
# ## 5. One loss for all hospitals at once
#
# A Python loop over days is fine for one hospital, but we have a thousand,
# and fitting means evaluating the loss hundreds of times.
# `icu.increment_loss_batched` computes the same numbers for all hospitals
# at once, and it needs far fewer steps than the loop's 70 days because
# most days do not depend on the day before: on a reported day $\tilde y$
# is the report, and before the first report nothing counts. Only a day
# inside a gap needs yesterday's $\tilde y$. So the recursion runs in
# rounds: the first round bridges the first unreported day of every gap of
# every hospital, from the report before it; the second round the second
# day, from the first round; and so on, as many rounds as the longest gap
# (14 days here). Then every day's prediction is one vectorised line. The
# `if` on "was this day reported?" has become the choice of which days go
# into which round, made once from the data, so autodiff sees only
# products and sums of $b$, as in your loop. From
# here on the notebook uses it, so first we check it equals *your* loop, for
# values and gradients, on the first 200 hospitals (the test suite checks all
# of them against the notebook's solution; while your loss is not right yet,
# the helpers' stand-in makes this comparison trivial).

# %%
some = slice(0, 200)
beta_some = torch.tensor([[0.05, -0.1, 0.03]] * 200, dtype=torch.float64)
beta_some.requires_grad_()
looped = torch.stack([
    loss_of_one(arrays.y[h], arrays.z[h], arrays.reported[h], beta_some[h])
    for h in range(200)
])
batched = icu.increment_loss_batched(
    arrays.y[some], arrays.z[some], arrays.reported[some], beta_some
)
(grad_looped,) = torch.autograd.grad(looped.sum(), beta_some)
(grad_batched,) = torch.autograd.grad(batched.sum(), beta_some)
print(f"largest difference: losses {(looped - batched).abs().max():.1e}, "
      f"gradients {(grad_looped - grad_batched).abs().max():.1e}")
assert torch.allclose(looped, batched) and torch.allclose(grad_looped, grad_batched)

# %% [markdown]
# ## 6. Gradient descent by hand, and why scaling matters
#
# The original analysis used plain gradient descent from $b = 0$: 150
# steps, each coefficient moved against its derivative with its own fixed
# step size (0.001 for $b_1$ and $b_3$, 0.01 for $b_2$). Because each
# hospital's loss depends only on its own coefficients, the gradient of the
# *sum* of the losses gives every hospital its own gradient, so one loop fits
# them all. We fit on all days but the last, which we keep for scoring.

# %%
days_to_fit = slice(0, n_days - 1)  # keep the last day for later
y_fit = arrays.y[:, days_to_fit]
z_fit = arrays.z[:, days_to_fit]
reported_fit = arrays.reported[:, days_to_fit]


# %%
def plain_gradient_descent(y, z, reported, n_steps=150):
    """The original recipe: fixed step sizes, start at zero."""
    step_sizes = torch.tensor([0.001, 0.01, 0.001], dtype=torch.float64)
    beta = torch.zeros(y.shape[0], 3, dtype=torch.float64, requires_grad=True)
    for _ in range(n_steps):
        loss = icu.increment_loss_batched(y, z, reported, beta).sum()
        (gradient,) = torch.autograd.grad(loss, beta)
        with torch.no_grad():
            beta -= step_sizes * gradient  # the gradient step
    return beta.detach()


# %%
beta_plain = plain_gradient_descent(y_fit, z_fit, reported_fit)
# the helpers' copy, used by the comparison below, is the same recipe
assert torch.allclose(
    beta_plain[:50],
    icu.fit_plain_gradient_descent(y_fit[:50], z_fit[:50], reported_fit[:50]),
    equal_nan=True,  # a diverged fit is NaN in both
)
diverged = icu.needs_fallback(beta_plain)  # nan, or some |b| > 10
print(f"diverged: {int(diverged.sum())} of {n_hospitals} hospitals, with on "
      f"average {arrays.y[diverged].mean():.1f} patients a day "
      f"(others {arrays.y[~diverged].mean():.1f})")

# %% [markdown]
# The loss is roughly quadratic in $b_2$ and $b_3$ with curvatures that grow
# with $y^2$ and $z^2$, so a fixed step suits small hospitals and overshoots
# on big ones: the few that diverge are the busiest (in the registry, 85 of
# 1281 hospitals did not converge). And 150 small steps from zero stop well
# short of the minimum of the loss: $b_1$ and $b_3$ stay at about a fifth of
# their least-squares size (medians in section 7). Stopped early, plain
# gradient descent keeps the coefficients close to zero, the "nothing
# changes" model.
#
# `icu.fit_increment_model` reaches the minimum:
#
# * **rescaling:** per hospital it fits
#   $\Delta y / s_y = c + b_2 (\tilde y - \bar y) / s_y + g (z - \bar z) / s_z$
#   with centred and scaled cases and incidence, so all three parameters are
#   of order one whatever the hospital's size; $(b_1, b_2, b_3)$ are a linear
#   function of $(c, b_2, g)$, and autodiff goes through that map too;
# * **Adam** instead of fixed steps, with a learning rate decaying over 300
#   steps. Adam treats every parameter separately, so fitting all hospitals
#   together gives each one the coefficients it would get alone.

# %%
start = time.perf_counter()
beta_all = icu.fit_increment_model(y_fit, z_fit, reported_fit)
seconds = time.perf_counter() - start
loss_adam = icu.increment_loss_batched(y_fit, z_fit, reported_fit, beta_all)
loss_plain = icu.increment_loss_batched(
    y_fit, z_fit, reported_fit, beta_plain)
both = ~diverged & ~icu.needs_fallback(beta_all)
print(f"Adam: {n_hospitals} hospitals in {seconds:.1f} s, "
      f"{int(icu.needs_fallback(beta_all).sum())} fits distrusted")
print(f"training loss, median over hospitals: plain {loss_plain[both].median():.4f}, "
      f"Adam {loss_adam[both].median():.4f}")

# %% [markdown]
# ## 7. What did the fits recover?
#
# Each dot is a hospital: its Adam-fitted coefficient against the true one.

# %%
fitted = pd.DataFrame(beta_all.numpy(), columns=["b1", "b2", "b3"])
fitted.insert(0, "hospital", arrays.hospitals)
fig = icu.plot_coefficients(fitted, truth.coefficients)
plt.show()
pd.DataFrame({
    "true median": truth.coefficients[["b1", "b2", "b3"]].median(),
    "Adam median": fitted[["b1", "b2", "b3"]].median(),
    "plain GD median": pd.DataFrame(
        beta_plain.numpy(), columns=["b1", "b2", "b3"]).median(),
}).round(3)

# %% [markdown]
# The least-squares fits scatter widely and $b_2$ comes out more negative
# than the truth: with 69 noisy counts of a few patients and three
# coefficients, single-hospital estimates are noisy, and least squares on a
# series that depends on its own past is biased towards faster mean
# reversion in short series. Reaching the minimum of the loss is an
# optimisation question; whether the minimum is a good estimate is a
# statistical one. The early-stopped plain fits stay near zero instead.
#
# ## 8. Looking at a few hospitals
#
# Grey: the published series; black dots: reports; red crosses: days without
# a report; green dotted: the true number of patients; blue: the model's
# one-day-ahead prediction and, as squares, the values it bridges gaps with.

# %%
c = truth.coefficients
examples = [
    gappy,
    int(c.index[c["first_report"] > 0][0]),
    int(c["size"].idxmax()),
    int(c.index[(c["n_missing"] == 0) & (c["size"] > 1)][0]),
]
fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
titles = ("most unreported days", "late starter", "largest", "reports every day")
for ax, hospital, title in zip(axes.flat, examples, titles):
    icu.plot_hospital(data, hospital, beta=beta_all[hospital],
                  true_cases=truth.cases[hospital], ax=ax)
    ax.set_title(f"hospital {hospital} ({title})")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 9. Comparing with the baselines
#
# As in the original study, every model predicts each hospital's change from
# the second-to-last to the last day; hospitals whose last day was reported
# are scored:
#
# * **zero:** nothing changes; **mean:** the mean daily change of the
#   published series; **modified mean:** 0 if the last published change was
#   0, else the mean (the rule this bundle describes); **modified mean
#   (published code):** 0 if the last published *value* was 0, else the mean,
#   the rule of the authors' code (below). The registry's 84.34 belongs to
#   this row, not to ours;
# * **LOCF + regression:** least squares of $y(t+1) - y(t)$ on $y(t)$ and
#   $z(t)$ on the published series: the same model, blind to which days
#   were reported;
# * **LOCF + regression (published code):** as the authors' code set it up,
#   each change regressed on $y(t+1)$ and $z(t+1)$, the values at its *end*,
#   but predicted from the values at its start. The registry's 181.07
#   belongs to this row;
# * **increment model:** the Adam fit, predicting from its bridged value
#   $\tilde y$ of the second-to-last day;
# * **increment model (original recipe):** the 150 plain steps, predicting
#   from the published value of the second-to-last day, as the original
#   evaluation did. The registry's 74.75 belongs to this row.
#
# Fits that `needs_fallback` distrusts get the mean model, as in the
# original.
#
# Where the published code's choices can be read: repository
# [maren-ha/DifferentiableProgrammingForStatisticalModeling](https://github.com/maren-ha/DifferentiableProgrammingForStatisticalModeling),
# file `01_IndividualModels.jl`, commit `b15b64565ddfd2093f5683f2aab43fd59cb95c3a`
# (the latest we found, 22 July 2022): the 150 steps with step sizes
# `[0.001, 0.01, 0.001]` from zero (lines 46-49), the modified mean
# `y[end] == 0.0 ? 0.0 : mean_pred` (line 55), and the regression
# `DataFrame(dy = diff(y), y = y[2:end], z = z[2:end])`, predicted from
# `y[end]` and `z[end]` (lines 64-68). The published sums of squared errors
# are in `results/prederr_stats_localmodels.csv` of the same commit.

# %%
predictions = icu.last_day_predictions(data)
table = icu.summarise_errors(predictions)
published = pd.Series(icu.PUBLISHED_LAST_DAY_SSE)
side_by_side = pd.DataFrame(index=table.index, data={
    "simulated: SSE": table["sse"],
    "simulated: vs zero": table["sse"] / table.loc["zero", "sse"],
    "registry (published): SSE": published,
    "registry: vs zero": published / published["zero"],
})
print(f"{len(predictions)} simulated hospitals scored (published: 1281), "
      f"{int((predictions['days_missing_before_last'] > 0).sum())} of them "
      "after a gap")
print(side_by_side.round(3).to_string())

# %% [markdown]
# ### Is a difference more than noise? Pair the hospitals
#
# The sums above come from one simulated registry. Two models are scored on
# the *same* hospitals, and a hospital whose ICU changed a lot is hard for
# both, so the fair comparison is paired: per hospital the difference of the
# two squared errors, $d_h = e_{A,h} - e_{B,h}$. The hospitals are
# independent, so $\sum_h d_h$ (the difference of the two sums) has
# standard error $\sqrt{n}\, \text{sd}(d)$, and about $\pm 2$ standard
# errors is a 95% interval.
#
# **Your turn:** complete `paired_difference(squared_a, squared_b)` for two
# tensors of squared errors `(n_hospitals,)`; return the pair
# `(difference, standard_error)` as two numbers: $\sum_h d_h$ and
# $\sqrt{n}\,\text{sd}(d)$ (the sample standard deviation, divisor $n - 1$).

# %%
squared = {model: torch.tensor(((predictions[model] - predictions["observed"]) ** 2)
                               .to_numpy()) for model in icu.MODELS}


# %%
# Your turn: replace the `...` with your code
def paired_difference(squared_a, squared_b):
    # (sum of a - b, its standard error) over the same hospitals
    ...


# %%
# Check: the original recipe against the zero model, and two more pairs
pairs = [("increment model (original recipe)", "zero"),
         ("increment model", "LOCF + regression"),
         ("LOCF + regression (published code)", "increment model (original recipe)")]
expected, answers = [], []
for a, b in pairs:
    d = squared[a] - squared[b]
    expected.append([d.sum().item(), d.std().item() * len(d) ** 0.5])
    answers.append(paired_difference(squared[a], squared[b]))
expected = torch.tensor(expected, dtype=torch.float64)  # (3 pairs, 2)
if any(answer is None for answer in answers):
    verdict = "Not yet: paired_difference returns None; complete it above."
else:
    try:
        got = torch.tensor([[float(x) for x in answer] for answer in answers],
                           dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        got = None
    if got is None or got.shape != expected.shape:
        verdict = ("Wrong: return two numbers, (difference, standard_error); "
                   f"got {answers[0]!r} for the first pair.")
    elif torch.allclose(got, expected, rtol=1e-6):
        verdict = "Right: the paired difference of the sums and its standard error."
    elif torch.allclose(got[:, 0], -expected[:, 0], rtol=1e-6):
        verdict = "Wrong sign: the difference is a minus b (sum of squared_a first)."
    elif torch.allclose(got[:, 0], expected[:, 0], rtol=1e-6):
        unpaired = [((squared[a].var() + squared[b].var()) * len(squared[a])).sqrt()
                    for a, b in pairs]
        if torch.allclose(got[:, 1], torch.stack(unpaired), rtol=1e-4):
            verdict = ("Wrong: that is the unpaired standard error; take the sd "
                       "of the per-hospital differences instead.")
        else:
            verdict = (f"Wrong: the difference is right, the standard error should "
                       f"be {expected[0, 1]:.3f} for the first pair, not "
                       f"{got[0, 1]:.3f}: sqrt(n) times sd(a - b).")
    else:
        verdict = (f"Wrong: for the first pair expected {expected[0].tolist()}, "
                   f"got {got[0].tolist()}.")
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def paired_difference(squared_a, squared_b):
#     d = squared_a - squared_b  # one difference per hospital
#     return d.sum().item(), (d.std() * len(d) ** 0.5).item()
# ```
#
# The unpaired standard error, $\sqrt{n(\text{var}(a) + \text{var}(b))}$,
# ignores that the two errors of a hospital move together and is several
# times larger here.
# </details>

# %% [markdown]
# `icu.paired_difference` is the same (tested equal to the solution above).
# Every model against the zero model, and the two like-for-like pairs:

# %%
paired_rows = {}
for a, b in [(model, "zero") for model in icu.MODELS[1:]] + pairs[1:]:
    difference, error = icu.paired_difference(squared[a], squared[b])
    paired_rows[f"{a}  -  {b}"] = {
        "SSE difference": difference, "standard error": error,
        "95% interval": f"{difference - 1.96 * error:.1f} to "
                        f"{difference + 1.96 * error:.1f}"}
pd.DataFrame(paired_rows).T.round(2)

# %% [markdown]
# On these data the published regression is clearly worse than the zero
# model (by 41.5, interval 26.5 to 56.5), and the consistent regression
# just so (7.7, interval 0.8 to 14.5); the original recipe's 1.5 more than
# the zero model is well inside the noise (a tie, not a loss), and so is
# the Adam fit against the consistent regression (7.0, interval -8.0 to
# 22.0). One registry cannot rank the models that sit near the zero model.
# Across simulated registries (ten other seeds,
# `benchmarks/README.md`) the original recipe minus the zero model is
# $-1.2 \pm 6.4$ (mean $\pm$ sd over the ten seeds): negative on 7 of
# them, but within two of its own standard errors on every seed, so no
# difference we can detect. The Adam fit minus the consistent regression is
# $+3.3 \pm 2.0$: small, but of the same sign on all ten seeds, so the
# regression's edge is real though tiny. The published regression minus the
# original recipe, $+43.6 \pm 14.2$, is the one large difference.

# %% [markdown]
# ## 10. Which mechanism does the result rest on?
#
# We switch each mechanism off in turn, simulate again with the same seed,
# and compare the two like-for-like pairs: the regression as published
# against the original recipe, and the consistent regression against the
# Adam fit. A ratio above 1 means the increment model wins.

# %%
mechanisms_off = {
    "all on (defaults)": None,  # the data above
    "no falling wave": {"incidence_end": (1.0, 1.0)},
    "no size spread": {"size_sd": 0.0},
    "no late starters": {"late_start": 0.0},
    "no gaps": {"gap_start": 0.0},
}
ablation = {}
for name, changes in mechanisms_off.items():
    if changes is None:
        sse = table["sse"]
    else:
        settings = icu.SimulationSettings(**changes)
        simulated = icu.simulate_hospitals(1000, 70, SEED, settings=settings)
        sse = icu.compare_models(simulated)["sse"]
    ablation[name] = {
        "zero": sse["zero"],
        "original recipe": sse["increment model (original recipe)"],
        "published regression / original recipe":
            sse["LOCF + regression (published code)"]
            / sse["increment model (original recipe)"],
        "Adam": sse["increment model"],
        "regression / Adam": sse["LOCF + regression"] / sse["increment model"],
    }
ablation = pd.DataFrame(ablation).T
print(ablation.round(2).to_string())

# %% [markdown]
# ## 11. What the comparison says, honestly
#
# **What matches the registry.** The scale: with 959 scored hospitals our
# zero model's sum of squared errors is 79.0, the registry's 86.0 over 1281
# hospitals. The mean model is worse than doing nothing in both (1.07 and
# 1.04 times the zero model): the mean change over ten weeks does not say
# where a hospital is heading now. And the regression as the published code
# set it up is clearly behind: 1.53 times the zero model here, 2.1 times in
# the registry.
#
# **What does not match: the increment model is not the best here.** Fitted
# by the original recipe it ties with the zero model (80.5 against 79.0, a
# paired difference of $+1.5 \pm 3.7$; registry: 74.75 against 86.0), and
# fitted to the minimum of the loss by Adam it is worse (93.7), worse even
# than the consistent regression (86.7; $+7.0 \pm 7.7$ on these data, but
# $+3.3 \pm 2.0$ and of the same sign on all ten benchmark seeds). The
# benchmark `benchmarks/bench_icu_missing_reports.py` repeats the comparison
# on ten other seeds, 0 to 9 (tables in `benchmarks/README.md`). Seed 2022
# is one of the less favourable ones: on the ten others the original recipe
# has the smallest sum of all rows on about 7 seeds and the published
# regression at least 1.5 times its error on 7 (median ratio 1.58); both
# together, the published ordering, hold on about half. Counted per seed
# that looks like a pattern, but the paired differences say the original
# recipe and the zero model cannot be told apart: $-1.2 \pm 6.4$ over the
# seeds, and within each seed a standard error of 2-5 (15 on one seed). So the published
# ordering emerges only half of the time from the mechanisms the paper
# supports, only with the original recipe, and even then the increment
# model's lead over doing nothing is within the noise; we have not invented
# another mechanism to force it.
#
# **Why.** With one or two patients per hospital the daily changes are
# mostly noise: a model with three coefficients per hospital, fitted to 69
# days, learns little that the zero model does not already say, and its
# estimation noise costs more than it gains. The original recipe's 150 small
# steps from zero stop short of the least-squares fit (section 6), so it
# stays closer to the zero model; that early stopping is what keeps it
# competitive (exercises 2 and 3). Early stopping acts here like shrinkage
# towards zero, but an accidental one: its strength is set by a step count
# and step sizes, differs by coefficient and by hospital size, and comes
# with no uncertainty. The principled ways to do what it does by accident:
#
# * **a state-space model with missing observations**: the true census as a
#   latent series, the reports as noisy observations of it on reported days
#   only; a Kalman filter (or its count-data relatives) bridges the gaps
#   with the model, weighs each report by its noise, and gives predictive
#   intervals, where our bridge is a deterministic guess;
# * **partial pooling across hospitals**: a hierarchical (mixed) model in
#   which each hospital's $(b_1, b_2, b_3)$ is drawn from a population
#   distribution; each hospital's estimate is shrunk towards the population
#   mean by an amount the data choose (little for a busy ICU with a long
#   series, much for a small one), instead of towards zero by an amount the
#   step count chooses.
#
# Both are differentiable programs too (the ADVI bonus fits a hierarchical
# model this way); neither is built here.
#
# **Where the regression's gap comes from.** The consistent regression on the carried-
# forward series is slightly *better* than the increment model fitted by Adam (0.93
# times its error on our data). The published set-up regresses each change $y(t+1) -
# y(t)$ on $y(t+1)$, the value at its own end, which correlates with the change by
# construction; predicting from the value at the start then overshoots. The ablation
# above shows what the mechanisms add on our seed: switching off the gaps (1.51) or
# the late starters (1.49) hardly moves the ratio of 1.50, and without the falling
# wave it drops to 1.23. Over the ten benchmark seeds the picture is the same (median
# ratios: all on 1.58, no gaps 1.61, no late starters 1.53, no falling wave 1.27 with
# the ordering on no seed), with one surprise: without the spread of hospital sizes
# the ordering holds on all ten seeds (median 1.61), likely because the big hospitals
# are where the original's fixed steps diverge (section 6) and the noise of a busy ICU
# is largest. So on these data the published regression's failure rests on its pairing
# and on the falling wave, not on the reporting gaps, and the increment model's weak
# spot is the busy hospitals.
#
# **When would bridging gaps pay?** When the last prediction follows a long
# gap, the published value is days old and the increment model's bridged
# value is not. With about 7% of days unreported, few scored hospitals have
# a gap just before their last day, so the effect is small in the sum; in
# exercise 1 even a quarter of the days unreported does not change the
# ordering.
#
# **Definitions.** This bundle's modified mean predicts zero when the last
# *change* was zero; the published code (`01_IndividualModels.jl`, line 55,
# commit `b15b645`) predicts zero when the last *value* was zero. Both rows
# are in the table of section 9, and the registry's 84.34 stands beside the
# published code's rule. Our loss divides by the number of compared days,
# as the published code's `loss` does (`src/loss.jl`, same commit).
#
# ## 12. Exercises
#
# Each exercise takes a few seconds to a minute. Write your code in the cell
# below it; a worked solution, with the numbers we measured on the shipped
# data (seed 2022, from `python benchmarks/bench_icu_missing_reports.py
# --exercises`), is hidden below each cell. These are single runs on one
# simulated registry: compare them with the paired standard errors of
# section 9 (3-8) before reading a difference as real.
#
# **Exercise 1.** Make reporting much worse (`gap_start=0.1`,
# `late_start=0.3` in `icu.SimulationSettings`), simulate again with
# `SEED`, and compare the models. Which suffer most?

# %%
# Exercise 1: your code here


# %% [markdown]
# <details>
# <summary><b>Solution 1: worse reporting</b></summary>
#
# ```python
# worse = icu.SimulationSettings(gap_start=0.1, late_start=0.3)
# worse_data = icu.simulate_hospitals(1000, 70, SEED, settings=worse)
# print(f"{worse_data['reported'].mean():.1%} of the days reported")
# icu.compare_models(worse_data)
# ```
#
# Now 73.5% of the days are reported (92.9% before). Sums of squared errors:
# zero 71.0, mean 79.2, modified mean 74.3, LOCF + regression 81.3, published
# code 108.7, increment model 90.6, original recipe 74.9. Relative to the
# zero model almost nothing changes (the published regression 1.53, the Adam
# fit 1.28, the original recipe 1.05): the scored hospitals are those that
# reported their last day, and for most of them the day before was reported
# too, so the stale values that LOCF creates rarely enter the prediction
# itself.
# </details>

# %% [markdown]
# **Exercise 2.** Give the original recipe more steps
# (`icu.compare_models(data, plain_n_steps=1500)`). Does it still tie with
# the zero model? What does that say about early stopping?

# %%
# Exercise 2: your code here


# %% [markdown]
# <details>
# <summary><b>Solution 2: more plain steps</b></summary>
#
# ```python
# icu.compare_models(data, plain_n_steps=1500)
# ```
#
# The original recipe's sum grows from 80.5 to 82.2 (zero model 79.0). More
# steps move the coefficients towards the least-squares fit and away from
# zero, and on these noisy series that costs accuracy: stopping early acts
# like shrinkage towards the zero model. The change of 1.7 is well within
# one paired standard error (about 3.7), so on one registry this is a
# direction, not a result; the principled versions of that shrinkage are
# named in section 11.
# </details>

# %% [markdown]
# **Exercise 3.** Fit with `n_steps=20` or `lr=1.0` in
# `icu.fit_increment_model` (on `y_fit`, `z_fit`, `reported_fit`) and look
# at the training losses (`icu.increment_loss_batched`) and the number of
# fallbacks (`icu.needs_fallback`); then score the models with the same
# settings (`icu.compare_models(data, n_steps=20)`).

# %%
# Exercise 3: your code here


# %% [markdown]
# <details>
# <summary><b>Solution 3: too few steps, too large a rate</b></summary>
#
# ```python
# for fit in ({"n_steps": 20}, {"lr": 1.0}):
#     beta = icu.fit_increment_model(y_fit, z_fit, reported_fit, **fit)
#     loss = icu.increment_loss_batched(y_fit, z_fit, reported_fit,
#                                       beta.nan_to_num())
#     print(fit, f"median training loss {loss.median():.4f},",
#           f"{int(icu.needs_fallback(beta).sum())} fits distrusted")
#     print(icu.compare_models(data, **fit)["sse"].round(1))
# ```
#
# With `n_steps=20` the median training loss is 0.1062 (0.1055 with 300
# steps), no fit is distrusted, and the held-out sum *falls* from 93.7 to
# 82.0: the same shrinkage as in exercise 2. With `lr=1.0` the median loss
# is 0.1061, 2 fits are distrusted, and the held-out sum rises to 109.1:
# with steps that large, Adam overshoots for some hospitals early on, and
# the decaying rate does not settle all of them at the minimum.
# </details>
