"""The theophylline study (bonus notebook ``bonus/Theophylline.ipynb``).

Everything the bonus notebook imports: the data (read from CSV and checked),
the one-compartment model with first-order absorption (its differential
equation for torchdiffeq and its closed-form solution), the per-subject
nonlinear least-squares baseline, and the population model: subject-specific
parameters from a population mean, a weight covariate and random effects,
fitted by gradient ascent on a variational lower bound of the marginal
likelihood (the Part II machinery).

Vocabulary: ``dose`` in mg/kg, ``times`` in hours, ``conc`` in mg/L; the
parameters are ``log_ke`` (elimination rate, 1/h), ``log_ka`` (absorption
rate, 1/h) and ``log_cl`` (clearance, L/h/kg), the parametrisation of R's
``SSfol`` and of Pinheiro and Bates (2000, chapter 8). From oral doses alone
the bioavailability F is not identified: the clearance and the volume ``V =
Cl / ke`` are the apparent ones, Cl/F and V/F. The sparse-design experiment
(``keep_mask``, ``sparse_design``, ``sparse_experiment``) keeps a few
samples per subject and predicts the others. Arrays over subjects
have shape ``(n_subjects, n_times)``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._utils import check_arguments, integer, number, one_of, one_thread, progress_bar

COLUMNS = ("Subject", "Wt", "Dose", "Time", "conc")
"""Columns of the CSV file, one row per serum sample."""

PARAMETERS = ("log_ke", "log_ka", "log_cl")
"""The model's parameters per subject, in this order everywhere."""

RANDOM_EFFECTS = {"ka_cl": (1, 2), "all": (0, 1, 2)}
"""Random-effect structures of :class:`PopulationModel`: the indices into
:data:`PARAMETERS` of the parameters that get a random effect."""

# What the settings of the population model and its fit may be, checked once
# by check_arguments in the public function that takes them
DESIGN_RULES = {"k": integer(1), "seed": integer()}
LEAST_SQUARES_RULES = {"n_steps": integer(1)}
MODEL_RULES = {
    "n_subjects": integer(1),
    "hidden": integer(0),
    "random_effects": one_of(RANDOM_EFFECTS),
}
FIT_RULES = {
    "n_steps": integer(1),
    "n_samples": integer(1),
    "lr": number(0, strict=True),
    "weight_decay": number(0),
    "seed": integer(),
}
SPARSE_RULES = {  # the further settings of sparse_experiment
    "random_effects": MODEL_RULES["random_effects"],
    "n_steps": FIT_RULES["n_steps"],
    "lr": FIT_RULES["lr"],
}

NLME_REFERENCE = {
    "log_ke": (-2.454704, 0.0525),
    "log_ka": (0.465734, 0.1986),
    "log_cl": (-3.227223, 0.0600),
}
"""Fixed effects (estimate, standard error) of Pinheiro and Bates' final
theophylline model ``fm3Theo.nlme`` (R nlme, maximum likelihood, random
effects on log ka and log Cl), as reported from a run of nlme's book script
``ch08.R`` in the EXOZIPPy repository (see ``data/README.md``); its standard
errors were given for base-10 logarithms and are multiplied here by ln 10. A
secondary source: not checked against R's own output or the book."""

NLME_REFERENCE_SDS = {"omega_ka": 0.6439, "omega_cl": 0.1669, "sigma": 0.7092}
"""Between-subject standard deviations of log ka and log Cl, and the residual
standard deviation (mg/L), from the same source (model ``fm2Theo.nlme``,
whose fixed effects agree with ``fm3Theo.nlme`` to 1e-4)."""


# --- the data -----------------------------------------------------------------


