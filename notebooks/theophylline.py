# %% [markdown]
# # Bonus: real small data, the theophylline study
#
# *Backup material of the NORBIS workshop "Differentiable programming for
# flexible modelling with small data", Python edition.*
#
# Everything the practicals fit is simulated. Here is a real, classic, small
# study: twelve adults took one oral dose of the asthma drug theophylline,
# and the concentration in their blood was measured eleven times over the
# next 25 hours (Boeckmann, Sheiner and Beal, *NONMEM Users Guide*, 1994;
# R's `Theoph` data set). Its standard analysis is a nonlinear mixed-effects
# (NLME) model: one compartment, first-order absorption and elimination,
# fitted with R's `nlme` in Pinheiro and Bates, *Mixed-Effects Models in S
# and S-PLUS* (Springer, 2000, chapter 8).
#
# In this notebook you will
#
# * write the pharmacokinetic model as a differential equation, solve it
#   with torchdiffeq and check it against its closed-form solution;
# * fit each subject on their own by nonlinear least squares (the classic
#   first step);
# * write the population model (population means, a weight covariate,
#   random effects per subject) as one program, and fit every parameter by
#   gradient descent on a variational lower bound of the marginal
#   likelihood, the machinery of Part II;
# * put the results next to the published NLME analysis;
# * predict each subject's last sample from the earlier ones, and try one
#   step the classic analysis cannot take easily: a small neural network
#   from the covariates to the parameters.
#
# Everything runs on a CPU in under a minute.

# %% [setup]

# %% [markdown]
# ## Imports
#
# The data loader, the model, the fits and the plot live in
# `helpers/bonus/theophylline.py`; the lessons (the equations and the loss)
# are written out below and checked equal to the helpers' versions.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torchdiffeq import odeint

import helpers
from helpers.bonus import theophylline as pk

SEED = 1994
torch.manual_seed(SEED)
torch.set_num_threads(1)  # twelve subjects: one CPU thread is fastest

# %% [markdown]
# ## 1. The data
#
# One row per blood sample: `Subject`, body weight `Wt` (kg), the oral dose
# `Dose` (mg per kg body weight), `Time` since the dose (hours) and the
# theophylline concentration `conc` (mg/L). The loader checks every row and
# names the line of the file when one is off (a missing value, a negative
# concentration, a weight that changes within a subject...).

# %%
frame = pk.load_theophylline(helpers.data_path("theophylline.csv"))
study = pk.to_study(frame)  # tensors (n_subjects, n_times), float64
n_subjects, n_times = study.conc.shape
print(f"{len(frame)} samples, {n_subjects} subjects, {n_times} samples each; "
      f"weight {frame.Wt.min()}-{frame.Wt.max()} kg, "
      f"dose {frame.Dose.min()}-{frame.Dose.max()} mg/kg")
frame.head(11)

# %% [markdown]
# ## 2. The model
#
# The drug sits in the gut and is absorbed into the blood at rate $k_a$;
# the blood clears it at rate $k_e$. Per kg body weight, with $g$ the amount
# in the gut and $C$ the blood concentration,
#
# $$\frac{dg}{dt} = -k_a\, g, \qquad
#   \frac{dC}{dt} = \frac{k_a\, g}{V} - k_e\, C, \qquad g(0) = \text{dose},
#   \; C(0) = 0,$$
#
# where the volume of distribution $V = Cl / k_e$ links the elimination rate
# to the clearance $Cl$ (L/h per kg). Like Pinheiro and Bates we work with
# the logarithms $\log k_e$, $\log k_a$, $\log Cl$, so that every value of a
# parameter is allowed. First the right-hand side for torchdiffeq:

# %%
class OneCompartment(torch.nn.Module):
    def __init__(self, log_ke, log_ka, log_cl):  # each (n_subjects,)
        super().__init__()
        self.ke, self.ka = log_ke.exp(), log_ka.exp()
        self.volume = (log_cl - log_ke).exp()  # V = Cl / ke

    def forward(self, t, state):  # state (n_subjects, 2): gut, concentration
        gut, conc = state[..., 0], state[..., 1]
        absorbed = self.ka * gut
        return torch.stack([-absorbed, absorbed / self.volume - self.ke * conc], -1)


