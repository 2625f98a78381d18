"""ICU reports with gaps: the bonus notebook ``bonus/ICU_missing_reports.ipynb``.

The registry of Hackenberg et al. (The American Statistician 76(3), 2022):
1281 German hospitals reported their current COVID-19 intensive-care
patients daily from 16 April to 24 June 2020 (70 days), not always every
day. They predict the daily change of a hospital's cases ``y`` from the
county's incidence ``z``::

    y(t + 1) - y(t) = b1 + b2 * y~(t) + b3 * z(t)

with ``y~(t)`` the report of day ``t`` if there was one, else the model's own
bridged value. This module holds, top to bottom:

1. the data: a simulator that reproduces the mechanisms of those data, each
   behind one setting that switches it off, and the CSV reader;
2. the increment model: the notebook's loss (a loop with branches) run for
   all hospitals at once, the fits and the baselines;
3. the two plots the notebook draws.

Arrays over many hospitals have shape ``(n_hospitals, n_days)``: ``y`` cases
as published, ``z`` the county's new infections per 100,000 per day,
``reported`` whether the hospital reported; ``beta`` is ``(n_hospitals, 3)``.
"""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .._utils import (
    check_float,
    check_int,
    check_tensor,
    one_thread,
    progress_bar,
)
from ..plotting import COLORS

COLUMNS = ("hospital", "day", "cases", "reported", "incidence")
"""Columns of a hospital data set, one row per hospital and day."""


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """Parameters of :func:`simulate_hospitals`; where each default comes from.

    The mechanisms and their "off" values (used by the notebook's ablation):

    * falling wave, ``incidence_end=1.0`` is off (flat incidence);
    * spread of hospital sizes, ``size_sd=0.0`` is off (all alike);
    * late starters, ``late_start=0.0`` is off;
    * gaps filled by the last report, ``gap_start=0.0`` is off.

    Attributes:
        incidence_start: a county's new infections per 100,000 per day on
            day 0, uniform on this range. The hospitals printed in the
            authors' demo notebook (registry from 16 April 2020) have 1.9 to
            11.5.
        incidence_end: the incidence on the last day as a fraction of day
            0's (exponential decline), uniform on this range. Same source: on
            24 June 2020 those hospitals' counties had 9-16% of the April
            values. The end of the first wave.
        admissions_per_incidence: mean daily admissions per unit of
            incidence of a hospital of size 1 (``b3 = this * size``). Chosen
            so that the mean census starts near three patients per hospital
            and ends below one, the order of the registry's (the hospitals
            in the demo notebook have 0-2 patients).
        discharge: daily discharge probability, uniform on this range
            (``b2 = -discharge``); a mean stay of about ten days. Chosen.
        size_sd: standard deviation of the log of a hospital's size
            (log-normal, mean 1). 1.0 puts a 13-fold spread between the 10th
            and 90th percentile: a judgement about German ICUs (a few beds to
            over a hundred), not a number from the paper.
        late_start: share of hospitals whose first report comes late,
            published as 0 before it (as in the registry: the demo
            notebook shows such hospitals). The share is chosen.
        late_days: range of the first report's day for late starters, as a
            fraction of ``n_days``. Chosen.
        gap_start: daily chance that a reporting hospital stops reporting;
            its last report is then carried forward (LOCF), as the registry
            published it. Chosen: about 5% of days unreported with the
            default ``gap_length``.
        gap_length: mean length of a gap in days (geometric). Chosen.
        hospitals_per_county: hospitals that share a county's incidence.
    """

    incidence_start: tuple[float, float] = (1.0, 12.0)
    incidence_end: tuple[float, float] = (0.08, 0.16)
    admissions_per_incidence: float = 0.04
    discharge: tuple[float, float] = (0.05, 0.15)
    size_sd: float = 1.0
    late_start: float = 0.1
    late_days: tuple[float, float] = (0.1, 0.5)
    gap_start: float = 0.02
    gap_length: float = 2.5
    hospitals_per_county: int = 3

    def __post_init__(self):
        for name in ("admissions_per_incidence", "size_sd", "gap_start",
                     "late_start"):
            check_float(name, getattr(self, name), minimum=0.0)
        for name in ("gap_start", "late_start"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be at most 1, got {getattr(self, name)}")
        check_float("gap_length", self.gap_length, minimum=1.0)
        check_int("hospitals_per_county", self.hospitals_per_county, minimum=1)
        for name in ("incidence_start", "incidence_end", "discharge", "late_days"):
            pair = getattr(self, name)
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"{name} must be a pair (low, high), got {pair!r}")
            low = check_float(f"{name}[0]", pair[0], minimum=0.0)
            high = check_float(f"{name}[1]", pair[1], minimum=low)
            if name in ("discharge", "late_days") and (high > 1 or low == 0):
                raise ValueError(f"{name} must lie in (0, 1], got {pair!r}")
            object.__setattr__(self, name, (low, high))