def load_theophylline(path) -> pd.DataFrame:
    """Read the theophylline data from CSV and check every row.

    Introduced in the notebook section "The data".

    Args:
        path: CSV file with the columns of :data:`COLUMNS`, e.g.
            ``helpers.data_path("theophylline.csv")``.

    Returns:
        The checked DataFrame, sorted by subject and time.

    Raises:
        ValueError: naming the file line, column and value of a bad row.
    """
    data = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(
            f"{path}: the CSV must have the columns {COLUMNS}, missing {missing}"
        )
    if data.empty:
        raise ValueError(f"{path}: the CSV has a header but no rows")
    frame = pd.DataFrame(
        {c: pd.to_numeric(data[c].str.strip(), errors="coerce") for c in COLUMNS}
    )
    # every entry a finite number first (text became NaN), then the ranges,
    # then what must hold within a subject
    first_row = frame.groupby("Subject").transform("first")
    rules = (
        *((column, np.isfinite(frame[column]), "a number") for column in COLUMNS),
        ("Wt", frame["Wt"] > 0, "a body weight in kg > 0"),
        ("Dose", frame["Dose"] > 0, "a dose in mg/kg > 0"),
        ("Time", frame["Time"] >= 0, "hours since the dose, >= 0"),
        ("conc", frame["conc"] >= 0, "a concentration in mg/L >= 0"),
        *((column, frame[column] == first_row[column],
           "the same on every row of a subject, as on its first row")
          for column in ("Wt", "Dose")),
        ("Time", ~frame.duplicated(["Subject", "Time"]),
         "a new time for its subject: one sample a time"),
    )  # fmt: skip
    for column, ok, allowed in rules:
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy())[0])
            raise ValueError(
                f"{path}, line {row + 2}: {column} must be {allowed}, "
                f"got {data[column].iloc[row]!r}"
            )
    frame["Subject"] = frame["Subject"].astype("int64")
    return frame.sort_values(["Subject", "Time"], ignore_index=True)


@dataclasses.dataclass(frozen=True)
class Study:
    """The data as tensors, one row per subject (float64).

    Attributes:
        subject: subject ids, ``(n_subjects,)`` (int64).
        weight: body weight in kg, ``(n_subjects,)``.
        dose: dose in mg/kg, ``(n_subjects,)``.
        times: sampling times in hours, ``(n_subjects, n_times)``; a subject
            with fewer samples repeats its last time.
        conc: concentrations in mg/L, ``(n_subjects, n_times)``.
        observed: whether each entry is a sample used for fitting,
            ``(n_subjects, n_times)`` (bool).
    """

    subject: torch.Tensor
    weight: torch.Tensor
    dose: torch.Tensor
    times: torch.Tensor
    conc: torch.Tensor
    observed: torch.Tensor


def to_study(frame: pd.DataFrame) -> Study:
    """Turn the checked DataFrame of :func:`load_theophylline` into tensors."""
    groups = [g for _, g in frame.groupby("Subject", sort=True)]
    n_times = max(len(g) for g in groups)
    times = torch.zeros(len(groups), n_times, dtype=torch.float64)
    conc = torch.zeros_like(times)
    observed = torch.zeros(len(groups), n_times, dtype=torch.bool)
    for row, group in enumerate(groups):
        k = len(group)
        times[row, :k] = torch.tensor(group["Time"].to_numpy(float))
        times[row, k:] = times[row, k - 1]
        conc[row, :k] = torch.tensor(group["conc"].to_numpy(float))
        observed[row, :k] = True
    first = pd.DataFrame([g.iloc[0] for g in groups])
    return Study(
        subject=torch.tensor(first["Subject"].to_numpy("int64")),
        weight=torch.tensor(first["Wt"].to_numpy(float)),
        dose=torch.tensor(first["Dose"].to_numpy(float)),
        times=times,
        conc=conc,
        observed=observed,
    )


def hold_out_last(study: Study) -> tuple[Study, torch.Tensor, torch.Tensor]:
    """Hide each subject's last sample from fitting.

    Introduced in the notebook section "Predicting the last sample".

    Returns:
        ``(train, last_time, last_conc)``: the study with the last sample of
        every subject marked unobserved, and the held-out times and
        concentrations, ``(n_subjects,)`` each.
    """
    last = study.observed.sum(dim=1) - 1  # index of each subject's last sample
    rows = torch.arange(len(last))
    observed = study.observed.clone()
    observed[rows, last] = False
    train = dataclasses.replace(study, observed=observed)
    return train, study.times[rows, last], study.conc[rows, last]


