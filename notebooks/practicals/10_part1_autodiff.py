# %% [markdown]
# # Part I: Automatic differentiation in action
#
# Automatic differentiation (autodiff) is neither symbolic algebra nor a
# numerical approximation: PyTorch records every elementary operation as
# your code runs, and a gradient walks this record backwards by the chain
# rule. The result is the exact derivative of the program that ran.
#
# ![Differentiable programming in one picture](pictures/diffprog_overview.png)

# %%
from functools import partial

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torchdiffeq import odeint

import helpers

SEED = 2022  # Part I's seed: simulated patients, random starting values

# %% [markdown]
# ## 1. A first derivative
#
# Take $f(x) = x^2 + 4x - 1$, so $f'(x) = 2x + 4$ and $f'(3) = 10$. A
# tensor created with `requires_grad=True` is tracked; `.backward()` on a
# result fills in `.grad` of its inputs.

# %%
def f(x):
    return x**2 + 4 * x - 1


value = f(torch.tensor(2.0))
x = torch.tensor(3.0, requires_grad=True)
f(x).backward()  # d f / d x at x = 3, stored in x.grad
print(f"f(2)  = {value.item():g}")
print(f"f'(3) = {x.grad.item():g}")
assert value.item() == 11 and x.grad.item() == 10

# %% [markdown]
# `torch.autograd.grad` returns the derivative instead of adding it into
# `.grad`. A tensor made without `requires_grad=True` is a constant; to
# differentiate with respect to it, take a tracked copy:
# `b = beta.detach().clone().requires_grad_(True)` (Section 3 needs this).

# %%
def derivative(fn, at):
    """Derivative of a scalar function ``fn`` at the number ``at``, by autodiff."""
    x = torch.tensor(float(at), dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(fn(x), x)
    return slope.item()


for at in (-2.0, 0.0, 3.0, 10.0):
    slope = derivative(f, at)
    print(f"x = {at:5.1f}: autodiff {slope:5.1f}, by hand {2 * at + 4:5.1f}")
    assert slope == 2 * at + 4

# %% [markdown]
# ## 2. Derivatives through loops, branches and recursion
#
# Autodiff follows the operations that actually ran, so a model can be any
# program. $x^n$ as a loop and as a recursion; at $x = 5$, $n = 3$ both must
# give $125$ and $3 \cdot 5^2 = 75$.

# %%
def power_loop(x, n):
    result = torch.ones_like(x)
    for _ in range(n):
        result = result * x
    return result


def power_recursive(x, n):
    if n == 0:
        return torch.ones_like(x)
    return x * power_recursive(x, n - 1)


for name, power in (("loop", power_loop), ("recursion", power_recursive)):
    value = power(torch.tensor(5.0, dtype=torch.float64), 3).item()
    slope = derivative(partial(power, n=3), 5.0)  # the function x -> x^3
    print(f"{name:9s}: 5^3 = {value:g}, derivative {slope:g}")
    assert value == 125 and slope == 75

# %% [markdown]
# ## 3. Your turn: a gradient a statistician knows
#
# Logistic regression: outcomes $y_i \in \{0, 1\}$, covariates $x_i$ (rows
# of $X$, first column 1), $P(y_i = 1) = p_i = \operatorname{sigmoid}(x_i^\top
# \beta)$. With $\eta = X\beta$ the log-likelihood is
#
# $$\ell(\beta) = \sum_i \big(y_i \eta_i - \log(1 + e^{\eta_i})\big),$$
#
# and its gradient, the score, is $X^\top (y - p)$. **Your turn:** complete
# `log_likelihood_gradient` to return $\nabla \ell(\beta)$ by autodiff (a
# tracked copy of `beta`, then $\ell$, then `torch.autograd.grad`), without
# typing the score formula.
# `torch.nn.functional.softplus(eta)` is $\log(1 + e^\eta)$. (In this
# notebook $\eta$ is the linear predictor and $\beta$ the regression
# coefficients; the learning rate is written $\gamma$.)

# %%
patients = torch.Generator().manual_seed(SEED)
X = torch.cat([torch.ones(30, 1, dtype=torch.float64),  # intercept column
               torch.randn(30, 2, generator=patients, dtype=torch.float64)], dim=1)
y = torch.bernoulli(torch.full((30,), 0.5, dtype=torch.float64), generator=patients)
beta = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)