@dataclasses.dataclass(frozen=True)
class HospitalTruth:
    """What the simulator knows and the registry does not publish.

    Attributes:
        coefficients: one row per hospital: ``hospital``, ``county``,
            ``size``, ``b1``, ``b2``, ``b3``, ``first_report`` (day),
            ``n_missing`` (unreported days).
        cases: int64 array ``(n_hospitals, n_days)``, the true census.
    """

    coefficients: pd.DataFrame
    cases: np.ndarray


@dataclasses.dataclass(frozen=True)
class HospitalArrays:
    """A hospital data set as arrays: ``hospitals`` (ids, ``(n_hospitals,)``),
    float64 tensors ``y`` and ``z`` and bool tensor ``reported``, each
    ``(n_hospitals, n_days)``."""

    hospitals: np.ndarray
    y: torch.Tensor
    z: torch.Tensor
    reported: torch.Tensor


def simulate_hospitals(n_hospitals=1000, n_days=70, seed=2022, *,
                       settings=SimulationSettings(), return_truth=False):
    """Simulate daily ICU reports of many hospitals, published as a registry.

    1. Counties: incidence ``z`` falls exponentially from
       ``incidence_start`` to ``incidence_end`` times that (0.01 rounding).
    2. Hospitals: size ``s`` (log-normal, mean 1, ``size_sd``),
       ``b3 = admissions_per_incidence * s``, ``b1 = 0``, ``b2 = -d`` with
       ``d`` uniform on ``discharge``.
    3. Census: starts at its equilibrium ``b3 z(0) / d`` (Poisson) and moves
       by admissions ``~ Poisson(b3 z(t))`` minus discharges
       ``~ Binomial(y(t), d)``; the expected increment is exactly
       ``b1 + b2 y(t) + b3 z(t)``, so the increment model is the true model.
    4. Reporting: late starters report first on a day in ``late_days``;
       from its first report a hospital stops with daily chance
       ``gap_start`` and resumes with chance ``1 / gap_length``.
    5. Publishing: unreported days repeat the last report (LOCF), days
       before the first report are 0.

    Args:
        n_hospitals: at least 1. n_days: at least 10.
        seed: seed of ``numpy.random.default_rng``, >= 0.
        settings: a :class:`SimulationSettings`.
        return_truth: also return a :class:`HospitalTruth`.

    Returns:
        DataFrame with the :data:`COLUMNS` (``cases`` as published), one row
        per hospital and day; or ``(data, truth)``.
    """
    check_int("n_hospitals", n_hospitals, minimum=1)
    check_int("n_days", n_days, minimum=10)
    check_int("seed", seed, minimum=0)
    if not isinstance(settings, SimulationSettings):
        raise ValueError(f"settings must be a SimulationSettings, got {settings!r}")
    rng = np.random.default_rng(seed)
    s = settings
    n_counties = max(1, round(n_hospitals / s.hospitals_per_county))
    start = rng.uniform(*s.incidence_start, (n_counties, 1))
    end = rng.uniform(*s.incidence_end, (n_counties, 1))
    days = np.arange(n_days) / (n_days - 1)
    county_z = np.round(start * end**days, 2)  # exponential decline
    county = rng.integers(n_counties, size=n_hospitals)
    z = county_z[county]

    size = rng.lognormal(-s.size_sd**2 / 2, s.size_sd, n_hospitals)
    b3 = s.admissions_per_incidence * size
    discharge = rng.uniform(*s.discharge, n_hospitals)
    cases = np.zeros((n_hospitals, n_days), dtype=np.int64)
    cases[:, 0] = rng.poisson(b3 * z[:, 0] / discharge)
    for t in range(n_days - 1):
        admitted = rng.poisson(b3 * z[:, t])
        cases[:, t + 1] = cases[:, t] + admitted - rng.binomial(cases[:, t], discharge)

    first = np.zeros(n_hospitals, dtype=np.int64)
    late = rng.random(n_hospitals) < s.late_start
    low, high = (round(f * n_days) for f in s.late_days)
    first[late] = rng.integers(low, max(low, high) + 1, size=late.sum())
    reported = np.zeros((n_hospitals, n_days), dtype=bool)
    stops = rng.random((n_hospitals, n_days)) < s.gap_start
    resumes = rng.random((n_hospitals, n_days)) < 1.0 / s.gap_length
    reported[np.arange(n_hospitals), np.minimum(first, n_days - 1)] = True
    for t in range(1, n_days):
        was = reported[:, t - 1]
        later = t > first
        reported[:, t] |= later & np.where(was, ~stops[:, t], resumes[:, t])

    published = np.where(reported, cases, 0)
    for t in range(1, n_days):  # last observation carried forward
        published[:, t] = np.where(reported[:, t], cases[:, t], published[:, t - 1])

    data = pd.DataFrame({
        "hospital": np.repeat(np.arange(n_hospitals), n_days),
        "day": np.tile(np.arange(n_days), n_hospitals),
        "cases": published.ravel(),
        "reported": reported.ravel(),
        "incidence": z.ravel(),
    })
    if not return_truth:
        return data
    coefficients = pd.DataFrame({
        "hospital": np.arange(n_hospitals), "county": county, "size": size,
        "b1": 0.0, "b2": -discharge, "b3": b3, "first_report": first,
        "n_missing": (~reported).sum(axis=1),
    })
    return data, HospitalTruth(coefficients=coefficients, cases=cases)