def keep_mask(scores, post_dose, k):
    """Which samples a sparse design keeps: per subject, ``k`` of the
    ``post_dose`` samples, those with the smallest ``scores``.

    Introduced in the notebook section
    "Where pooling pays: sparse designs", where it is
    written as an exercise. With uniform random ``scores`` this keeps ``k``
    post-dose samples per subject, chosen at random.

    Args:
        scores: ``(n_subjects, n_times)``, distinct values.
        post_dose: ``(n_subjects, n_times)`` bool, the samples that may be
            kept (each subject needs at least ``k``).
        k: samples kept per subject.

    Returns:
        ``(n_subjects, n_times)`` bool, ``k`` True per row.
    """
    order = scores.masked_fill(~post_dose, math.inf).argsort(dim=1)
    return order.argsort(dim=1) < k  # the rank of each sample in its row


def sparse_design(study: Study, k: int, seed: int = 0):
    """Keep ``k`` random post-dose samples per subject, hold out the rest.

    Introduced in the notebook section
    "Where pooling pays: sparse designs". The samples at
    ``Time == 0`` are neither kept nor predicted: the model says the
    concentration there is exactly 0, and some subjects' are not.

    Args:
        study: the data.
        k: samples kept per subject, at least 1 and at most the fewest
            post-dose samples of a subject minus 1 (9 for the theophylline
            study), so that every subject has one to predict.
        seed: seeds the random choice (one seed, one design).

    Returns:
        ``(train, held_out)``: the study with only the kept samples marked
        observed, and a bool mask ``(n_subjects, n_times)`` of the samples
        to predict.
    """
    post_dose = study.observed & (study.times > 0)
    most = int(post_dose.sum(1).min()) - 1
    k, seed = check_arguments(DESIGN_RULES, locals()).values()
    if k > most:
        raise ValueError(f"k must be an integer in [1, {most}] (every subject "
                         f"keeps one post-dose sample to predict), got {k}")
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(study.conc.shape, generator=generator, dtype=torch.float64)
    keep = keep_mask(scores, post_dose, k)
    return dataclasses.replace(study, observed=keep), post_dose & ~keep


# --- the model ----------------------------------------------------------------


def concentration(times, dose, log_ke, log_ka, log_cl):
    """Closed-form concentration of the one-compartment model.

    Introduced in the notebook section "The model". With ``ke = exp(log_ke)``
    and so on, and the volume ``V = Cl / ke``::

        C(t) = dose ka / (V (ka - ke)) (exp(-ke t) - exp(-ka t))

    the solution of the ODE of :class:`OneCompartment` (R's ``SSfol``). It is
    undefined when ``ka == ke``.

    Args:
        times: hours, broadcastable with the parameters, e.g. ``(n, n_times)``.
        dose: mg/kg, e.g. ``(n, 1)``.
        log_ke, log_ka, log_cl: e.g. ``(n, 1)``.

    Returns:
        Concentrations in mg/L, the broadcast shape.
    """
    ke, ka = log_ke.exp(), log_ka.exp()
    scale = dose * (log_ke + log_ka - log_cl).exp() / (ka - ke)
    return scale * ((-ke * times).exp() - (-ka * times).exp())


class OneCompartment(nn.Module):
    """Right-hand side of the one-compartment model for ``torchdiffeq.odeint``.

    Introduced in the notebook section "The model". The state is
    ``(amount in the gut per kg body weight, concentration in serum)``::

        d gut / dt  = -ka gut
        d conc / dt =  ka gut / V - ke conc,     V = Cl / ke

    Args:
        log_ke, log_ka, log_cl: parameters, ``(n,)`` each.
    """

    def __init__(self, log_ke, log_ka, log_cl):
        super().__init__()
        self.ke, self.ka = log_ke.exp(), log_ka.exp()
        self.volume = (log_cl - log_ke).exp()

    def forward(self, t, state):
        """Time derivative of ``state``, shape ``(n, 2)``."""
        gut, conc = state[..., 0], state[..., 1]
        absorbed = self.ka * gut
        return torch.stack([-absorbed, absorbed / self.volume - self.ke * conc], -1)


# --- per-subject nonlinear least squares --------------------------------------


def _masked_residuals(params, times, dose, conc, observed):
    """Residuals ``(n, n_times)`` of parameters ``(n, 3)``; zero where unused."""
    log_ke, log_ka, log_cl = params.unsqueeze(-1).unbind(-2)
    fitted = concentration(times, dose[:, None], log_ke, log_ka, log_cl)
    return (conc - fitted) * observed