# %% [markdown]
# This linear system has a closed-form solution (R calls it `SSfol`):
#
# $$C(t) = \frac{\text{dose}\; k_a}{V (k_a - k_e)}
#          \left(e^{-k_e t} - e^{-k_a t}\right).$$
#
# We solve the ODE for all twelve subjects at once on the union of their
# sampling times, with typical parameter values, and compare.

# %%
def closed_form(times, dose, log_ke, log_ka, log_cl):
    ke, ka = log_ke.exp(), log_ka.exp()
    volume = (log_cl - log_ke).exp()
    decay = (-ke * times).exp() - (-ka * times).exp()
    return dose * ka / (volume * (ka - ke)) * decay


typical = torch.tensor([-2.45, 0.47, -3.23], dtype=torch.float64)
log_ke, log_ka, log_cl = typical[:, None].expand(3, n_subjects)  # (n_subjects,) each
grid = study.times.flatten().unique()  # every sampling time, sorted
state0 = torch.stack([study.dose, torch.zeros_like(study.dose)], -1)
solution = odeint(OneCompartment(log_ke, log_ka, log_cl), state0, grid,
                  rtol=1e-10, atol=1e-12)  # (n_grid, n_subjects, 2)
ode_conc = solution[..., 1].T  # (n_subjects, n_grid)
exact = closed_form(grid, study.dose[:, None], log_ke[:, None], log_ka[:, None],
                    log_cl[:, None])
print(f"{len(grid)} times; largest |ODE - closed form| = "
      f"{(ode_conc - exact).abs().max():.1e} mg/L")
assert torch.allclose(ode_conc, exact, atol=1e-8)
assert torch.allclose(exact, pk.concentration(grid, study.dose[:, None],
                      log_ke[:, None], log_ka[:, None], log_cl[:, None]))
ode = OneCompartment(log_ke, log_ka, log_cl)
helpers_ode = pk.OneCompartment(log_ke, log_ka, log_cl)
assert torch.equal(ode(0.0, state0), helpers_ode(0.0, state0))

# %% [markdown]
# The two agree to solver precision, so the fits below evaluate the closed
# form (the exact ODE solution, much cheaper inside thousands of gradient
# steps). For a model without a closed form, say a second compartment with
# a nonlinear clearance, the same fits would call `odeint` instead, and
# autodiff would differentiate through the solver.
#
# ## 3. Baseline: one fit per subject
#
# The classic first step (R's `nlsList`) fits the three parameters of each
# subject by nonlinear least squares, ignoring the others. `pk.fit_least_squares`
# runs Levenberg-Marquardt for all subjects at once.

# %%
per_subject = pk.fit_least_squares(study)  # (n_subjects, 3)
pd.DataFrame(per_subject.numpy(), columns=pk.PARAMETERS,
             index=study.subject.numpy()).round(3).transpose()

# %% [markdown]
# The spread is the point of a population model: absorption (`log_ka`)
# varies a lot between subjects, elimination and clearance much less.
#
# ## 4. The population model, as one program
#
# Subject $i$'s parameters are a population mean plus the subject's own
# deviation (its *random effect*), with standardised log body weight $w_i$ as
# a covariate on clearance:
#
# $$\log k_{e,i} = \beta_e, \quad
#   \log k_{a,i} = \beta_a + b_{a,i}, \quad
#   \log Cl_i = \beta_{Cl} + \gamma\, w_i + b_{Cl,i},$$
#
# $b_{a,i} \sim N(0, \omega_a^2)$, $b_{Cl,i} \sim N(0, \omega_{Cl}^2)$, and each
# sample is $C(t_{ij}) + \varepsilon_{ij}$ with $\varepsilon_{ij} \sim
# N(0, \sigma^2)$. That is Pinheiro and Bates' final model (random effects on
# $\log k_a$ and $\log Cl$) plus the weight covariate.
#
# The random effects are unobserved, so the likelihood integrates them out.
# As in Part II we maximise a lower bound instead, the ELBO: a Gaussian
# $q(z) = N(m, LL^\top)$ over all unknowns $z = (\beta_e, \beta_a, \beta_{Cl},
# \gamma, b_1, \dots, b_{12})$ (28 numbers, full covariance so that population
# means and random effects may correlate), and
#
# $$\text{ELBO} = E_q\left[\log p(\text{conc} \mid z, \sigma)
#   + \log p(b \mid \omega)\right] + H(q),$$
#
# with a flat prior on $\beta, \gamma$ and the Gaussian entropy $H(q) =
# \sum_k \log L_{kk} + \tfrac{d}{2}(1 + \log 2\pi)$. Gradient ascent on the
# ELBO moves $q$, $\omega$ and $\sigma$ together. Here is the loss, written
# out:

# %%
def negative_elbo(model, study, z):  # z (n_draws, 28): draws from q
    log_ke, log_ka, log_cl = model.subject_parameters(z, pk.covariates(study))
    fitted = pk.concentration(study.times, study.dose[:, None], log_ke[..., None],
                              log_ka[..., None], log_cl[..., None])
    sigma = model.log_sigma.exp()
    log_lik = -0.5 * ((study.conc - fitted) / sigma) ** 2 - sigma.log() \
        - 0.5 * math.log(2 * math.pi)
    log_lik = (log_lik * study.observed).sum((1, 2))  # (n_draws,)
    omega = model.log_omega.exp()  # (omega_a, omega_cl)
    effects = model.random_effects(z)  # (n_draws, n_subjects, 2)
    log_prior = (-0.5 * (effects / omega) ** 2 - omega.log()
                 - 0.5 * math.log(2 * math.pi)).sum((1, 2))
    dim = len(model.mean)
    entropy = model.scale_raw.sum() + 0.5 * dim * (1 + math.log(2 * math.pi))
    return -((log_lik + log_prior).mean() + entropy)


start = per_subject.median(0).values  # start from the median per-subject fit
model = pk.PopulationModel(n_subjects, start)
z = model.sample(8, torch.Generator().manual_seed(SEED))
print(f"negative ELBO at the start: {negative_elbo(model, study, z):.3f}")
assert torch.allclose(negative_elbo(model, study, z), -pk.elbo(model, study, z))

# %% [markdown]
# ## 5. Fitting
#
# `pk.fit_population` is the Part II loop: draw $z$ from $q$ with the
# reparameterisation trick, evaluate the negative ELBO, backpropagate, take
# an Adam step; the step size is halved twice near the end to settle the
# noisy optimum.