def load_hospitals(path) -> pd.DataFrame:
    """Read a hospital data set from CSV; ``ValueError`` if it is malformed.

    Args:
        path: CSV with the :data:`COLUMNS`, every hospital on every day
            ``0..n_days-1`` once, e.g. ``helpers.data_path("icu_hospitals.csv")``.

    Returns:
        The DataFrame, typed as :func:`simulate_hospitals` returns it.
    """
    data = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"{path} must have the columns {COLUMNS}, missing {missing}")
    if not pd.api.types.is_bool_dtype(data["reported"]):
        raise ValueError(f"{path}: column 'reported' must hold True/False")
    n_hospitals, n_days = data["hospital"].nunique(), data["day"].max() + 1
    complete = (data["day"].min() == 0 and len(data) == n_hospitals * n_days
                and not data.duplicated(["hospital", "day"]).any())
    if not complete:
        raise ValueError(f"{path} must hold every day 0..{n_days - 1} once for each "
                         f"of its {n_hospitals} hospitals, got {len(data)} rows")
    for column in ("cases", "incidence"):
        check_tensor(f"{path}: column '{column}'", np.array(data[column]), (None,))
    if (data["cases"] < 0).any():
        raise ValueError(f"{path}: column 'cases' must be counts >= 0")
    if not data.groupby("hospital")["reported"].any().all():
        raise ValueError(f"{path}: every hospital needs at least one report")
    return data.astype({"hospital": "int64", "day": "int64", "cases": "int64",
                        "incidence": "float64"})


def to_arrays(data: pd.DataFrame) -> HospitalArrays:
    """A tidy hospital data set as :class:`HospitalArrays`, sorted by id."""
    data = data.sort_values(["hospital", "day"])
    hospitals = data["hospital"].unique()
    shape = (hospitals.size, -1)

    def grid(column, dtype):
        return torch.tensor(data[column].to_numpy(dtype)).reshape(shape)

    return HospitalArrays(
        hospitals=hospitals, y=grid("cases", np.float64),
        z=grid("incidence", np.float64), reported=grid("reported", bool),
    )