# %%
# Your turn: replace the `...` with your code
def log_likelihood_gradient(beta, X, y):
    # gradient (k,) of the logistic log-likelihood at beta (k,), by autodiff
    ...


# %%
# Check: your autodiff gradient against the score X^T (y - p)
answer = log_likelihood_gradient(beta, X, y)
score = X.T @ (y - torch.sigmoid(X @ beta))
if answer is None:
    verdict = "Not yet: log_likelihood_gradient returns None; complete it above."
elif not torch.is_tensor(answer) or answer.shape != score.shape:
    verdict = f"Wrong: expected a tensor of shape {tuple(score.shape)}, got {answer!r}"
elif torch.allclose(answer.double(), score):
    verdict = "Right: autodiff of the log-likelihood gives the score X^T (y - p)."
elif torch.allclose(answer.double(), -score):
    verdict = "Wrong sign: differentiate the log-likelihood, not its negative."
else:
    verdict = f"Wrong: got {answer.tolist()}, the score is {score.tolist()}."
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def log_likelihood_gradient(beta, X, y):
#     beta = beta.detach().clone().requires_grad_(True)
#     eta = X @ beta
#     log_likelihood = (y * eta - torch.nn.functional.softplus(eta)).sum()
#     (gradient,) = torch.autograd.grad(log_likelihood, beta)
#     return gradient
# ```
#
# Autodiff never saw the score formula, yet returns it exactly.
# </details>

# %% [markdown]
# ## 4. Checking a gradient with finite differences
#
# Without a known score, the classical check is the central difference
#
# $$\frac{\partial L}{\partial \theta_k} \approx
#   \frac{L(\theta + h e_k) - L(\theta - h e_k)}{2h},$$
#
# with $e_k$ the $k$-th unit vector, here in `float64`.

# %%
def central_difference_gradient(loss_fn, theta, h):
    """Finite-difference gradient of ``loss_fn`` at ``theta`` (a 1-D tensor)."""
    theta = theta.detach().to(torch.float64)
    gradient = torch.zeros_like(theta)
    for k in range(len(theta)):
        step = torch.zeros_like(theta)
        step[k] = h
        gradient[k] = (loss_fn(theta + step) - loss_fn(theta - step)) / (2 * h)
    return gradient


def cube(theta):
    return power_recursive(theta[0], 3)


exact = derivative(partial(power_recursive, n=3), 5.0)
rows = []
for h in (1e-1, 1e-2, 1e-3, 1e-5, 1e-7, 1e-9):
    estimate = central_difference_gradient(cube, torch.tensor([5.0]), h).item()
    rows.append({"h": h, "finite difference": estimate,
                 "error vs autodiff": abs(estimate - exact)})
print(pd.DataFrame(rows).to_string(
    index=False, float_format="{:.2g}".format,
    formatters={"finite difference": "{:.10f}".format}))

# %% [markdown]
# For $x^3$ the central difference is exactly $3x^2 + h^2$, but rounding
# error divided by $2h$ grows as $h$ shrinks: the smallest error is at
# $h = 10^{-5}$, and below it the error grows *again*. Finite differences
# need a good $h$ and two runs per parameter; autodiff needs neither.

# %% [markdown]
# ## 5. Fitting an explicit dynamic model
#
# Two quantities $u = (u_1, u_2)$ change over time by the linear system
#
# $$u'(t) = A\,u(t), \qquad
#   A = \begin{pmatrix} a_{11} & a_{12} \\ a_{21} & a_{22} \end{pmatrix}, \qquad
#   u(0) = (2, 1).$$
#
# We observe $u$ at $t = 0, 0.1, \dots, 1$, generated with the true
# $p = (a_{11}, a_{12}, a_{21}, a_{22}) = (-1, 0, 0.5, 1)$, for which
#
# $$u_1(t) = 2e^{-t}, \qquad u_2(t) = 1.5e^{t} - 0.5e^{-t}.$$
#
# Can we recover $p$ by differentiating *through the ODE solver*?

# %%
ts = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)  # observation times
u0 = torch.tensor([2.0, 1.0], dtype=torch.float64)
p_true = torch.tensor([-1.0, 0.0, 0.5, 1.0], dtype=torch.float64)


def closed_form(t):
    """The true solution at times ``t`` ``(T,)``, shape ``(T, 2)``."""
    u1 = 2 * torch.exp(-t)
    u2 = 1.5 * torch.exp(t) - 0.5 * torch.exp(-t)
    return torch.stack([u1, u2], dim=-1)