def fit_least_squares(study: Study, n_steps: int = 50) -> torch.Tensor:
    """Fit every subject on its own by nonlinear least squares.

    Introduced in the notebook section "Baseline: one fit per subject". The
    classic first step (R's ``nlsList``): Levenberg-Marquardt on the log
    parameters, all subjects at once, from three starting absorption rates;
    each subject keeps the start with the smallest sum of squares.

    Args:
        study: the data; only ``observed`` samples are used.
        n_steps: Levenberg-Marquardt iterations per start.

    Returns:
        Parameters ``(n_subjects, 3)`` in the order of :data:`PARAMETERS`,
        with ``ka > ke`` (the same curve has a mirror image with the two
        rates swapped; this picks the conventional one).
    """
    n_steps = check_arguments(LEAST_SQUARES_RULES, locals())["n_steps"]
    with one_thread():
        return _levenberg_marquardt(study, n_steps)


def _levenberg_marquardt(study, n_steps):
    """The loop of :func:`fit_least_squares` (single-threaded by its caller)."""
    args = (study.times, study.dose, study.conc, study.observed)
    n = len(study.dose)
    best, best_sse = None, None
    for start_ka in (-0.5, 0.5, 1.5):
        params = torch.tensor([-2.5, start_ka, -3.2], dtype=torch.float64).repeat(n, 1)
        damping = torch.full((n,), 1e-2, dtype=torch.float64)
        sse = _masked_residuals(params, *args).square().sum(1)
        for _ in range(n_steps):
            jac = torch.func.vmap(torch.func.jacrev(_one_residual))(params, *args)
            res = _masked_residuals(params, *args)
            normal = jac.transpose(1, 2) @ jac  # (n, 3, 3)
            gradient = jac.transpose(1, 2) @ res.unsqueeze(-1)  # (n, 3, 1)
            scaled = normal + damping[:, None, None] * torch.diag_embed(
                normal.diagonal(dim1=1, dim2=2) + 1e-9
            )
            step = -torch.linalg.solve(scaled, gradient).squeeze(-1)
            trial = params + step
            trial_sse = _masked_residuals(trial, *args).square().sum(1)
            better = torch.isfinite(trial_sse) & (trial_sse < sse)
            params = torch.where(better[:, None], trial, params)
            sse = torch.where(better, trial_sse, sse)
            damping = torch.where(better, damping / 3, damping * 3).clamp(1e-9, 1e9)
        if best is None:
            best, best_sse = params, sse
        else:
            keep = sse < best_sse
            best = torch.where(keep[:, None], params, best)
            best_sse = torch.where(keep, sse, best_sse)
    return _absorption_first(best)


def _one_residual(params, times, dose, conc, observed):
    """Residuals of one subject, ``(n_times,)`` (for the Jacobian)."""
    return _masked_residuals(params[None], times[None], dose[None], conc[None],
                             observed[None])[0]


def _absorption_first(params):
    """Swap to ``ka > ke`` where a fit found the mirror image (same curve)."""
    log_ke, log_ka, log_cl = params.unbind(-1)
    flipped = log_ke > log_ka
    new_ke = torch.where(flipped, log_ka, log_ke)
    new_ka = torch.where(flipped, log_ke, log_ka)
    # Same curve: Cl stays, V = Cl / ke changes with ke (see concentration).
    return torch.stack([new_ke, new_ka, log_cl], -1)


# --- the population model -----------------------------------------------------


def covariates(study: Study) -> torch.Tensor:
    """Standardised covariates ``(n_subjects, 2)``: log weight and log dose."""
    raw = torch.stack([study.weight.log(), study.dose.log()], -1)
    scale = raw.std(0, correction=0)
    return (raw - raw.mean(0)) / torch.where(scale > 0, scale, 1.0)