# --------------------------------------------------------------------------
# The increment model, its fits and the baselines
# --------------------------------------------------------------------------

MODELS = (
    "zero",
    "mean",
    "modified mean",
    "modified mean (published code)",
    "LOCF + regression",
    "LOCF + regression (published code)",
    "increment model",
    "increment model (original recipe)",
)
"""Models scored by :func:`last_day_predictions`, see there."""

PUBLISHED_LAST_DAY_SSE = {
    "zero": 86.0,
    "mean": 89.24,
    "modified mean (published code)": 84.34,
    "LOCF + regression (published code)": 181.07,
    "increment model (original recipe)": 74.75,
}
"""Sums of squared errors on the held-out last day, registry data (1281
hospitals, 70 days), as published; the modified mean, the regression and the
increment model were run as the rows named here. Source:
``results/prederr_stats_localmodels.csv`` of
github.com/maren-ha/DifferentiableProgrammingForStatisticalModeling, written
by ``01_IndividualModels.jl`` (commit b15b645)."""

PUBLISHED_CODE = (
    "github.com/maren-ha/DifferentiableProgrammingForStatisticalModeling, "
    "file 01_IndividualModels.jl, commit b15b64565ddfd2093f5683f2aab43fd59cb95c3a"
)
"""Where the published code's choices (the regression's pairing, the
modified mean's rule, the 150 fixed steps from zero) can be read."""


def _gap_rounds(reported):
    """The unreported days after a hospital's first report, in rounds.

    Round ``k`` holds every day that lies ``k`` days after its hospital's
    latest report: its ``y~`` needs the ``y~`` of the day before, which
    round ``k - 1`` (or, for ``k = 1``, the report) provides. Depends on
    ``reported`` only, so the fits work it out once.

    Returns:
        ``(cells, hospital, sizes, sources)``: the flat indices into
        ``(H, T)`` of all those days, round by round, and each one's
        hospital; the number of days in each round; per round, where each
        day's previous ``y~`` is (round 1: in the flat reports; later: in
        the previous round's values).
    """
    n_days = reported.shape[1]
    days = torch.arange(n_days).expand_as(reported)
    latest = torch.where(reported, days, -1).cummax(dim=1).values
    depth = torch.where(reported | (latest < 0), 0, days - latest).flatten()
    cells = depth.nonzero().flatten()  # sorted by hospital, then day
    cells = cells[torch.argsort(depth[cells], stable=True)]
    sizes = torch.bincount(depth[cells])[1:].tolist()
    sources, previous = [], None
    for round_cells in cells.split(sizes):
        before = round_cells - 1
        sources.append(before if previous is None
                       else torch.searchsorted(previous, before))
        previous = round_cells
    return cells, cells // n_days, sizes, sources


def _unroll(y, z, reported, beta, rounds=None):
    """Run the model over all days; return bridged values and predictions.

    The notebook's loop, vectorised: on a reported day ``y~`` is the report
    and before the first report it is 0, so only the days inside gaps need
    the recursion ``y~(t) = y~(t-1) + b1 + b2 y~(t-1) + b3 z(t-1)``. It runs
    in rounds (:func:`_gap_rounds`), as many as the longest gap, each for
    all hospitals at once: the same products and sums as the loop, so the
    same numbers to the last bit.

    Returns:
        ``y_tilde`` ``(H, T)`` and ``predicted`` ``(H, T-1)``, the prediction
        of day ``t + 1`` from day ``t``.
    """
    cells, hospital, sizes, sources = (_gap_rounds(reported) if rounds is None
                                       else rounds)
    b1, b2, b3 = beta.unbind(dim=1)
    growth = 1.0 + b2  # y~ + b2 y~ in one product
    dtype = torch.promote_types(y.dtype, beta.dtype)
    y_tilde = torch.where(reported, y, 0.0).flatten().to(dtype)
    if sizes:
        # growth and b1 + b3 z(t-1) of every gap day, gathered once
        gap_growth = growth[hospital].split(sizes)
        gap_drive = (b1[hospital] + b3[hospital] * z.flatten()[cells - 1]).split(sizes)
        value, bridged = y_tilde, []
        for k, source in enumerate(sources):
            value = gap_growth[k] * value[source] + gap_drive[k]
            bridged.append(value)
        y_tilde = y_tilde.index_put((cells,), torch.cat(bridged))
    y_tilde = y_tilde.reshape(y.shape)
    drive = b1[:, None] + b3[:, None] * z[:, :-1]
    return y_tilde, growth[:, None] * y_tilde[:, :-1] + drive


