"""ICU demand with missing hospital reports (bonus notebook).

Everything the bonus notebook ``bonus/ICU_missing_reports.ipynb`` imports:
a simulator of daily hospital reports with gaps, the increment model's loss
(written as a plain Python loop with branches, the point of the lesson), a
version of the same loss vectorised over hospitals, gradient-descent fitting,
the baselines of the original study and their comparison on each hospital's
held-out last day, and two plots.

The model (Hackenberg et al., The American Statistician 76(3), 2022) predicts
the daily increment of a hospital's current ICU cases ``y`` from the county's
new infections ``z``::

    y(t + 1) - y(t) = b1 + b2 * y~(t) + b3 * z(t)

where ``y~(t)`` is the report of day ``t`` if there was one, and otherwise the
model's own bridged value (the previous ``y~`` plus the predicted increment).

Vocabulary used throughout: ``y`` current ICU cases as published, ``z``
incidence, ``reported`` whether the hospital reported that day, ``beta`` the
coefficients ``(b1, b2, b3)``; arrays over many hospitals have shape
``(n_hospitals, n_days)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from helpers._checks import check_float, check_int, check_tensor
from helpers._threads import one_thread

COLUMNS = ("hospital", "day", "cases", "reported", "incidence")
"""Columns of a hospital data set, one row per hospital and day."""

AS_ORIGINAL = "increment model (from published value, as the original)"
"""The increment model predicting as the original evaluation did (see
:func:`last_day_predictions`)."""

MODELS = (
    "zero",
    "mean",
    "modified mean",
    "LOCF + regression",
    "increment model",
    AS_ORIGINAL,
)
"""The models compared on the held-out last day: the original's five in its
order, with ``"increment model"`` predicting from its bridged value, then the
increment model predicting from the published value, as the original did."""

PUBLISHED_PAIRING = "LOCF + regression, published pairing"
"""Optional extra model of :func:`last_day_predictions` (see there)."""

PUBLISHED_LAST_DAY_SSE = {
    "zero": 86.0,
    "mean": 89.24,
    "modified mean": 84.34,
    "LOCF + regression": 181.07,
    AS_ORIGINAL: 74.75,
}
"""Sum of squared errors on the last day, real registry data (1281 hospitals,
70 days), as published by Hackenberg et al. (2022). The original evaluation
predicted the increment model from the published value, so its result belongs
to :data:`AS_ORIGINAL`; there is none for the bridged start."""


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """Parameters of the generating process of :func:`simulate_hospitals`.

    Introduced in the notebook section "The data". Counts per day:
    admissions ``~ Poisson(b1 + b3 * z(t))`` and discharges
    ``~ Binomial(y(t), -b2)``, so the expected increment is exactly
    ``b1 + b2 * y(t) + b3 * z(t)``: the increment model is the true model
    and its coefficients can be recovered.

    Attributes:
        b1_mean: mean admissions per day unrelated to the county's incidence
            (``b1`` of a hospital is this times its size).
        b3_mean: mean admissions per day per new infection per 100,000
            inhabitants in the county (``b3`` is this times the size).
        discharge_range: daily discharge probability, uniform on this range
            (``b2`` is minus that probability, so its mean is -0.10).
        size_sd: standard deviation of the log of a hospital's size; sizes
            are log-normal with mean 1.
        hospitals_per_county: hospitals share a county's incidence curve.
        incidence_start: range of a county's incidence outside the wave
            (uniform).
        incidence_peak: range of the incidence at the wave's peak.
        wave_peak: range of the day of the peak, as a fraction of
            ``n_days``; with the default most waves turn inside the window.
        wave_width: range of the wave's standard deviation in days.
        pattern_probs: probabilities of the reporting patterns "complete",
            "sporadic", "gaps" and "late start".
        sporadic_missing: chance that a "sporadic" hospital misses a day.
        late_missing: the same after the first report of a late starter.
        max_gaps: a "gaps" hospital has 1 to ``max_gaps`` long gaps.
        longest_gap: gaps last 3 to ``max(3, int(longest_gap * n_days))``
            days (3 to 7 for the default and 70 days).

    Every field is checked when the settings are made: ``ValueError`` naming
    the field if it is out of range (probabilities outside [0, 1],
    ``pattern_probs`` not four non-negative numbers summing to 1, a range
    ``(low, high)`` with ``low > high``, counts below 1).
    """

    b1_mean: float = 0.25
    b3_mean: float = 0.1
    discharge_range: tuple[float, float] = (0.05, 0.15)
    size_sd: float = 0.6
    hospitals_per_county: int = 3
    incidence_start: tuple[float, float] = (1.0, 5.0)
    incidence_peak: tuple[float, float] = (20.0, 60.0)
    wave_peak: tuple[float, float] = (0.5, 0.9)
    wave_width: tuple[float, float] = (10.0, 20.0)
    pattern_probs: tuple[float, float, float, float] = (0.50, 0.25, 0.15, 0.10)
    sporadic_missing: float = 0.08
    late_missing: float = 0.03
    max_gaps: int = 3
    longest_gap: float = 0.1

    def __post_init__(self):
        for name in ("b1_mean", "b3_mean", "size_sd"):
            check_float(name, getattr(self, name), minimum=0.0)
        check_int("hospitals_per_county", self.hospitals_per_county, minimum=1)
        check_int("max_gaps", self.max_gaps, minimum=1)
        for name in ("sporadic_missing", "late_missing", "longest_gap"):
            _check_fraction(name, getattr(self, name))
        ranges = {  # name: (bound on low, low must exceed it, bound on high)
            "discharge_range": (0.0, True, 1.0),  # a probability, never 0
            "incidence_start": (0.0, False, None),
            "incidence_peak": (0.0, False, None),
            "wave_peak": (None, False, None),
            "wave_width": (0.0, True, None),  # a standard deviation
        }
        for name, bounds in ranges.items():
            pair = _check_range(name, getattr(self, name), *bounds)
            object.__setattr__(self, name, pair)  # frozen: store the checked tuple
        object.__setattr__(self, "pattern_probs", _check_probs(self.pattern_probs))


PATTERNS = ("complete", "sporadic", "gaps", "late start")
"""Reporting patterns of simulated hospitals (see :class:`SimulationSettings`)."""


def _check_fraction(name: str, value) -> float:
    """``value`` as a float in [0, 1], or ``ValueError`` naming ``name``."""
    number = check_float(name, value, minimum=0.0)
    if number > 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return number


def _numbers(value) -> list | None:
    """A list or tuple (or 1-d array) as a list; ``None`` for anything else."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else None