class PopulationModel(nn.Module):
    """Population pharmacokinetic model with its variational posterior.

    Introduced in the notebook section "The population model, as one program".
    For subject
    ``i`` with standardised log weight ``w_i``::

        log ke_i = beta_ke
        log ka_i = beta_ka + b_ka,i              b_ka,i ~ N(0, omega_ka^2)
        log Cl_i = beta_cl + gamma w_i + b_cl,i  b_cl,i ~ N(0, omega_cl^2)
        conc_ij  = C(t_ij; ke_i, ka_i, Cl_i) + e_ij,   e_ij ~ N(0, sigma^2)

    (random effects on log ka and log Cl, as Pinheiro and Bates' final model,
    plus the weight covariate). The unknowns ``z = (beta_ke, beta_ka,
    beta_cl, gamma, b_1, ..., b_n)`` get one joint Gaussian posterior
    approximation ``q(z) = N(mean, L L^T)`` (full rank, so that the
    population means and the random effects may correlate); ``omega`` and
    ``sigma`` are estimated by maximising the evidence lower bound.

    With ``hidden > 0``, a small neural network from both covariates (log
    weight and log dose) to shifts of (log ka, log Cl) replaces the linear
    weight effect ``gamma`` (its weights are point estimates).

    Args:
        n_subjects: number of subjects.
        start: starting population means ``(3,)`` in the order of
            :data:`PARAMETERS`, e.g. the median of per-subject fits.
        hidden: hidden units of the covariate network; 0 for the linear
            weight effect.
        random_effects: ``"ka_cl"``: independent random effects on log ka
            and log Cl (the book's final model, ``fm3Theo.nlme``);
            ``"all"``: correlated random effects on all three (its first
            model, ``fm1Theo.nlme``), ``omega`` then a Cholesky factor.
        generator: random numbers for the network's initial weights.
        weight: with ``hidden=0``, include the linear weight effect
            ``gamma``; False drops it (no covariate, as in ``nlme``'s fits),
            and ``z`` then starts ``(beta_ke, beta_ka, beta_cl, b_1, ...)``.
    """

    def __init__(self, n_subjects, start, hidden=0, random_effects="ka_cl",
                 generator=None, weight=True):
        super().__init__()
        checked = check_arguments(MODEL_RULES, locals())
        self.n_subjects, self.hidden = checked["n_subjects"], checked["hidden"]
        self.targets = RANDOM_EFFECTS[random_effects]  # parameter of each effect
        self.n_effects = len(self.targets)
        self.weight_covariate = bool(weight) and not self.hidden
        self.n_fixed = n_fixed = 4 if self.weight_covariate else 3
        dim = n_fixed + self.n_effects * self.n_subjects
        mean = torch.zeros(dim, dtype=torch.float64)
        mean[:3] = torch.as_tensor(start, dtype=torch.float64)
        self.mean = nn.Parameter(mean)
        self.scale_raw = nn.Parameter(torch.full((dim,), math.log(0.1),
                                                 dtype=torch.float64))
        self.lower = nn.Parameter(torch.zeros(dim, dim, dtype=torch.float64))
        omega = torch.tensor([0.1, 0.5, 0.2], dtype=torch.float64)
        self.log_omega = nn.Parameter(omega[list(self.targets)].log())
        self.omega_lower = nn.Parameter(torch.zeros(self.n_effects, self.n_effects,
                                                    dtype=torch.float64),
                                        requires_grad=random_effects == "all")
        self.log_sigma = nn.Parameter(torch.tensor(0.0, dtype=torch.float64))
        self.network = None
        if self.hidden:
            layers = [nn.Linear(2, self.hidden), nn.Tanh(), nn.Linear(self.hidden, 2)]
            with torch.random.fork_rng():
                if generator is not None:
                    torch.manual_seed(int(torch.randint(2**31, (1,),
                                                        generator=generator)))
                self.network = nn.Sequential(*layers).double()
                nn.init.zeros_(self.network[-1].weight)
                nn.init.zeros_(self.network[-1].bias)

    def cholesky(self):
        """Lower-triangular factor ``L`` of the posterior covariance."""
        return self.lower.tril(-1) + torch.diag(self.scale_raw.exp())

    def omega_cholesky(self):
        """Cholesky factor of the random effects' covariance ``Omega``."""
        return self.omega_lower.tril(-1) + torch.diag(self.log_omega.exp())

    def sample(self, n_samples, generator=None):
        """Draws ``z = mean + L eps`` from ``q``, ``(n_samples, dim)``."""
        eps = torch.randn(n_samples, len(self.mean), generator=generator,
                          dtype=torch.float64)
        return self.mean + eps @ self.cholesky().T

    def subject_parameters(self, z, covariates):
        """Per-subject log parameters from draws ``z`` ``(s, dim)``.

        Returns:
            ``(log_ke, log_ka, log_cl)``, each ``(s, n_subjects)``.
        """
        fixed, effects = z[:, : self.n_fixed], self.random_effects(z)
        params = [fixed[:, k:k + 1].expand(-1, self.n_subjects) for k in range(3)]
        for column, target in enumerate(self.targets):
            params[target] = params[target] + effects[..., column]
        log_ke, log_ka, log_cl = params
        if self.weight_covariate:
            log_cl = log_cl + fixed[:, 3:4] * covariates[:, 0]
        elif self.network is not None:
            shift = self.network(covariates)  # (n_subjects, 2)
            log_ka = log_ka + shift[:, 0]
            log_cl = log_cl + shift[:, 1]
        return log_ke, log_ka, log_cl

    def random_effects(self, z):
        """The random effects of draws ``z``, ``(s, n_subjects, n_effects)``."""
        return z[:, self.n_fixed:].reshape(len(z), self.n_subjects, self.n_effects)