def _loss_function(y, z, reported):
    """:func:`increment_loss_batched` as a function of ``beta`` alone, with
    what depends only on the data worked out once (the fits call it hundreds
    of times)."""
    rounds = _gap_rounds(reported)
    compared = (reported.cumsum(dim=1)[:, :-1] > 0) & reported[:, 1:]
    n_compared = compared.sum(dim=1).clamp(min=1)

    def loss(beta):
        _, predicted = _unroll(y, z, reported, beta, rounds)
        error = torch.where(compared, y[:, 1:] - predicted, 0.0)
        return (error**2).sum(dim=1) / n_compared

    return loss


def increment_loss_batched(y, z, reported, beta) -> torch.Tensor:
    """Each hospital's loss ``(n_hospitals,)``: the notebook's loop, vectorised.

    Squared errors of the predicted against the reported value on every
    reported day after the first report, divided by their number (a
    hospital with one report gets 0). The branch "was day t reported?"
    becomes indexing: reported days take the report, and the days inside
    gaps are bridged in rounds, the first day of every gap, then the
    second, and so on (see ``_unroll``).
    """
    return _loss_function(y, z, reported)(beta)


def increment_loss(y, z, reported, beta) -> torch.Tensor:
    """One hospital's loss (a 0-d tensor): :func:`increment_loss_batched`
    for ``y``, ``z``, ``reported`` of shape ``(n_days,)`` and ``beta`` ``(3,)``.

    The notebook's learners write this loss as a loop (section "The loss is
    a program"); this is the reference their loop is checked against.
    """
    y, z = torch.as_tensor(y, dtype=torch.float64), torch.as_tensor(
        z, dtype=torch.float64)
    reported = torch.as_tensor(reported, dtype=torch.bool)
    return increment_loss_batched(y[None], z[None], reported[None], beta[None])[0]


def paired_difference(squared_a, squared_b):
    """Difference of two models' sums of squared errors, paired by hospital.

    Introduced in the notebook section "Comparing with the baselines". The
    per-hospital differences ``d = squared_a - squared_b`` are independent
    across hospitals, so ``sum(d)`` has standard error ``sqrt(n) * sd(d)``;
    pairing removes what the two models share (a hospital with a large
    change is hard for both).

    Args:
        squared_a, squared_b: squared errors ``(n_hospitals,)`` (tensors,
            arrays or Series) of the same hospitals.

    Returns:
        ``(difference, standard_error)``: two floats, ``sum(a) - sum(b)``.
    """
    squared_a = np.asarray(squared_a, dtype=np.float64)
    squared_b = np.asarray(squared_b, dtype=np.float64)
    if squared_a.ndim != 1 or squared_a.shape != squared_b.shape:
        raise ValueError("squared_a and squared_b must be 1-D with one entry per "
                         f"hospital each, got shapes {squared_a.shape} and "
                         f"{squared_b.shape}")
    difference = torch.as_tensor(squared_a - squared_b)
    return (difference.sum().item(),
            difference.std().item() * len(difference) ** 0.5)


def bridged_values(y, z, reported, beta):
    """The model's bridged values ``y~`` and one-day predictions, both
    ``(n_hospitals, n_days)`` and NaN before the first report (predictions
    also on the first day)."""
    with torch.no_grad():
        y_tilde, predicted = _unroll(y, z, reported, beta)
    started = reported.cumsum(dim=1) > 0
    nan = torch.full_like(y_tilde[:, :1], float("nan"))
    predicted = torch.where(started[:, :-1], predicted, nan)
    return torch.where(started, y_tilde, nan), torch.cat([nan, predicted], dim=1)