def _check_range(name: str, value, minimum, strict, maximum) -> tuple[float, float]:
    """``value`` as a pair ``(low, high)`` of floats with ``low <= high``.

    ``minimum`` (if not ``None``) bounds ``low`` from below, strictly if
    ``strict``; ``maximum`` (if not ``None``) bounds ``high`` from above.
    """
    pair = _numbers(value)
    if pair is None or len(pair) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    low = check_float(f"{name}[0]", pair[0], minimum=minimum, strict=strict)
    high = check_float(f"{name}[1]", pair[1])
    if low > high:
        raise ValueError(
            f"{name} must be a pair (low, high) with low <= high, got {value!r}"
        )
    if maximum is not None and high > maximum:
        raise ValueError(f"{name} must have high <= {maximum}, got {value!r}")
    return low, high


def _check_probs(value) -> tuple[float, ...]:
    """``pattern_probs``: one probability per pattern, summing to 1."""
    probs = _numbers(value)
    if probs is None or len(probs) != len(PATTERNS):
        raise ValueError(
            f"pattern_probs must be {len(PATTERNS)} probabilities, one for each of "
            f"{PATTERNS}, got {value!r}"
        )
    probs = tuple(
        check_float(f"pattern_probs[{k}]", p, minimum=0.0) for k, p in enumerate(probs)
    )
    if abs(sum(probs) - 1) > 1e-8:
        raise ValueError(
            f"pattern_probs must sum to 1, got {value!r} (sum {sum(probs):.6g})"
        )
    return probs


@dataclasses.dataclass(frozen=True)
class HospitalTruth:
    """What the simulator knows and the registry does not publish.

    Attributes:
        coefficients: one row per hospital with columns ``hospital``,
            ``county``, ``size``, ``b1``, ``b2``, ``b3``, ``pattern``,
            ``first_report`` (day) and ``n_missing`` (unreported days).
        cases: int64 array ``(n_hospitals, n_days)``, the true number of
            ICU cases every day, reported or not.
    """

    coefficients: pd.DataFrame
    cases: np.ndarray


@dataclasses.dataclass(frozen=True)
class HospitalArrays:
    """A hospital data set as arrays, one row per hospital.

    Attributes:
        hospitals: int64 array ``(n_hospitals,)``, the hospital ids.
        y: float64 tensor ``(n_hospitals, n_days)``, cases as published.
        z: float64 tensor ``(n_hospitals, n_days)``, incidence.
        reported: bool tensor ``(n_hospitals, n_days)``.
    """

    hospitals: np.ndarray
    y: torch.Tensor
    z: torch.Tensor
    reported: torch.Tensor

    def row(self, hospital: int) -> int:
        """Row index of a hospital id (``ValueError`` if it is absent)."""
        rows = np.flatnonzero(self.hospitals == hospital)
        if rows.size == 0:
            raise ValueError(
                f"hospital must be one of the ids in the data "
                f"({self.hospitals.min()}..{self.hospitals.max()}), got {hospital!r}"
            )
        return int(rows[0])


# --------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------


def simulate_hospitals(
    n_hospitals: int = 1000,
    n_days: int = 70,
    seed: int = 2022,
    *,
    settings: SimulationSettings = SimulationSettings(),
    return_truth: bool = False,
):
    """Simulate daily ICU reports of many hospitals, with missing reports.

    Introduced in the notebook section "The data". The generating process
    (parameters in :class:`SimulationSettings`):

    1. Counties (one per ``hospitals_per_county`` hospitals) have a smooth
       wave of new infections per 100,000 inhabitants per day: a bell curve
       from a base level in ``incidence_start`` up to a peak in
       ``incidence_peak`` and, for most counties, down again before the last
       day; rounded to 0.01.
    2. Each hospital has a size ``s`` (log-normal, mean 1) and coefficients
       ``b1 = b1_mean * s``, ``b3 = b3_mean * s`` and ``b2 = -d`` with the
       daily discharge probability ``d`` uniform on ``discharge_range``.
    3. The true census starts near its equilibrium and moves by admissions
       ``~ Poisson(b1 + b3 * z(t))`` minus discharges
       ``~ Binomial(y(t), d)``: non-negative integers whose expected daily
       increment is ``b1 + b2 * y(t) + b3 * z(t)``.
    4. Reporting pattern: "complete" (every day), "sporadic" (each day
       missed with probability ``sporadic_missing``), "gaps" (1 to
       ``max_gaps`` gaps, each starting on a random day after day 0 and
       lasting 3 to ``max(3, int(longest_gap * n_days))`` days, i.e. 3 to 7
       days with the defaults and 70 days; gaps may overlap or be cut short
       by the last day) or "late start"
       (first report between day ``n_days // 10`` and ``n_days // 2``, then
       days missed with probability ``late_missing``).
    5. Publication as in the registry: an unreported day repeats the last
       report (last observation carried forward); days before the first
       report are published as 0.

    Args:
        n_hospitals: number of hospitals, at least 1.
        n_days: number of days, at least 10.
        seed: seed of the random generator (``numpy.random.default_rng``).
        settings: parameters of the generating process.
        return_truth: also return the true coefficients and census.

    Returns:
        A tidy DataFrame with one row per hospital and day, columns
        ``hospital`` (int64, 0..n_hospitals-1), ``day`` (int64, 0..n_days-1),
        ``cases`` (int64, as published), ``reported`` (bool) and
        ``incidence`` (float64); with ``return_truth=True`` the pair
        ``(data, truth)`` with ``truth`` a :class:`HospitalTruth`.
    """
    check_int("n_hospitals", n_hospitals, minimum=1)
    check_int("n_days", n_days, minimum=10)
    check_int("seed", seed, minimum=0)
    if not isinstance(settings, SimulationSettings):
        raise ValueError(
            f"settings must be a SimulationSettings, got {type(settings).__name__}"
        )
    rng = np.random.default_rng(seed)
    n_counties = max(1, round(n_hospitals / settings.hospitals_per_county))
    county_incidence = _county_incidence(rng, n_counties, n_days, settings)
    county = rng.integers(n_counties, size=n_hospitals)
    z = county_incidence[county]  # (n_hospitals, n_days)

    size = rng.lognormal(-settings.size_sd**2 / 2, settings.size_sd, n_hospitals)
    b1 = settings.b1_mean * size
    b3 = settings.b3_mean * size
    discharge = rng.uniform(*settings.discharge_range, n_hospitals)
    true_cases = _census(rng, b1, discharge, b3, z)

    pattern = rng.choice(len(PATTERNS), size=n_hospitals, p=settings.pattern_probs)
    reported = _reporting(rng, pattern, n_days, settings)
    published = _publish(true_cases, reported)

    data = pd.DataFrame(
        {
            "hospital": np.repeat(np.arange(n_hospitals), n_days).astype(np.int64),
            "day": np.tile(np.arange(n_days), n_hospitals).astype(np.int64),
            "cases": published.ravel().astype(np.int64),
            "reported": reported.ravel().astype(bool),
            "incidence": z.ravel().astype(np.float64),
        }
    )
    if not return_truth:
        return data
    coefficients = pd.DataFrame(
        {
            "hospital": np.arange(n_hospitals, dtype=np.int64),
            "county": county.astype(np.int64),
            "size": size,
            "b1": b1,
            "b2": -discharge,
            "b3": b3,
            "pattern": [PATTERNS[k] for k in pattern],
            "first_report": reported.argmax(axis=1).astype(np.int64),
            "n_missing": (~reported).sum(axis=1).astype(np.int64),
        }
    )
    return data, HospitalTruth(coefficients=coefficients, cases=true_cases)