def elbo(model: PopulationModel, study: Study, z: torch.Tensor) -> torch.Tensor:
    """Evidence lower bound, estimated with draws ``z`` from ``q``.

    Introduced in the notebook section "The population model, as one
    program", where it is written out step by step::

        ELBO = E_q[log p(conc | z, sigma) + log p(b | omega)] + H(q)

    with a flat prior on the population means and the covariate effect, and
    the Gaussian entropy ``H(q)`` in closed form.

    Args:
        model: the population model (holds ``q``, ``omega`` and ``sigma``).
        study: the data; only ``observed`` samples enter.
        z: draws from ``q``, ``(s, dim)`` (see :meth:`PopulationModel.sample`).

    Returns:
        The ELBO estimate, a scalar (higher is better).
    """
    log_ke, log_ka, log_cl = model.subject_parameters(z, covariates(study))
    fitted = concentration(study.times, study.dose[:, None], log_ke[..., None],
                           log_ka[..., None], log_cl[..., None])
    normal = torch.distributions.Normal(fitted, model.log_sigma.exp())
    log_lik = (normal.log_prob(study.conc) * study.observed).sum((1, 2))
    prior = torch.distributions.MultivariateNormal(
        torch.zeros(model.n_effects, dtype=torch.float64),
        scale_tril=model.omega_cholesky())
    log_prior = prior.log_prob(model.random_effects(z)).sum(1)
    dim = len(model.mean)
    entropy = model.scale_raw.sum() + 0.5 * dim * (1 + math.log(2 * math.pi))
    return (log_lik + log_prior).mean() + entropy


@dataclasses.dataclass
class PopulationFit:
    """A fitted population model and its loss curve.

    Attributes:
        model: the fitted :class:`PopulationModel`.
        losses: negative ELBO per step, ``(n_steps,)``.
    """

    model: PopulationModel
    losses: np.ndarray