def fit_plain_gradient_descent(y, z, reported, n_steps: int = 150,
                               progress: bool = False) -> torch.Tensor:
    """The original recipe: fixed steps (0.001, 0.01, 0.001) from ``b = 0``.

    Introduced (written by hand) in the notebook section "Gradient descent
    by hand, and why scaling matters". Stopping after ``n_steps`` steps keeps
    slow coefficients near 0.

    Returns:
        ``beta`` ``(n_hospitals, 3)``; NaN or huge where it diverged.
    """
    check_int("n_steps", n_steps, minimum=1)
    step_sizes = torch.tensor([0.001, 0.01, 0.001], dtype=y.dtype)
    beta = torch.zeros(y.shape[0], 3, dtype=y.dtype, requires_grad=True)
    loss_of = _loss_function(y, z, reported)
    with one_thread():
        for _ in progress_bar(range(n_steps), progress, desc="plain steps"):
            loss = loss_of(beta).sum()
            (gradient,) = torch.autograd.grad(loss, beta)
            with torch.no_grad():
                beta -= step_sizes * gradient
    return beta.detach()


def fit_increment_model(y, z, reported, *, n_steps: int = 300, lr: float = 0.05,
                        progress: bool = False):
    """Least-squares fit of every hospital's ``beta`` by Adam on scaled data.

    Introduced in the notebook section "Gradient descent by hand, and why
    scaling matters". Per hospital the parameters ``theta = (c, b2, g)``
    enter as
    ``b1 = c s_y - b2 m_y - b3 m_z``, ``b3 = g s_y / s_z`` (``m``, ``s``:
    mean and spread of the reported cases and of the incidence), so all
    three are of order one; autograd differentiates through that map. Adam
    treats every parameter separately, so hospitals do not interact; the
    learning rate decays to ``lr / 100``.

    Returns:
        float64 ``beta`` ``(n_hospitals, 3)``; NaN with fewer than 2 reports.
    """
    check_int("n_steps", n_steps, minimum=1)
    check_float("lr", lr, minimum=0.0, strict=True)
    weight = reported.to(y.dtype)
    n = weight.sum(dim=1)
    mean_y = (weight * y).sum(dim=1) / n
    scale_y = ((weight * (y - mean_y[:, None]) ** 2).sum(dim=1) / n).sqrt()
    scale_y = scale_y.clamp(min=1.0)
    mean_z, scale_z = z.mean(dim=1), z.std(dim=1, correction=0)
    scale_z = torch.where(scale_z > 0, scale_z, 1.0)

    def to_beta(theta):
        b3 = theta[:, 2] * scale_y / scale_z
        b1 = theta[:, 0] * scale_y - theta[:, 1] * mean_y - b3 * mean_z
        return torch.stack([b1, theta[:, 1], b3], dim=1)

    theta = torch.zeros(y.shape[0], 3, dtype=y.dtype, requires_grad=True)
    optimiser = torch.optim.Adam([theta], lr=lr)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimiser, 0.01 ** (1 / n_steps))
    loss_of = _loss_function(y, z, reported)
    with one_thread():
        for _ in progress_bar(range(n_steps), progress, desc="Adam steps"):
            optimiser.zero_grad()
            losses = loss_of(to_beta(theta))
            (losses / scale_y**2).sum().backward()
            optimiser.step()
            decay.step()
    beta = to_beta(theta).detach()
    beta[n < 2] = float("nan")
    return beta


def needs_fallback(beta, max_abs: float = 10.0) -> torch.Tensor:
    """The original's rule, bool ``(n_hospitals,)``: distrust a fit with NaN
    or any ``|b| > max_abs`` (such hospitals get the mean model)."""
    return torch.isnan(beta).any(dim=1) | (beta.abs() > max_abs).any(dim=1)