def _county_incidence(rng, n_counties, n_days, settings) -> np.ndarray:
    """Bell-shaped waves of incidence, ``(n_counties, n_days)``, to 0.01."""
    start = rng.uniform(*settings.incidence_start, (n_counties, 1))
    peak = rng.uniform(*settings.incidence_peak, (n_counties, 1))
    low, high = settings.wave_peak
    peak_day = rng.uniform(low * n_days, high * n_days, (n_counties, 1))
    width = rng.uniform(*settings.wave_width, (n_counties, 1))
    wave = np.exp(-0.5 * ((np.arange(n_days) - peak_day) / width) ** 2)
    return np.round(start + (peak - start) * wave, 2)


def _census(rng, b1, discharge, b3, z) -> np.ndarray:
    """True ICU cases, int64 ``(n_hospitals, n_days)``, by admissions - discharges."""
    n_hospitals, n_days = z.shape
    cases = np.zeros((n_hospitals, n_days), dtype=np.int64)
    equilibrium = (b1 + b3 * z[:, 0]) / discharge
    cases[:, 0] = rng.poisson(equilibrium)
    for t in range(n_days - 1):
        admissions = rng.poisson(b1 + b3 * z[:, t])
        discharges = rng.binomial(cases[:, t], discharge)
        cases[:, t + 1] = cases[:, t] + admissions - discharges
    return cases