observations = closed_form(ts)  # (11, 2)
print("u(1) =", observations[-1].numpy().round(4))

# %% [markdown]
# The ODE as a program: a right-hand side $f(t, u) = A u$ and the solver
# `torchdiffeq.odeint` (fixed-step Runge-Kutta, `"rk4"`).

# %%
def linear_rhs(t, u, p):
    """Right-hand side of u' = A u, with A filled row by row from ``p``."""
    return p.reshape(2, 2) @ u


def solve_linear(p, times=ts):
    """Solution ``(len(times), 2)`` of u' = A u from u0 for parameters ``p``."""
    return odeint(lambda t, u: linear_rhs(t, u, p), u0, times, method="rk4")


solver_error = (solve_linear(p_true) - observations).abs().max().item()
print(f"largest difference between solver and closed form: {solver_error:.1e}")
assert solver_error < 1e-5

# %% [markdown]
# The loss $L(p)$ is the mean squared error between the solution for $p$ and
# the observations. We start from a standard-normal random guess:

# %%
def ode_loss(p):
    return ((solve_linear(p) - observations) ** 2).mean()


fine_ts = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)  # for smooth curves


def draw_fit(ax, p, title):
    """Truth (dotted), the solution for ``p`` (solid) and the observations."""
    with torch.no_grad():
        fitted = solve_linear(p, fine_ts)
    truth = closed_form(fine_ts)
    for k, colour in enumerate(helpers.COLORS):
        ax.plot(fine_ts, truth[:, k], ":", color=colour, lw=2.5,
                label=f"truth $u_{k + 1}$")
        ax.plot(fine_ts, fitted[:, k], "-", color=colour, lw=1.5,
                label=f"fit $u_{k + 1}$")
    ax.plot(ts, observations, "k.", ms=5)
    ax.set(title=title, xlabel="time $t$", ylabel="$u(t)$")


generator = torch.Generator().manual_seed(SEED)
p_start = torch.randn(4, generator=generator, dtype=torch.float64)
print("random start p =", p_start.numpy().round(3), f" loss {ode_loss(p_start):.3f}")
figure, ax = plt.subplots(figsize=(5, 3.5))
draw_fit(ax, p_start, "random start")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ### Guess the gradient first
#
# Guess the **sign** of each $\partial L / \partial a_{jk}$ from the
# figure: $a_{11}, a_{12}$ steer $u_1$ (blue), $a_{21}, a_{22}$ steer $u_2$
# (orange).

# %%
p = p_start.clone().requires_grad_(True)
loss = ode_loss(p)
(gradient,) = torch.autograd.grad(loss, p)
names = ["a11", "a12", "a21", "a22"]
print(pd.DataFrame({"start": p_start, "truth": p_true, "dL/dp": gradient},
                   index=names).to_string(float_format="{:.3f}".format))

# %% [markdown]
# $u_1$ grows where the data decay ($a_{11}, a_{12}$: positive), $u_2$ stays
# below them (negative). Finite differences agree:

# %%
finite_difference = central_difference_gradient(ode_loss, p_start, h=1e-6)
gradient_error = (finite_difference - gradient).abs().max().item()
print("autodiff:         ", gradient.numpy().round(6))
print("finite difference:", finite_difference.numpy().round(6))
print(f"largest difference: {gradient_error:.1e}")
assert gradient_error < 1e-6

# %% [markdown]
# ### One step of gradient descent
#
# Gradient descent steps against the gradient, $p \leftarrow p - \gamma
# \nabla L(p)$, with **learning rate** $\gamma$ (`lr`); one step with
# $\gamma = 0.01$:

# %%
learning_rate = 0.01
p_one_step = p_start - learning_rate * gradient
print(f"loss before: {ode_loss(p_start):.5f}")
print(f"loss after:  {ode_loss(p_one_step):.5f}")

# %% [markdown]
# The loss went down a little. Now 250 steps in a loop:

# %%
def gradient_descent(p_start, learning_rate, steps, keep_every):
    """Plain gradient descent on ``ode_loss``; returns losses and snapshots."""
    p = p_start.clone().requires_grad_(True)
    losses, snapshots = [], {0: p_start.clone()}
    for step in range(1, steps + 1):
        loss = ode_loss(p)
        (gradient,) = torch.autograd.grad(loss, p)
        with torch.no_grad():  # the update itself is not part of the model
            p -= learning_rate * gradient
        losses.append(loss.item())
        if step % keep_every == 0:
            snapshots[step] = p.detach().clone()
    return losses, snapshots