def fit_population(
    study: Study,
    start,
    hidden: int = 0,
    random_effects: str = "ka_cl",
    weight: bool = True,
    n_steps: int = 1500,
    n_samples: int = 16,
    lr: float = 0.02,
    weight_decay: float = 1e-2,
    seed: int = 0,
    progress: bool = True,
) -> PopulationFit:
    """Fit :class:`PopulationModel` by Adam on the negative ELBO.

    Introduced in the notebook section "Fitting"; the loop is the Part II
    loop: draw, evaluate the loss, backpropagate, step. Runs on one CPU
    thread (the tensors are tiny; a second thread only adds overhead).

    Args:
        study: the data; only ``observed`` samples enter.
        start: starting population means ``(3,)``.
        hidden: hidden units of the covariate network (0: linear weight).
        random_effects: ``"ka_cl"`` or ``"all"`` (see :class:`PopulationModel`).
        weight: with ``hidden=0``, include the linear weight effect on log
            Cl (False: no covariate, the model ``nlme`` fitted).
        n_steps: Adam steps.
        n_samples: draws from ``q`` per step.
        lr: Adam's step size; halved twice, at 60% and 85% of the steps, to
            settle the noisy optimum.
        weight_decay: L2 penalty on the covariate network's weights only.
        seed: seeds the draws and the network's initial weights.
        progress: show a progress bar.

    Returns:
        A :class:`PopulationFit`.
    """
    checked = check_arguments(FIT_RULES, locals())
    n_steps, n_samples, lr, weight_decay, seed = checked.values()  # as in FIT_RULES
    generator = torch.Generator().manual_seed(seed)
    model = PopulationModel(len(study.dose), start, hidden, random_effects,
                            generator, weight=weight)
    # Adam moves every number at about the same speed, so the d (d - 1) / 2
    # off-diagonal entries of L (780 for d = 40 unknowns) step sqrt(d) times
    # slower: at the full step, q's spread grows wildly in a few dozen steps.
    slower = lr / math.sqrt(len(model.mean))
    groups = [{"params": [p for n, p in model.named_parameters() if p.requires_grad
                          and n != "lower" and not n.startswith("network")]},
              {"params": [model.lower], "lr": slower}]
    if model.network is not None:
        groups.append({"params": model.network.parameters(),
                       "weight_decay": weight_decay})
    optimiser = torch.optim.Adam(groups, lr=lr)
    milestones = [int(0.6 * n_steps), int(0.85 * n_steps)]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones, 0.5)
    losses = np.empty(n_steps)
    with one_thread():
        for step in progress_bar(range(n_steps), progress, desc="fitting"):
            loss = -elbo(model, study, model.sample(n_samples, generator))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses[step] = loss.item()
    return PopulationFit(model, losses)


@torch.no_grad()
def predict(fit: PopulationFit, study: Study, times, population=False,
            n_samples=1000, seed=0):
    """Posterior mean concentration of each subject at ``times``.

    Introduced in the notebook section "Predicting the last sample".

    Args:
        fit: a fitted model.
        study: the data the model was fitted on (for dose and covariates).
        times: hours, ``(n_subjects, k)``.
        population: if True, set every random effect to zero: the
            population curve for the subject's covariates.
        n_samples: draws from ``q`` averaged over.
        seed: seeds the draws.

    Returns:
        Concentrations ``(n_subjects, k)``.
    """
    model = fit.model
    z = model.sample(n_samples, torch.Generator().manual_seed(seed))
    if population:
        z = z.clone()
        z[:, model.n_fixed:] = 0.0
    log_ke, log_ka, log_cl = model.subject_parameters(z, covariates(study))
    curves = concentration(times, study.dose[:, None], log_ke[..., None],
                           log_ka[..., None], log_cl[..., None])
    return curves.mean(0)


def least_squares_prediction(params, study: Study, times):
    """Concentrations ``(n_subjects, k)`` of per-subject fits ``(n, 3)``."""
    log_ke, log_ka, log_cl = params.unsqueeze(-1).unbind(-2)
    return concentration(times, study.dose[:, None], log_ke, log_ka, log_cl)


@torch.no_grad()
def summarise(fit: PopulationFit) -> pd.DataFrame:
    """Posterior means and standard deviations of the population parameters.

    Returns:
        One row per quantity: the population means (and the weight effect
        if linear) with their posterior standard deviations, then
        the random effects' standard deviations (``omega_ka``, ...) and
        ``sigma`` (point estimates).
    """
    model = fit.model
    cov = model.cholesky() @ model.cholesky().T
    names = list(PARAMETERS) + (["weight_effect"] if model.weight_covariate else [])
    rows = [(name, model.mean[k].item(), cov[k, k].sqrt().item())
            for k, name in enumerate(names)]
    omega = model.omega_cholesky()
    sds = (omega @ omega.T).diagonal().sqrt()
    rows += [(f"omega_{PARAMETERS[target][4:]}", sds[k].item(), float("nan"))
             for k, target in enumerate(model.targets)]
    rows += [("sigma", model.log_sigma.exp().item(), float("nan"))]
    return pd.DataFrame(rows, columns=["quantity", "estimate", "sd"]).set_index(
        "quantity")