def _reporting(rng, pattern, n_days, settings) -> np.ndarray:
    """Which days each hospital reports, bool ``(n_hospitals, n_days)``."""
    n_hospitals = pattern.size
    reported = np.ones((n_hospitals, n_days), dtype=bool)
    sporadic = pattern == PATTERNS.index("sporadic")
    misses = rng.random((n_hospitals, n_days)) < settings.sporadic_missing
    reported[sporadic] = ~misses[sporadic]

    longest_gap = max(3, int(settings.longest_gap * n_days))
    for row in np.flatnonzero(pattern == PATTERNS.index("gaps")):
        for _ in range(rng.integers(1, settings.max_gaps + 1)):
            start = rng.integers(1, n_days)
            length = rng.integers(3, longest_gap + 1)
            reported[row, start : start + length] = False

    late = np.flatnonzero(pattern == PATTERNS.index("late start"))
    first = rng.integers(n_days // 10, n_days // 2 + 1, size=late.size)
    late_misses = rng.random((late.size, n_days)) < settings.late_missing
    for row, first_day, missed in zip(late, first, late_misses):
        reported[row] = ~missed
        reported[row, :first_day] = False
        reported[row, first_day] = True

    nothing = ~reported.any(axis=1)
    reported[nothing, 0] = True  # every hospital reports at least once
    return reported


def _publish(true_cases, reported) -> np.ndarray:
    """Registry view: carry the last report forward, 0 before the first one."""
    published = np.where(reported, true_cases, 0)
    for t in range(1, true_cases.shape[1]):
        carried = published[:, t - 1]
        published[:, t] = np.where(reported[:, t], true_cases[:, t], carried)
    return published


# --------------------------------------------------------------------------
# Data in and out
# --------------------------------------------------------------------------


def load_hospitals(path) -> pd.DataFrame:
    """Read a hospital data set saved as CSV and check it.

    Introduced in the notebook section "The data".

    Args:
        path: CSV file with the columns of :data:`COLUMNS`, e.g.
            ``helpers.data_path("icu_hospitals.csv")``.

    Returns:
        The checked DataFrame (dtypes as :func:`simulate_hospitals` returns).
    """
    data = pd.read_csv(path)
    to_arrays(data)  # raises a clear ValueError if anything is off
    return data.astype(
        {"hospital": "int64", "day": "int64", "cases": "int64",
         "reported": "bool", "incidence": "float64"}
    )


def to_arrays(data: pd.DataFrame) -> HospitalArrays:
    """Turn a tidy hospital data set into arrays ``(n_hospitals, n_days)``.

    Introduced in the notebook section "The data".

    Args:
        data: DataFrame with the columns of :data:`COLUMNS`; every hospital
            must have every day ``0..n_days-1`` exactly once.

    Returns:
        A :class:`HospitalArrays` with rows sorted by hospital id.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(
            f"data must be a pandas DataFrame, got {type(data).__name__}"
        )
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"data must have the columns {COLUMNS}, missing {missing}")
    if data.empty:
        raise ValueError("data must have at least one row, got an empty DataFrame")
    if not pd.api.types.is_bool_dtype(data["reported"]):
        raise ValueError(
            f"data['reported'] must be boolean (True/False), "
            f"got dtype {data['reported'].dtype}"
        )
    hospitals = np.sort(data["hospital"].unique())
    n_days = int(data["day"].max()) + 1
    rows = np.searchsorted(hospitals, data["hospital"].to_numpy())
    days = data["day"].to_numpy()
    if (
        len(data) != hospitals.size * n_days
        or days.min() < 0
        or data.duplicated(["hospital", "day"]).any()
    ):
        raise ValueError(
            "data must hold every day 0..n_days-1 exactly once for every "
            f"hospital; got {len(data)} rows for {hospitals.size} hospitals "
            f"and days {days.min()}..{days.max()}"
        )
    grids = {}
    for column in ("cases", "incidence", "reported"):
        grid = np.empty((hospitals.size, n_days), dtype=data[column].dtype)
        grid[rows, days] = data[column].to_numpy()
        grids[column] = grid
    y = check_tensor("data['cases']", grids["cases"].astype(np.float64), (None, None))
    z = check_tensor(
        "data['incidence']", grids["incidence"].astype(np.float64), (None, None)
    )
    if (y < 0).any():
        raise ValueError("data['cases'] must be non-negative counts, found a negative")
    reported = torch.as_tensor(grids["reported"])
    silent = np.flatnonzero(~grids["reported"].any(axis=1))
    if silent.size:
        raise ValueError(
            f"every hospital needs at least one reported day; hospitals "
            f"{hospitals[silent][:5].tolist()} never report"
        )
    return HospitalArrays(hospitals=hospitals, y=y, z=z, reported=reported)


# --------------------------------------------------------------------------
# The loss: a loop with branches
# --------------------------------------------------------------------------


def increment_loss(y, z, reported, beta: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the increment model on one hospital's series.

    Introduced in the notebook section "The loss is a program". Walks
    through the days: until the first report there is nothing to compare,
    so those days are skipped. From then on, each day ``t`` the model
    predicts the increment ``b1 + b2 * y~ + b3 * z[t-1]`` from yesterday's
    value ``y~``. If day ``t`` was reported, the squared difference between
    the reported and the predicted increment is added and ``y~`` is reset to
    the report; if not, the prediction is carried forward as the new ``y~``.
    The sum is divided by the number of compared days: every reported day
    after the first, as in the original code (``loss.jl``). The workshop's
    description says "the number of reported days", but the first report has
    nothing before it to compare with, so it adds no error and is not
    counted. With a single reported day nothing is compared and the loss is
    0 with zero gradient.

    Written as a readable loop on purpose: autograd differentiates the
    program as it runs. See :func:`increment_loss_batched` for the fast
    version over many hospitals.

    Args:
        y: cases as published, shape ``(n_days,)`` (tensor, array or list).
        z: incidence, shape ``(n_days,)``.
        reported: booleans (or 0/1), shape ``(n_days,)``, at least one True.
        beta: coefficients ``(b1, b2, b3)``, float tensor ``(3,)``; may
            require gradients.

    Returns:
        A scalar tensor of ``beta``'s dtype.
    """
    y, z, reported, beta = _check_series(y, z, reported, beta)
    b1, b2, b3 = beta[0], beta[1], beta[2]
    squared_error = 0.0 * beta.sum()  # zero, linked to beta: backward() always works
    n_compared = 0
    y_tilde = None  # no report seen yet
    for t in range(len(y)):
        if y_tilde is None:
            if reported[t]:
                y_tilde = y[t]  # the first report: start here
            continue
        increment = b1 + b2 * y_tilde + b3 * z[t - 1]
        if reported[t]:
            squared_error = squared_error + (y[t] - y_tilde - increment) ** 2
            n_compared += 1
            y_tilde = y[t]  # reset to the report
        else:
            y_tilde = y_tilde + increment  # bridge the gap with the prediction
    return squared_error / max(n_compared, 1)


def _check_series(y, z, reported, beta):
    """Validate one hospital's inputs; return lists of floats/bools and beta."""
    y = _check_numbers("y", y, (None,))
    z = _check_numbers("z", z, (None,))
    reported = _check_reported(reported, (None,))
    if not (len(y) == len(z) == len(reported)):
        raise ValueError(
            "y, z and reported must have the same length, got "
            f"{len(y)}, {len(z)} and {len(reported)}"
        )
    if not reported.any():
        raise ValueError("reported must contain at least one reported day, got none")
    beta = _check_beta(beta, (3,))
    return y.tolist(), z.tolist(), reported.tolist(), beta


def _short(value) -> str:
    """``repr(value)``, cut to at most 60 characters for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_tensor(name: str, value, allowed: str) -> torch.Tensor:
    """``torch.as_tensor(value)`` if it holds real numbers or booleans.

    Anything torch cannot turn into such a tensor (strings, ``None``, ragged
    lists, complex numbers) raises ``ValueError`` naming ``name`` instead of
    a torch or numpy error.
    """
    try:
        array = value
        if not torch.is_tensor(value):
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"dtype {array.dtype}")
        tensor = torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{name} must be {allowed}, got {_short(value)}") from error
    if tensor.is_complex():
        raise ValueError(f"{name} must be {allowed}, got {_short(value)}")
    return tensor


def _check_numbers(name: str, value, shape) -> torch.Tensor:
    """:func:`check_tensor` after making sure ``value`` holds numbers."""
    tensor = _as_tensor(name, value, "a tensor, array or list of numbers")
    return check_tensor(name, tensor, shape)


def _check_reported(reported, shape) -> torch.Tensor:
    """Return ``reported`` as a bool tensor; only True/False or 0/1 allowed."""
    flags = _as_tensor(
        "reported", reported, "a tensor, array or list of booleans or 0/1"
    )
    if flags.dtype != torch.bool:
        if flags.is_floating_point() and not torch.isfinite(flags).all():
            raise ValueError("reported contains NaN or infinite values")
        if not ((flags == 0) | (flags == 1)).all():
            raise ValueError(
                "reported must hold booleans or 0/1, got other values: "
                f"{torch.unique(flags)[:5].tolist()}"
            )
        flags = flags == 1
    if flags.dim() != len(shape):
        raise ValueError(
            f"reported must have {len(shape)} dimension(s), got shape "
            f"{tuple(flags.shape)}"
        )
    return flags


def _check_beta(beta, shape) -> torch.Tensor:
    """``beta`` as a floating tensor of ``shape`` (NaN allowed: fits diverge)."""
    if not torch.is_tensor(beta):
        beta = _as_tensor(
            "beta", beta, f"a tensor, array or list of numbers, shape {shape}"
        )
    if beta.dtype == torch.bool or beta.is_complex():
        raise ValueError(
            f"beta must be real numbers (b1, b2, b3), got dtype {beta.dtype}"
        )
    if not beta.is_floating_point():
        beta = beta.double()
    if tuple(beta.shape) != shape:
        raise ValueError(
            f"beta must have shape {shape} (b1, b2, b3), got {tuple(beta.shape)}"
        )
    return beta


# --------------------------------------------------------------------------
# The same loss, vectorised over hospitals
# --------------------------------------------------------------------------


def increment_loss_batched(y, z, reported, beta: torch.Tensor) -> torch.Tensor:
    """:func:`increment_loss` for many hospitals at once.

    Introduced in the notebook section "One loss for all hospitals at once". The
    same loop over days, but every step handles all hospitals together; the
    branches become ``torch.where`` selections.

    Args:
        y: cases as published, ``(n_hospitals, n_days)``.
        z: incidence, ``(n_hospitals, n_days)``.
        reported: bool (or 0/1), ``(n_hospitals, n_days)``; every hospital
            needs at least one reported day.
        beta: coefficients, float tensor ``(n_hospitals, 3)``.

    Returns:
        Tensor ``(n_hospitals,)``: each hospital's loss, equal to
        :func:`increment_loss` on its row.
    """
    y, z, reported, beta = _check_batch(y, z, reported, beta)
    return _Unroller(y, z, reported).losses(beta)


def bridged_values(y, z, reported, beta: torch.Tensor):
    """The model's view of every day: bridged values and one-day predictions.

    Introduced in the notebook section "Looking at a few hospitals".

    Args:
        y, z, reported, beta: as for :func:`increment_loss_batched`.

    Returns:
        ``(y_tilde, predicted)``, two float tensors ``(n_hospitals, n_days)``:
        ``y_tilde`` is the report on reported days and the bridged value on
        the others; ``predicted`` is the value the model predicted for that
        day from the day before. Both are NaN before the first report
        (``predicted`` also on the first reported day).
    """
    y, z, reported, beta = _check_batch(y, z, reported, beta)
    with torch.no_grad():
        _, y_tilde, predicted = _Unroller(y, z, reported)(beta, paths=True)
    return y_tilde, predicted


def _check_batch(y, z, reported, beta):
    """Validate inputs for many hospitals; return tensors of beta's dtype."""
    y = _check_numbers("y", y, (None, None))
    z = _check_numbers("z", z, (None, None))
    reported = _check_reported(reported, (None, None))
    if not (y.shape == z.shape == reported.shape):
        raise ValueError(
            "y, z and reported must have the same shape (n_hospitals, n_days), "
            f"got {tuple(y.shape)}, {tuple(z.shape)} and {tuple(reported.shape)}"
        )
    silent = torch.nonzero(~reported.any(dim=1)).flatten()
    if silent.numel():
        raise ValueError(
            "reported must contain at least one reported day for every hospital; "
            f"rows {silent[:5].tolist()} have none"
        )
    beta = _check_beta(beta, (y.shape[0], 3))
    return y.to(beta.dtype), z.to(beta.dtype), reported, beta


class _Unroller:
    """The increment model run over all days for all hospitals.

    What depends only on the data (who has started reporting, which days are
    compared) is worked out once here, so each day of the loop in
    :meth:`__call__` costs a handful of tensor operations. Before its first
    report a hospital's ``y~`` is held at 0 and none of its days count.
    """

    def __init__(self, y, z, reported):
        self.y, self.z = y, z
        self.cases, self.flags = y.unbind(dim=1), reported.unbind(dim=1)
        self.started = reported.cumsum(dim=1) > 0  # (H, T): reported by day t
        self.before = self.started[:, :-1]  # (H, T-1): started by day t-1
        self.compared = self.before & reported[:, 1:]
        self.keep = self.before.to(y.dtype).unbind(dim=1)
        self.n_compared = self.compared.sum(dim=1).to(y.dtype)

    def __call__(self, beta, paths=False):
        """Sum of squared errors ``(H,)`` for coefficients ``(H, 3)``.

        With ``paths=True`` also returns the bridged values ``(H, T)`` and
        the one-day predictions ``(H, T)``, NaN where undefined.
        """
        b1, b2, b3 = beta.unbind(dim=1)
        drive = (b1[:, None] + b3[:, None] * self.z[:, :-1]).unbind(dim=1)
        growth = 1.0 + b2
        y_tilde = torch.where(self.flags[0], self.cases[0], 0.0)
        bridged, predictions = [y_tilde], []
        for t in range(1, len(self.cases)):
            prediction = growth * y_tilde + drive[t - 1]
            y_tilde = torch.where(
                self.flags[t], self.cases[t], prediction * self.keep[t - 1]
            )
            predictions.append(prediction)
            bridged.append(y_tilde)
        predicted = torch.stack(predictions, dim=1)  # (H, T-1)
        error = torch.where(self.compared, self.y[:, 1:] - predicted, 0.0)
        squared_error = (error**2).sum(dim=1)
        if not paths:
            return squared_error
        nan = torch.tensor(float("nan"), dtype=beta.dtype)
        bridged = torch.where(self.started, torch.stack(bridged, dim=1), nan)
        predicted = torch.where(self.before, predicted, nan)
        first = torch.full_like(predicted[:, :1], nan)
        return squared_error, bridged, torch.cat([first, predicted], dim=1)

    def losses(self, beta):
        """Each hospital's loss ``(H,)``, as :func:`increment_loss`."""
        return self(beta) / self.n_compared.clamp(min=1)


# --------------------------------------------------------------------------
# Fitting by gradient descent
# --------------------------------------------------------------------------


def fit_increment_model(
    y,
    z,
    reported,
    *,
    steps: int = 300,
    lr: float = 0.05,
    vectorised: bool = True,
) -> torch.Tensor:
    """Fit ``(b1, b2, b3)`` of every hospital by gradient descent on the loss.

    Introduced in the notebook section "Gradient descent by hand, and why
    scaling matters".

    Optimiser: Adam, because its steps are elementwise (each hospital's
    coefficients move as if fitted alone) and of about ``lr`` whatever the
    gradient's scale; the learning rate decays exponentially to ``lr / 100``
    so that the last steps settle instead of hovering.

    Scaling: per hospital the model is fitted as
    ``dy / s_y = c + b2 * (y~ - mean_y) / s_y + g * (z - mean_z) / s_z``
    (centred and scaled cases and incidence, ``s`` a standard deviation), so
    all three parameters are of order one and gradient descent needs few
    steps. They start at 0 (the zero-increment model). ``(b1, b2, b3)`` are a
    linear function of ``(c, b2, g)`` and the loss is evaluated on them, so
    autograd differentiates through the rescaling too. With the defaults the
    fits reach the least-squares solution on complete series (relative loss
    gap below 1e-6).

    Args:
        y: cases as published, ``(n_hospitals, n_days)``.
        z: incidence, ``(n_hospitals, n_days)``.
        reported: bool, ``(n_hospitals, n_days)``.
        steps: number of Adam steps, at least 1.
        lr: initial learning rate, > 0.
        vectorised: ``True`` fits all hospitals together with
            :func:`increment_loss_batched`; ``False`` loops over hospitals
            with :func:`increment_loss` (same result, much slower; kept for
            the benchmark and the tests).

    Returns:
        float64 tensor ``(n_hospitals, 3)`` of fitted ``(b1, b2, b3)``; NaN
        for hospitals with fewer than two reported days (nothing to fit) or
        whose fit diverged. See :func:`needs_fallback`.
    """
    check_int("steps", steps, minimum=1)
    check_float("lr", lr, minimum=0.0, strict=True)
    n_hospitals = _check_reported(reported, (None, None)).shape[0]
    zeros = torch.zeros(n_hospitals, 3, dtype=torch.float64)
    y, z, reported, _ = _check_batch(y, z, reported, zeros)
    to_beta, loss_scale = _rescaling(y, z, reported)
    with one_thread():
        theta = _fit_scaled(y, z, reported, to_beta, loss_scale, steps, lr, vectorised)
    beta = _beta(to_beta, theta).detach()
    too_few = reported.sum(dim=1) < 2
    beta[too_few] = float("nan")
    return beta


def _fit_scaled(y, z, reported, to_beta, loss_scale, steps, lr, vectorised):
    """Adam on the rescaled parameters ``theta`` ``(n_hospitals, 3)``."""
    zeros = torch.zeros_like(to_beta[:, 0])
    if vectorised:
        theta = zeros.clone().requires_grad_()
        unroller = _Unroller(y, z, reported)  # checked once, not every step
        _adam(
            [theta],
            lambda: (unroller.losses(_beta(to_beta, theta)) / loss_scale).sum(),
            steps,
            lr,
        )
    else:
        fitted = []
        for h in range(y.shape[0]):
            theta_h = zeros[h].clone().requires_grad_()
            _adam(
                [theta_h],
                lambda h=h, theta_h=theta_h: increment_loss(
                    y[h], z[h], reported[h], to_beta[h] @ theta_h
                )
                / loss_scale[h],
                steps,
                lr,
            )
            fitted.append(theta_h)
        theta = torch.stack(fitted)
    return theta.detach()


def _rescaling(y, z, reported):
    """Per-hospital linear map from scaled parameters to ``beta`` and loss scale.

    With reported cases' mean ``m_y`` and standard deviation ``s_y`` (at least
    1), incidence mean ``m_z`` and standard deviation ``s_z`` (1 if constant):
    ``b2 = b2``, ``b3 = g * s_y / s_z`` and
    ``b1 = c * s_y - b2 * m_y - b3 * m_z``.

    Returns:
        ``to_beta`` ``(n_hospitals, 3, 3)`` with ``beta = to_beta @ theta``,
        and ``loss_scale`` ``(n_hospitals,)`` = ``s_y ** 2``.
    """
    weights = reported.to(y.dtype)
    n = weights.sum(dim=1)
    mean_y = (weights * y).sum(dim=1) / n
    spread_y = ((weights * (y - mean_y[:, None]) ** 2).sum(dim=1) / n).sqrt()
    scale_y = spread_y.clamp(min=1.0)
    mean_z = z.mean(dim=1)
    spread_z = z.std(dim=1, correction=0)
    scale_z = torch.where(spread_z > 0, spread_z, torch.ones_like(spread_z))
    to_beta = torch.zeros(y.shape[0], 3, 3, dtype=y.dtype)
    to_beta[:, 0, 0] = scale_y
    to_beta[:, 0, 1] = -mean_y
    to_beta[:, 0, 2] = -mean_z * scale_y / scale_z
    to_beta[:, 1, 1] = 1.0
    to_beta[:, 2, 2] = scale_y / scale_z
    return to_beta, scale_y**2


def _beta(to_beta, theta):
    """``beta = to_beta @ theta`` for every hospital, ``(n_hospitals, 3)``."""
    return (to_beta @ theta.unsqueeze(-1)).squeeze(-1)


def _adam(parameters, loss_fn, steps, lr):
    """Minimise ``loss_fn()`` with Adam, learning rate decaying to ``lr / 100``."""
    optimiser = torch.optim.Adam(parameters, lr=lr)
    decay = torch.optim.lr_scheduler.ExponentialLR(
        optimiser, gamma=0.01 ** (1.0 / steps)
    )
    for _ in range(steps):
        optimiser.zero_grad()
        loss_fn().backward()
        optimiser.step()
        decay.step()


def needs_fallback(beta, max_abs: float = 10.0) -> torch.Tensor:
    """The original's rule: distrust a fit that is NaN or has ``|b| > max_abs``.

    Introduced in the notebook section "Gradient descent by hand, and why
    scaling matters". Such hospitals are predicted with the mean model
    instead (see :func:`last_day_predictions`).

    Args:
        beta: fitted coefficients, ``(n_hospitals, 3)``.
        max_abs: largest believable absolute coefficient.

    Returns:
        bool tensor ``(n_hospitals,)``.
    """
    shape = tuple(torch.as_tensor(beta).shape)
    if len(shape) != 2:
        raise ValueError(f"beta must have shape (n_hospitals, 3), got {shape}")
    beta = _check_beta(beta, (shape[0], 3))
    check_float("max_abs", max_abs, minimum=0.0, strict=True)
    return torch.isnan(beta).any(dim=1) | (beta.abs() > max_abs).any(dim=1)


# --------------------------------------------------------------------------
# Comparing with the baselines on the held-out last day
# --------------------------------------------------------------------------


def last_day_predictions(
    data: pd.DataFrame,
    *,
    steps: int = 300,
    lr: float = 0.05,
    published_pairing: bool = False,
) -> pd.DataFrame:
    """Predict each hospital's last increment with every model.

    Introduced in the notebook section "Comparing with the baselines". All
    models see days ``0..n_days-2``; the last day is held out and scored
    only where it was reported. The target is the published increment
    ``y[-1] - y[-2]``. Baselines use the published (LOCF-filled) series, as
    the original did: zero (no change); mean (mean published increment);
    modified mean (0 if the last published increment was 0, else the mean);
    LOCF + regression (least squares of ``y(t+1) - y(t)`` on ``1, y(t),
    z(t)``, the same model as the increment model but on the filled series).
    The increment model is fitted with :func:`fit_increment_model` and
    predicts the increment ``b1 + b2 * y~ + b3 * z`` of day ``n_days-2`` in
    two ways: ``"increment model"`` starts from its bridged value ``y~``
    (the report if day ``n_days-2`` was reported, else the model's bridge
    across the gap) and adds the gap's bridged change, so it predicts
    ``y~ + increment - y[n_days-2]``; :data:`AS_ORIGINAL`, as the original
    evaluation did, uses the published (carried-forward) ``y[n_days-2]`` in
    place of ``y~``. The two agree wherever day ``n_days-2`` was reported.
    Where :func:`needs_fallback` says so, both use the mean model's
    prediction.

    Args:
        data: a hospital data set (see :func:`to_arrays`), at least 4 days.
        steps: Adam steps of the increment-model fit.
        lr: its initial learning rate.
        published_pairing: also add the column :data:`PUBLISHED_PAIRING`: the
            regression as the original analysis code set it up, with each
            increment ``y(t+1) - y(t)`` regressed on ``y(t+1)`` and ``z(t+1)``
            (the values at its end) but the prediction made from the values
            at the start of the held-out increment.

    Returns:
        One row per scored hospital: ``hospital``, ``observed`` (the held-out
        increment), one column of predicted increments per name in
        :data:`MODELS` (and :data:`PUBLISHED_PAIRING` if asked), ``fallback``
        (bool: both increment-model columns used the mean model),
        ``gap_before_last`` (bool: day ``n_days-2`` was not reported),
        ``days_missing_before_last`` (int: how many days up to ``n_days-2``
        went unreported since the last report, 0 if day ``n_days-2`` was
        reported) and the fitted ``b1``, ``b2``, ``b3``.
    """
    arrays = to_arrays(data)
    y, z, reported = arrays.y, arrays.z, arrays.reported
    if y.shape[1] < 4:
        raise ValueError(f"data must cover at least 4 days, got {y.shape[1]}")
    scored = reported[:, -1] & reported[:, :-1].any(dim=1)
    y, z, reported = y[scored], z[scored], reported[scored]
    train_y, train_z, train_r = y[:, :-1], z[:, :-1], reported[:, :-1]
    increments = train_y.diff(dim=1)  # (H, T-2)
    mean = increments.mean(dim=1)
    beta = fit_increment_model(train_y, train_z, train_r, steps=steps, lr=lr)
    fallback = needs_fallback(beta)
    y_tilde, _ = bridged_values(train_y, train_z, train_r, beta.nan_to_num())
    bridged, published = y_tilde[:, -1], train_y[:, -1]
    # (bridged - published) is exactly 0 where day n_days-2 was reported
    from_bridged = _increment(beta, bridged, train_z[:, -1]) + (bridged - published)
    from_published = _increment(beta, published, train_z[:, -1])
    columns = {
        "hospital": arrays.hospitals[scored.numpy()],
        "observed": (y[:, -1] - y[:, -2]).numpy(),
        "zero": np.zeros(int(scored.sum())),
        "mean": mean.numpy(),
        "modified mean": torch.where(increments[:, -1] == 0, 0.0, mean).numpy(),
        "LOCF + regression": _locf_regression(train_y, train_z, shift=0).numpy(),
        "increment model": torch.where(fallback, mean, from_bridged).numpy(),
        AS_ORIGINAL: torch.where(fallback, mean, from_published).numpy(),
    }
    if published_pairing:
        columns[PUBLISHED_PAIRING] = _locf_regression(train_y, train_z, shift=1)
    columns.update(
        {
            "fallback": fallback.numpy(),
            "gap_before_last": (~train_r[:, -1]).numpy(),
            # trailing unreported days = position of the last report from the end
            "days_missing_before_last": train_r.flip(dims=[1])
            .to(torch.int64)
            .argmax(dim=1)
            .numpy(),
            "b1": beta[:, 0].numpy(),
            "b2": beta[:, 1].numpy(),
            "b3": beta[:, 2].numpy(),
        }
    )
    return pd.DataFrame(columns)


def _increment(beta, y, z) -> torch.Tensor:
    """The model's increment ``b1 + b2 * y + b3 * z`` per hospital."""
    return beta[:, 0] + beta[:, 1] * y + beta[:, 2] * z


def _locf_regression(y, z, shift: int) -> torch.Tensor:
    """Least-squares increment regression on the filled series; next increment.

    Regresses ``y(t+1) - y(t)`` on ``(1, y(t + shift), z(t + shift))`` per
    hospital (minimum-norm solution where the design is rank deficient) and
    predicts the increment after the last day from ``(1, y, z)`` of the last
    day. ``shift=0`` is the consistent set-up; ``shift=1`` is the published
    code's.
    """
    design = torch.stack([torch.ones_like(y), y, z], dim=2)  # (H, T, 3)
    n_pairs = y.shape[1] - 1
    fitted_on = design[:, shift : shift + n_pairs]  # (H, T-1, 3)
    coefficients = torch.linalg.pinv(fitted_on) @ y.diff(dim=1).unsqueeze(-1)
    return (design[:, -1:] @ coefficients).flatten()


def summarise_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Squared errors of each model: sum, mean and maximum over hospitals.

    Introduced in the notebook section "Comparing with the baselines".

    Args:
        predictions: output of :func:`last_day_predictions`.

    Returns:
        One row per model (index in :data:`MODELS` order, then
        :data:`PUBLISHED_PAIRING` if present) with columns
        ``sse``, ``mean`` and ``max`` of the squared errors and
        ``n_hospitals`` (hospitals scored).
    """
    missing = [c for c in ("observed", *MODELS) if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions must come from last_day_predictions; missing {missing}"
        )
    if predictions.empty:
        raise ValueError("predictions must have at least one scored hospital, got 0")
    rows = {}
    for model in [*MODELS, PUBLISHED_PAIRING]:
        if model not in predictions.columns:
            continue
        squared = (predictions[model] - predictions["observed"]) ** 2
        rows[model] = {
            "sse": float(squared.sum()),
            "mean": float(squared.mean()),
            "max": float(squared.max()),
            "n_hospitals": int(squared.size),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


def compare_models(
    data: pd.DataFrame,
    *,
    steps: int = 300,
    lr: float = 0.05,
    published_pairing: bool = False,
) -> pd.DataFrame:
    """Score all models on each hospital's held-out last day.

    Introduced in the notebook section "Comparing with the baselines":
    :func:`last_day_predictions` followed by :func:`summarise_errors`.

    Args:
        data: a hospital data set (see :func:`to_arrays`).
        steps: Adam steps of the increment-model fit.
        lr: its initial learning rate.
        published_pairing: add the regression as the published code set it
            up (see :func:`last_day_predictions`).

    Returns:
        One row per name in :data:`MODELS` (and :data:`PUBLISHED_PAIRING`)
        with columns ``sse``, ``mean``, ``max`` (of the squared errors) and
        ``n_hospitals``.
    """
    predictions = last_day_predictions(
        data, steps=steps, lr=lr, published_pairing=published_pairing
    )
    return summarise_errors(predictions)


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def plot_hospital(
    data: pd.DataFrame,
    hospital: int,
    *,
    beta=None,
    true_cases: Sequence[float] | None = None,
    ax=None,
):
    """One hospital's published series, its reports and the model's bridge.

    Introduced in the notebook section "Looking at a few hospitals".

    Args:
        data: a hospital data set.
        hospital: the hospital id to show.
        beta: its fitted ``(b1, b2, b3)``, shape ``(3,)``; adds the model's
            bridged values and one-day predictions.
        true_cases: the true daily cases ``(n_days,)`` (simulated data
            only), drawn dotted.
        ax: a matplotlib Axes to draw in; a new figure if ``None``.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    arrays = to_arrays(data)
    row = arrays.row(hospital)
    y, reported = arrays.y[row].numpy(), arrays.reported[row].numpy()
    days = np.arange(y.size)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
    fig = ax.figure
    ax.step(days, y, where="post", color="0.6", label="published (LOCF-filled)")
    ax.plot(days[reported], y[reported], "o", color="black", ms=3, label="reported")
    ax.plot(days[~reported], y[~reported], "x", color="tab:red", ms=4,
            label="not reported")
    if true_cases is not None:
        ax.plot(days, np.asarray(true_cases), ":", color="tab:green",
                label="true cases (hidden)")
    if beta is not None:
        beta = _check_beta(beta, (3,))
        y_tilde, predicted = bridged_values(
            arrays.y[row : row + 1],
            arrays.z[row : row + 1],
            arrays.reported[row : row + 1],
            beta.detach().double()[None],
        )
        y_tilde, predicted = y_tilde[0].numpy(), predicted[0].numpy()
        ax.plot(days, predicted, color="tab:blue", lw=1,
                label="model: one day ahead")
        gap = ~reported & ~np.isnan(y_tilde)
        ax.plot(days[gap], y_tilde[gap], "s", color="tab:blue", ms=4,
                mfc="none", label="model: bridged gap")
    ax.set_xlabel("day")
    ax.set_ylabel("current ICU cases")
    ax.set_title(f"hospital {hospital}")
    ax.legend(fontsize="small")
    return fig


def plot_coefficients(fitted: pd.DataFrame, truth: pd.DataFrame):
    """Fitted against true coefficients, one panel per coefficient.

    Introduced in the notebook section "What did the fits recover?".

    Args:
        fitted: columns ``hospital``, ``b1``, ``b2``, ``b3`` (e.g. from
            :func:`last_day_predictions`); rows with NaN are left out.
        truth: ``HospitalTruth.coefficients`` of the same simulation.

    Returns:
        The matplotlib Figure (three panels).
    """
    import matplotlib.pyplot as plt

    both = fitted[["hospital", "b1", "b2", "b3"]].merge(
        truth[["hospital", "b1", "b2", "b3"]], on="hospital",
        suffixes=("_fitted", "_true"),
    ).dropna()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    for ax, name in zip(axes, ("b1", "b2", "b3")):
        true, estimate = both[f"{name}_true"], both[f"{name}_fitted"]
        ax.scatter(true, estimate, s=4, alpha=0.4, label="hospital")
        low, high = true.min(), true.max()
        ax.plot([low, high], [low, high], "k--", lw=1, label="fitted = true")
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"fitted {name}")
        spread = high - low
        ax.set_ylim(low - 2 * spread - 0.05, high + 2 * spread + 0.05)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