def _locf_regression(y, z, shift: int) -> torch.Tensor:
    """Least squares of ``y(t+1) - y(t)`` on ``(1, y, z)`` at ``t + shift``
    per hospital (minimum norm); the predicted next increment from the last
    day. ``shift=1`` pairs each change with its end, as the published code."""
    design = torch.stack([torch.ones_like(y), y, z], dim=2)  # (H, T, 3)
    fitted_on = design[:, shift : shift + y.shape[1] - 1]
    coefficients = torch.linalg.pinv(fitted_on) @ y.diff(dim=1).unsqueeze(-1)
    return (design[:, -1:] @ coefficients).flatten()


def last_day_predictions(data: pd.DataFrame, *, n_steps: int = 300, lr: float = 0.05,
                         plain_n_steps: int = 150,
                         progress: bool = False) -> pd.DataFrame:
    """Predict each hospital's last change with every model in :data:`MODELS`.

    Introduced in the notebook section "Comparing with the baselines". The
    models see days ``0..T-2`` as published; hospitals whose day ``T-1`` was
    reported are scored on ``y[T-1] - y[T-2]``. zero: no change; mean: mean
    published change; modified mean: 0 if the last change was 0, else the
    mean (this bundle's rule); modified mean (published code): 0 if the last
    published value was 0, else the mean (the rule of the code in
    :data:`PUBLISHED_CODE`); LOCF + regression: :func:`_locf_regression`
    with ``shift=0``, and with ``shift=1`` as the published code; increment
    model: Adam fit, the last change predicted from the bridged ``y~`` (plus
    the bridged change since the last report); original recipe:
    :func:`fit_plain_gradient_descent`
    (``plain_n_steps`` steps) predicting from the published ``y[T-2]``, as
    the original evaluation. Fits that :func:`needs_fallback` get the mean
    model. ``n_steps``, ``lr``: the Adam fit's; ``progress``: bars for both
    fits.

    Returns:
        One row per scored hospital: ``hospital``, ``observed``, one column
        per model, ``days_missing_before_last`` (unreported days just before
        the last day) and the Adam fit's ``b1``, ``b2``, ``b3``.
    """
    arrays = to_arrays(data)
    scored = arrays.reported[:, -1] & arrays.reported[:, :-1].any(dim=1)
    y, z, reported = arrays.y[scored], arrays.z[scored], arrays.reported[scored]
    train_y, train_z, train_r = y[:, :-1], z[:, :-1], reported[:, :-1]
    changes = train_y.diff(dim=1)
    mean = changes.mean(dim=1)
    last_y, last_z = train_y[:, -1], train_z[:, -1]

    beta = fit_increment_model(train_y, train_z, train_r, n_steps=n_steps, lr=lr,
                               progress=progress)
    y_tilde, _ = bridged_values(train_y, train_z, train_r, beta.nan_to_num())
    bridged = y_tilde[:, -1]
    from_bridged = (beta[:, 0] + (1 + beta[:, 1]) * bridged + beta[:, 2] * last_z
                    - last_y)
    original = fit_plain_gradient_descent(train_y, train_z, train_r, plain_n_steps,
                                          progress)
    from_published = original[:, 0] + original[:, 1] * last_y + original[:, 2] * last_z

    def fallback(fit, prediction):
        return torch.where(needs_fallback(fit), mean, prediction).numpy()

    trailing = train_r.flip(dims=[1]).to(torch.int64).argmax(dim=1)
    return pd.DataFrame({
        "hospital": arrays.hospitals[scored.numpy()],
        "observed": (y[:, -1] - y[:, -2]).numpy(),
        "zero": np.zeros(int(scored.sum())),
        "mean": mean.numpy(),
        "modified mean": torch.where(changes[:, -1] == 0, 0.0, mean).numpy(),
        "modified mean (published code)": torch.where(
            last_y == 0, 0.0, mean).numpy(),
        "LOCF + regression": _locf_regression(train_y, train_z, 0).numpy(),
        "LOCF + regression (published code)": _locf_regression(
            train_y, train_z, 1).numpy(),
        "increment model": fallback(beta, from_bridged),
        "increment model (original recipe)": fallback(original, from_published),
        "days_missing_before_last": trailing.numpy(),
        "b1": beta[:, 0].numpy(), "b2": beta[:, 1].numpy(), "b3": beta[:, 2].numpy(),
    })