# --- where pooling pays: sparse designs -----------------------------------------


SPARSE_METHODS = ("own least-squares fit", "population curve", "population model")
"""The predictions compared by :func:`sparse_experiment`."""


def sparse_experiment(
    study: Study,
    ks=(2, 3, 5, 9),
    seeds=(0,),
    random_effects: str = "ka_cl",
    n_steps: int = 1500,
    lr: float = 0.02,
    progress: bool = True,
) -> pd.DataFrame:
    """Prediction error of sparse designs: keep ``k`` samples, predict the rest.

    Introduced in the notebook section
    "Where pooling pays: sparse designs". For each ``k``
    and each seed (one random design, :func:`sparse_design`), fits each
    subject by least squares (:func:`fit_least_squares`) and the population
    model (:func:`fit_population`, started at the median of the per-subject
    fits, the same seed) to the kept samples, and predicts every held-out
    post-dose sample three ways (:data:`SPARSE_METHODS`): the subject's own
    fit, the population curve (random effects set to 0) and the population
    model with the subject's random effects.

    Args:
        study: the data.
        ks: samples kept per subject, each as allowed by :func:`sparse_design`.
        seeds: one design (and one population fit) per seed.
        random_effects: of the population model, ``"ka_cl"`` or ``"all"``.
        n_steps, lr: of :func:`fit_population`.
        progress: show a progress bar over the designs.

    Returns:
        One row per (k, seed, method) with the root mean squared error
        ``rmse`` and the mean absolute error ``mae`` (mg/L) over all
        held-out samples of the design (``n_held_out`` of them).
    """
    check_arguments(SPARSE_RULES, locals())
    # every design first: sparse_design checks each k and seed before any fit
    designs = {(k, seed): sparse_design(study, k, seed) for k in ks for seed in seeds}
    rows = []
    for (k, seed), (train, held_out) in progress_bar(
        designs.items(), progress, desc="designs"
    ):
        per_subject = fit_least_squares(train)
        fit = fit_population(train, per_subject.median(0).values,
                             random_effects=random_effects, n_steps=n_steps,
                             lr=lr, seed=seed, progress=False)
        predictions = {
            "own least-squares fit": least_squares_prediction(
                per_subject, train, study.times),
            "population curve": predict(fit, train, study.times, population=True),
            "population model": predict(fit, train, study.times),
        }
        for method, predicted in predictions.items():
            error = (predicted - study.conc)[held_out]
            rows.append({"k": k, "seed": seed, "method": method,
                         "rmse": error.square().mean().sqrt().item(),
                         "mae": error.abs().mean().item(),
                         "n_held_out": int(held_out.sum())})
    return pd.DataFrame(rows)


# --- plots ----------------------------------------------------------------------


def plot_subjects(study: Study, curves: dict, held_out=None):
    """Each subject's samples with fitted curves, one panel per subject.

    Introduced in the notebook section "Each subject's fit".

    Args:
        study: the data (fitted samples dark, unobserved ones hollow).
        curves: label -> ``(grid, conc)`` with ``grid`` ``(k,)`` hours and
            ``conc`` ``(n_subjects, k)`` mg/L.
        held_out: optional ``(times, conc)`` ``(n_subjects,)`` each, drawn as
            red crosses.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    n = len(study.dose)
    columns = 4
    rows = -(-n // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(12, 2.6 * rows),
                                sharex=True, sharey=True)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        seen = study.observed[i]
        ax.plot(study.times[i, seen], study.conc[i, seen], "o", color="black",
                ms=4, label="fitted samples")
        for label, (grid, conc) in curves.items():
            ax.plot(grid, conc[i], lw=1.5, label=label)
        if held_out is not None:
            ax.plot(held_out[0][i], held_out[1][i], "x", color="red", ms=8, mew=2,
                    label="held-out sample")
        ax.set_title(f"subject {int(study.subject[i])}: {study.weight[i]:.1f} kg, "
                     f"{study.dose[i]:.2f} mg/kg", fontsize=9)
        if i % columns == 0:
            ax.set_ylabel("conc (mg/L)")
        if i >= n - columns:
            ax.set_xlabel("time (h)")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return figure