gd_losses, snapshots = gradient_descent(p_start, learning_rate, steps=250,
                                        keep_every=50)
p_gd = snapshots[250]
figure, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True, sharey=True)
for ax, (step, p_step) in zip(axes.flat, snapshots.items()):
    draw_fit(ax, p_step, f"step {step}: loss {ode_loss(p_step):.4f}")
axes[0, 0].legend(fontsize="small")
figure.suptitle("Plain gradient descent, learning rate 0.01")
figure.tight_layout()
plt.show()

# %% [markdown]
# The curves are close, the parameters are not: many combinations of
# $a_{11}$ and $a_{12}$ bend $u_1$ almost alike, a long valley of the loss
# along which gradient descent crawls.
#
# ### Finishing the job with Adam
#
# **Adam**, the optimiser of Part II, divides each parameter's step by a
# running root-mean-square of its own gradient and steps along a running
# average of the gradients (momentum), which builds up along the valley and
# cancels across it.

# %%
def adam_fit(p_start, learning_rate, steps):
    """Minimise ``ode_loss`` with Adam from ``p_start``; returns p and losses."""
    p = p_start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([p], lr=learning_rate)
    losses = []
    for _ in range(steps):
        loss = ode_loss(p)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return p.detach(), losses


p_adam, adam_losses = adam_fit(p_gd, learning_rate=0.05, steps=200)
print(pd.DataFrame({"truth": p_true, "start": p_start, "after 250 GD steps": p_gd,
                    "after 200 more Adam steps": p_adam},
                   index=names).to_string(float_format="{:.4f}".format))
assert torch.allclose(p_adam, p_true, atol=1e-3)

# %%
figure, (ax_loss, ax_fit) = plt.subplots(1, 2, figsize=(11, 3.8))
steps_gd = range(1, len(gd_losses) + 1)
steps_adam = range(len(gd_losses) + 1, len(gd_losses) + len(adam_losses) + 1)
ax_loss.semilogy(steps_gd, gd_losses, label="plain gradient descent")
ax_loss.semilogy(steps_adam, adam_losses, label="Adam, continued")
ax_loss.set(xlabel="step", ylabel="loss (log scale)", title="Loss during fitting")
ax_loss.legend()
draw_fit(ax_fit, p_adam, "after gradient descent + Adam")
ax_fit.legend(fontsize="small")
figure.tight_layout()
plt.show()

# %% [markdown]
# ### The valley, seen from above
#
# The loss over $(a_{11}, a_{12})$, the others at the truth, with both
# optimisers' paths from one start.

# %%
def loss_on_grid(a11, a12):
    """ode_loss at every (a11, a12) of a grid, a21 and a22 at the truth."""
    n_grid, n_times = a11.numel(), len(ts)
    grid = torch.stack([a11.flatten(), a12.flatten(),
                        p_true[2].expand(n_grid), p_true[3].expand(n_grid)], -1)
    states = helpers.linear_solution(u0.expand(n_grid * n_times, 2),
                                     grid.repeat_interleave(n_times, 0),
                                     ts.repeat(n_grid))  # (n_grid * n_times, 2)
    squared = (states.reshape(n_grid, n_times, 2) - observations) ** 2
    return squared.mean((1, 2)).reshape(a11.shape)


def path_2d(optimiser_class, lr, steps):
    """(a11, a12) after each step of an optimiser from (0.5, 1.0)."""
    a = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
    optimiser = optimiser_class([a], lr=lr)
    path = [a.detach().clone()]
    for _ in range(steps):
        optimiser.zero_grad()
        ode_loss(torch.cat([a, p_true[2:]])).backward()
        optimiser.step()
        path.append(a.detach().clone())
    return torch.stack(path)


a11_grid, a12_grid = torch.meshgrid(
    torch.linspace(-2.0, 1.0, 61, dtype=torch.float64),
    torch.linspace(-1.0, 1.5, 61, dtype=torch.float64), indexing="ij")
figure, ax = plt.subplots(figsize=(6, 4.5))
contours = ax.contour(a11_grid, a12_grid, loss_on_grid(a11_grid, a12_grid).log10(),
                      levels=15, cmap="viridis")
figure.colorbar(contours, label="log10 loss")
for name, optimiser_class, lr in (("gradient descent", torch.optim.SGD, 0.1),
                                  ("Adam", torch.optim.Adam, 0.05)):
    path = path_2d(optimiser_class, lr, steps=100)
    ax.plot(path[:, 0], path[:, 1], ".-", ms=3, label=f"{name}, lr {lr}")