def summarise_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Sum, mean and maximum of each model's squared errors, one row per
    model of :data:`MODELS`, plus ``n_hospitals``."""
    rows = {}
    for model in MODELS:
        squared = (predictions[model] - predictions["observed"]) ** 2
        rows[model] = {"sse": squared.sum(), "mean": squared.mean(),
                       "max": squared.max(), "n_hospitals": squared.size}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def compare_models(data: pd.DataFrame, **fit) -> pd.DataFrame:
    """:func:`summarise_errors` of :func:`last_day_predictions` (``fit``:
    its ``n_steps``, ``lr``, ``plain_n_steps`` and ``progress``)."""
    return summarise_errors(last_day_predictions(data, **fit))


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def plot_hospital(data, hospital, *, beta=None, true_cases=None, ax=None):
    """One hospital's published series, its reports and the model's bridge.

    Introduced in the ICU notebook section "Looking at a few hospitals".

    Args:
        data: a hospital data set (:func:`load_hospitals`).
        hospital: the hospital id to show.
        beta: its fitted ``(b1, b2, b3)``, shape ``(3,)``; adds the model's
            one-day predictions and bridged values.
        true_cases: the true census ``(n_days,)`` (simulated data), dotted.
        ax: Axes to draw into; a new figure if ``None``.

    Returns:
        The figure.
    """
    rows = data[data["hospital"] == hospital].sort_values("day")
    if rows.empty:
        raise ValueError(f"hospital {hospital!r} is not in the data")
    days, y = rows["day"].to_numpy(), rows["cases"].to_numpy(float)
    reported = rows["reported"].to_numpy(bool)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    figure = ax.figure
    ax.step(days, y, where="post", color="0.6", label="published (LOCF)")
    ax.plot(days[reported], y[reported], "o", color="black", ms=3, label="reported")
    ax.plot(days[~reported], y[~reported], "x", color="tab:red", ms=4,
            label="not reported")
    if true_cases is not None:
        ax.plot(days, np.asarray(true_cases), ":", color="tab:green",
                label="true cases (hidden)")
    if beta is not None:
        def row(column):
            return torch.tensor(rows[column].to_numpy(float))[None]

        y_tilde, predicted = bridged_values(
            row("cases"), row("incidence"), torch.tensor(reported)[None],
            torch.as_tensor(beta, dtype=torch.float64).reshape(1, 3),
        )
        ax.plot(days, predicted[0], color=COLORS[0], lw=1, label="one day ahead")
        gap = ~reported & ~np.isnan(y_tilde[0].numpy())
        ax.plot(days[gap], y_tilde[0][gap], "s", color=COLORS[0], ms=4, mfc="none",
                label="bridged gap")
    ax.set_xlabel("day")
    ax.set_ylabel("current ICU cases")
    ax.set_title(f"hospital {hospital}")
    ax.legend(fontsize="small")
    return figure


def plot_coefficients(fitted, truth):
    """Fitted against true coefficients of the ICU model, one panel each.

    Introduced in the ICU notebook section "What did the fits recover?".

    Args:
        fitted: columns ``hospital``, ``b1``, ``b2``, ``b3``; NaN rows dropped.
        truth: ``HospitalTruth.coefficients`` of the same simulation.

    Returns:
        The figure (three panels).
    """
    both = fitted[["hospital", "b1", "b2", "b3"]].merge(
        truth[["hospital", "b1", "b2", "b3"]], on="hospital",
        suffixes=("_fitted", "_true"),
    ).dropna()
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    for ax, name in zip(axes, ("b1", "b2", "b3")):
        true, estimate = both[f"{name}_true"], both[f"{name}_fitted"]
        ax.scatter(true, estimate, s=4, alpha=0.4, label="hospital")
        low, high = true.min(), true.max()
        ax.plot([low, high], [low, high], "k--", lw=1, label="fitted = true")
        spread = high - low
        ax.set_ylim(low - 2 * spread - 0.05, high + 2 * spread + 0.05)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"fitted {name}")
        ax.legend(fontsize="small")
    figure.tight_layout()
    return figure