# %%
fit = pk.fit_population(study, start, seed=SEED)

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(fit.losses, lw=0.6, label="negative ELBO, one estimate per step")
ax.set_ylim(fit.losses.min() - 5, fit.losses[len(fit.losses) // 10] + 40)
ax.set_xlabel("Adam step")
ax.set_ylabel("negative ELBO")
ax.set_title("loss curve")
ax.legend()
plt.show()

# %% [markdown]
# The fit used the closed form. Inside the program, the ODE solver can take
# its place: here the sum of squared residuals at the fitted posterior mean,
# and its gradient with respect to all 28 unknowns, once through `odeint`
# (autodiff differentiates through the solver's steps) and once through the
# closed form.

# %%
def ode_concentration(study, log_ke, log_ka, log_cl):  # each (n_subjects,)
    grid = study.times.flatten().unique()
    state0 = torch.stack([study.dose, torch.zeros_like(study.dose)], -1)
    path = odeint(OneCompartment(log_ke, log_ka, log_cl), state0, grid,
                  rtol=1e-9, atol=1e-11)[..., 1].T  # (n_subjects, n_grid)
    return path.gather(1, torch.searchsorted(grid, study.times))


def sum_of_squares(z, solve):
    log_ke, log_ka, log_cl = (p[0] for p in fit.model.subject_parameters(
        z, pk.covariates(study)))
    if solve == "ode":
        fitted = ode_concentration(study, log_ke, log_ka, log_cl)
    else:
        fitted = pk.concentration(study.times, study.dose[:, None], log_ke[:, None],
                                  log_ka[:, None], log_cl[:, None])
    return ((study.conc - fitted) ** 2 * study.observed).sum()


z_mean = fit.model.mean.detach()[None]
values, gradients = {}, {}
for solve in ("ode", "closed form"):
    z = z_mean.clone().requires_grad_()
    values[solve] = sum_of_squares(z, solve)
    gradients[solve], = torch.autograd.grad(values[solve], z)
print(f"sum of squares: ODE {values['ode']:.6f}, "
      f"closed form {values['closed form']:.6f}")
print("largest gradient difference:",
      f"{(gradients['ode'] - gradients['closed form']).abs().max():.1e}")
assert torch.allclose(gradients["ode"], gradients["closed form"], atol=1e-5)

# %% [markdown]
# ## 6. Side by side with the NLME analysis
#
# The reference numbers are `nlme`'s maximum-likelihood fit of the same
# model without the weight covariate (`fm3Theo.nlme` of the book's chapter
# 8 script, which ships with R's `nlme` as `scripts/ch08.R`; numbers as
# reported from a run of that script, see `data/README.md`; its random-effect
# and residual standard deviations are those of `fm2Theo.nlme`, whose fixed
# effects agree with `fm3Theo.nlme` to 1e-4). Our standard
# deviations of the population means are the posterior standard deviations
# under $q$; theirs are asymptotic standard errors. The last column says how
# many NLME standard errors our estimate lies from theirs.

# %%
ours = pk.summary(fit)
rows = []
for name in pk.PARAMETERS:
    value, se = pk.NLME_REFERENCE[name]
    rows.append((name, ours.estimate[name], ours.sd[name], value, se,
                 (ours.estimate[name] - value) / se))
for name, key in (("omega_ka", "omega_ka"), ("omega_cl", "omega_cl"),
                  ("sigma", "sigma")):
    rows.append((name, ours.estimate[name], float("nan"),
                 pk.NLME_REFERENCE_SDS[key], float("nan"), float("nan")))
rows.append(("weight_effect", ours.estimate["weight_effect"],
             ours.sd["weight_effect"], float("nan"), float("nan"), float("nan")))
comparison = pd.DataFrame(rows, columns=["quantity", "ours", "ours sd", "nlme",
                                         "nlme se", "distance (nlme se)"])
comparison.set_index("quantity").round(3)

# %%
distance = comparison.set_index("quantity")["distance (nlme se)"]
assert distance[list(pk.PARAMETERS)].abs().max() < 2, distance

# %% [markdown]
# The population means agree with `nlme` to well within one of its standard
# errors, and so do their uncertainties. The differences that remain have
# reasons: `nlme` maximises a linearised (Lindstrom-Bates) approximation of
# the marginal likelihood, we maximise a lower bound on the exact one; our
# standard deviations come from a Gaussian approximation of the posterior,
# theirs from the curvature of their approximate likelihood; and our model
# has the weight covariate, whose effect is small here (the dose was already
# scaled to body weight) and uncertain.
#
# ## 7. Each subject's fit
#
# The subject's curve uses its own random effects (posterior mean
# prediction); the population curve sets them to zero.

# %%
hours = torch.linspace(0, 25, 101, dtype=torch.float64)
grid_all = hours.expand(n_subjects, -1)
with torch.no_grad():
    curves = {
        "population model, this subject": (hours, pk.predict(fit, study, grid_all)),
        "population curve": (hours, pk.predict(fit, study, grid_all, population=True)),
        "own least-squares fit": (hours, pk.least_squares_prediction(
            per_subject, study, grid_all)),
    }
pk.plot_subjects(study, curves)
plt.show()

# %% [markdown]
# ## 8. Predicting the last sample
#
# A fair test of a model is a sample it has not seen. We hide each
# subject's last sample (about 24 hours after the dose), refit everything on
# the first ten, and predict it three ways: the subject's own least-squares
# fit, the population curve (covariates only), and the population model
# with the subject's random effects. We also refit the population model
# with correlated random effects on all three parameters (the book's first
# model, `fm1Theo.nlme`, which found the elimination and clearance effects
# almost perfectly correlated: subjects differ mostly in clearance and
# volume together).

# %%
train, last_time, last_conc = pk.hold_out_last(study)
per_subject_train = pk.fit_least_squares(train)
start_train = per_subject_train.median(0).values
fit_train = pk.fit_population(train, start_train, seed=SEED)
fit_all = pk.fit_population(train, start_train, random_effects="all", seed=SEED)

omega = fit_all.model.omega_cholesky().detach()
covariance = omega @ omega.T  # of the random effects on (log ke, log ka, log Cl)
sd = covariance.diagonal().sqrt()
print("random-effect sds (ke, ka, Cl):", sd.numpy().round(3))
print("correlation of the ke and Cl effects:",
      round((covariance[0, 2] / (sd[0] * sd[2])).item(), 2))

at = last_time[:, None]
predictions = {
    "own least-squares fit": pk.least_squares_prediction(per_subject_train, train, at),
    "population curve": pk.predict(fit_train, train, at, population=True),
    "population model (ka, Cl effects)": pk.predict(fit_train, train, at),
    "population model (all, correlated)": pk.predict(fit_all, train, at),
}


def error_table(predictions):
    rows = {}
    for name, predicted in predictions.items():
        error = predicted[:, 0] - last_conc
        rows[name] = {"RMSE": error.square().mean().sqrt().item(),
                      "MAE": error.abs().mean().item(),
                      "median AE": error.abs().median().item(),
                      "subject 1 error": error[0].item()}
    return pd.DataFrame(rows).T.round(3)


error_table(predictions)

# %% [markdown]
# Per subject, the error (predicted minus observed, mg/L):

# %%
pd.DataFrame({name: (p[:, 0] - last_conc).numpy() for name, p in predictions.items()},
             index=study.subject.numpy()).round(2).transpose()

# %% [markdown]
# The population models do not beat the per-subject fits here, and the
# table says why: subject 1 eliminates the drug much more slowly than the
# others (its own fit: half-life about 13 hours against about 8), and the
# population model pulls its elimination towards the population, so it
# under-predicts the 24-hour sample by 1 to 2 mg/L. Ten samples per subject
# pin down three parameters well, so shrinkage has little to gain and, for
# an unusual subject, something to lose. With fewer samples per subject
# (sparse sampling is the usual case in clinical pharmacokinetics), the
# balance tips the other way; the population curve alone shows how much the
# subjects differ.
#
# Other error and random-effect models do not change this (tried outside
# the notebook, correlated effects on all three, held-out RMSE over five
# seeds, against 0.241 mg/L for the per-subject fits): a proportional
# (log-normal) error 0.45, an additive plus proportional error 0.41,
# Cauchy-tailed random effects 0.34; subject 1 stays 0.9-1.4 mg/L short in
# each. Its own data explain why: forcing its elimination rate to the
# population value raises its sum of squares only from 4.1 to 6.2
# (mg/L)$^2$, about 2 units of log-likelihood at a residual sd of 0.72 mg/L,
# which is little evidence to hold out against the population.

# %%
pk.plot_subjects(train, {
    "own least-squares fit": (hours, pk.least_squares_prediction(
        per_subject_train, train, grid_all)),
    "population model (all, correlated)": (hours, pk.predict(fit_all, train, grid_all)),
}, held_out=(last_time, last_conc))
plt.show()

# %% [markdown]
# ## 9. A step the classic analysis cannot take easily
#
# In `nlme`, covariates enter the parameters through linear formulas. In a
# program, any differentiable function will do: here a small neural network
# (2 inputs, 8 hidden units, 2 outputs) maps standardised log weight and log
# dose to shifts of $\log k_a$ and $\log Cl$, fitted together with
# everything else (weight decay on its weights, since it has 42 of them and
# there are 12 subjects).

# %%
fit_network = pk.fit_population(train, start_train, hidden=8,
                                random_effects="all", seed=SEED)
predictions["population model + covariate network"] = pk.predict(
    fit_network, train, at)
error_table(predictions)

# %% [markdown]
# **Verdict.** On 12 subjects the network moves the held-out error only a
# little, and not in one direction: in the reruns of
# `benchmarks/bench_theophylline.py` (five seeds) it lowered the root mean
# squared error of the correlated model by about a tenth but raised its
# mean and median absolute error, and it stayed well behind the per-subject
# fits. Twelve subjects are too few to learn a nonlinear covariate effect:
# the honest use of this flexibility is on larger studies, or with more
# structure (say a second compartment), a few lines in this program.
#
# ## Closing note: what we compared
#
# | | this notebook | `nlme` (`fm3Theo.nlme`) |
# | --- | --- | --- |
# | estimator | ELBO, full-rank Gaussian $q$, Adam | Lindstrom-Bates approx. ML |
# | random effects | $\log k_a$, $\log Cl$ | $\log k_a$, $\log Cl$ |
# | covariate | log weight on $\log Cl$ | none |
# | uncertainty | posterior sd under $q$ | asymptotic standard error |
#
# The numbers are in the tables of sections 6 and 8 above, and with reruns
# over seeds in `benchmarks/README.md` ("Theophylline"). References:
# Boeckmann, Sheiner and Beal (1994), *NONMEM Users Guide, Part V*; Pinheiro
# and Bates (2000), *Mixed-Effects Models in S and S-PLUS*, Springer, chapter
# 8 and appendix A.29; R's `nlme` package, `scripts/ch08.R`.
