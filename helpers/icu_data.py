"""ICU reports with gaps: simulate and load them (bonus notebook, "The data").

The registry of Hackenberg et al. (The American Statistician 76(3), 2022):
1281 German hospitals reported their current COVID-19 intensive-care
patients daily from 16 April to 24 June 2020 (70 days), not always every
day. The simulator below reproduces the mechanisms of those data that the
paper and the authors' published data support, each behind one setting that
switches it off. Arrays over many hospitals have shape
``(n_hospitals, n_days)``: ``y`` cases as published, ``z`` the county's new
infections per 100,000 per day, ``reported`` whether the hospital reported.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from helpers._checks import check_float, check_int, check_tensor

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