ax.plot(p_true[0], p_true[1], "k*", ms=12, label="truth")
ax.set(xlabel="$a_{11}$", ylabel="$a_{12}$", title="ode_loss, 100 steps each")
ax.legend()
plt.show()

# %% [markdown]
# ### Your turn: noisy data and standard errors
#
# Now add noise ($\sigma = 0.1$) and fit by maximum likelihood: the negative
# log-likelihood is $\sum (u(t) - y)^2 / (2\sigma^2)$ plus a constant;
# L-BFGS (quasi-Newton) minimises it.

# %%
noise = torch.Generator().manual_seed(SEED + 1)
sigma = 0.1
noisy_observations = observations + sigma * torch.randn(
    observations.shape, generator=noise, dtype=torch.float64)


def negative_log_likelihood(p):
    """Gaussian negative log-likelihood of the noisy data, constants dropped."""
    return ((solve_linear(p) - noisy_observations) ** 2).sum() / (2 * sigma**2)


p_hat = p_true.clone().requires_grad_(True)
lbfgs = torch.optim.LBFGS([p_hat], max_iter=200, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = negative_log_likelihood(p_hat)
    loss.backward()
    return loss


lbfgs.step(closure)
p_hat = p_hat.detach()
print("maximum-likelihood estimate:", p_hat.numpy().round(3))

# %% [markdown]
# The inverse Hessian of the negative log-likelihood at its minimum
# estimates the covariance of the estimates. **Your turn:** complete
# `standard_errors` (square roots of its diagonal) with
# `torch.autograd.functional.hessian` and `torch.linalg.inv`.

# %%
# Your turn: replace the `...` with your code
def standard_errors(nll, p_hat):
    # standard errors (k,) of the estimates p_hat (k,) from the Hessian of nll
    ...


# %%
# Check: your standard errors against the inverse Hessian
hessian = torch.autograd.functional.hessian(negative_log_likelihood, p_hat)
expected = torch.linalg.inv(hessian).diagonal().sqrt()
answer = standard_errors(negative_log_likelihood, p_hat)
if answer is None:
    verdict = "Not yet: standard_errors returns None; complete it above."
elif not torch.is_tensor(answer) or tuple(answer.shape) != (4,):
    shape = tuple(answer.shape) if torch.is_tensor(answer) else type(answer).__name__
    verdict = f"Wrong: expected a tensor of shape (4,), got {shape}."
elif torch.allclose(answer.double(), expected, rtol=1e-4):
    verdict = "Right: the standard errors are sqrt(diag(H^-1))."
elif torch.allclose(answer.double(), expected**2, rtol=1e-4):
    verdict = "Wrong: those are variances; take the square root."
elif torch.allclose(answer.double(), hessian.diagonal().rsqrt(), rtol=1e-4):
    verdict = ("Wrong: 1 / sqrt(diag(H)) ignores the correlations; invert the "
               "whole matrix first, then take its diagonal.")
else:
    verdict = f"Wrong: got {answer.tolist()}, expected {expected.tolist()}."
print(verdict)

# %% [markdown]
# <details>
# <summary><b>Solution</b> (open after trying)</summary>
#
# ```python
# def standard_errors(nll, p_hat):
#     hessian = torch.autograd.functional.hessian(nll, p_hat)
#     return torch.linalg.inv(hessian).diagonal().sqrt()
# ```
# </details>

# %%
covariance = torch.linalg.inv(hessian)
errors = covariance.diagonal().sqrt()
correlation = covariance / torch.outer(errors, errors)
print(pd.DataFrame({"truth": p_true, "estimate": p_hat, "standard error": errors},
                   index=names).to_string(float_format="{:.3f}".format))
print(f"correlation of the a11 and a12 estimates: {correlation[0, 1]:.3f}")

# %% [markdown]
# The long valley, in statistical terms: strongly correlated, poorly
# determined estimates of $a_{11}$ and $a_{12}$ (one noise draw).

# %% [markdown]
# **What to take from Part I**
#
# * PyTorch differentiates whatever code runs, an ODE solver included.
# * Fitting a mechanistic model is the loop of training a network: loss,
#   gradient, step; the optimiser matters.
# * With noisy data the valley means correlated, poorly determined
#   estimates; autodiff also gives the Hessian for their standard errors.
