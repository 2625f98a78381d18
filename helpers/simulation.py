"""Simulated cohort with the shape of a small patient registry (Part II, "Data").

Every individual has a baseline visit at t = 0 and a few follow-up visits at
irregular times. The measured variables are noisy copies of a two-dimensional
linear ODE whose matrix differs between two groups; baseline variables carry
(some of) the information about the group.
"""

import functools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from ._utils import (
    check_arguments,
    check_choice,
    check_float,
    check_instance,
    integer,
    number,
    one_of,
)

DT = 0.1  # spacing of the time grid on which visits happen
BASELINE_STRATEGIES = ("trueparams", "groupsonly")
DEFAULT_ODE_PARAMS = ((-0.2, 0.0, 0.0, -0.2), (-0.2, 0.0, 0.0, 0.2))
DEFAULT_U0 = (2.0, 1.0)


def grid_times(t_start: float, t_end: float) -> np.ndarray:
    """Times ``t_start, t_start + 0.1, ..., t_end`` as exact decimal values.

    Args:
        t_start: first time, a multiple of 0.1.
        t_end: last time, a multiple of 0.1.

    Returns:
        float64 array of shape ``(n_times,)``.
    """
    first, last = round(t_start / DT), round(t_end / DT)
    return np.arange(first, last + 1) / round(1 / DT)


def true_states(matrix, u0, ts) -> torch.Tensor:
    """Closed-form solution ``u(t) = exp(A t) u0`` of ``u' = A u``.

    Args:
        matrix: ``(2, 2)`` system matrix ``A``, or its four entries row-wise.
        u0: ``(2,)`` initial state at t = 0.
        ts: ``(n_times,)`` times.

    Returns:
        float64 tensor of shape ``(n_times, 2)``.
    """
    a = torch.as_tensor(matrix, dtype=torch.float64)
    if a.numel() != 4:
        raise ValueError(
            f"matrix must be a 2x2 matrix or its four entries, got shape "
            f"{tuple(a.shape)}"
        )
    a = a.reshape(2, 2)
    ts = torch.as_tensor(ts, dtype=torch.float64).reshape(-1)
    start = torch.as_tensor(u0, dtype=torch.float64).reshape(2)
    propagators = torch.linalg.matrix_exp(ts[:, None, None] * a)  # (n_times, 2, 2)
    return propagators @ start


TRUE_PARAM_COLUMNS = ("true_a11", "true_a12", "true_a21", "true_a22")
TRUE_U0_COLUMNS = ("true_u1_0", "true_u2_0")


def _check_numbers(name: str, value, shape: tuple, meaning: str) -> tuple:
    """``value`` as a tuple of floats (``shape=(entries,)``) or a tuple of
    such rows (``shape=(rows, entries)``); else raise saying it must be
    ``meaning``."""
    rows = value if len(shape) == 2 else [value]
    checked = tuple(tuple(check_float(name, a) for a in row) for row in rows)
    n_rows = shape[0] if len(shape) == 2 else 1
    if [len(row) for row in checked] != [shape[-1]] * n_rows:
        raise ValueError(f"{name} must be {meaning}, got {value!r}")
    return checked if len(shape) == 2 else checked[0]


# What the true dynamics may be (simulate_cohort, and a table's true_* columns)
TRUTH_RULES = {
    "ode_params": functools.partial(
        _check_numbers, shape=(2, 4),
        meaning="two rows (a11, a12, a21, a22), one per group"),
    "u0": functools.partial(_check_numbers, shape=(2,), meaning="two numbers (u1, u2)"),
}  # fmt: skip


# What each argument of simulate_cohort may be, checked by check_arguments;
# the rules that tie two arguments together are written out in simulate_cohort
SIMULATION_RULES = {
    "n": integer(2),
    "p": integer(2),
    "q": integer(0),
    "q_info": integer(0),
    "baseline": one_of(BASELINE_STRATEGIES),
    "maxntps": integer(1),
    "t_start": number(0, strict=True),
    "t_end": number(),
    "sigma_var": number(0),
    "sigma_ind": number(0),
    **TRUTH_RULES,
    "seed": integer(0),
}


@dataclass(frozen=True)
class Transform:
    """How one column of a learner's table became a column of a cohort.

    ``stored = (f(original) - centre) / scale`` with ``f = log`` when ``log``
    is True and the identity otherwise; :meth:`invert` goes back.
    """

    log: bool = False
    centre: float = 0.0
    scale: float = 1.0

    def apply(self, values):
        """Stored values from original ones (numpy array or tensor)."""
        lib = torch if isinstance(values, torch.Tensor) else np
        return ((lib.log(values) if self.log else values) - self.centre) / self.scale

    def invert(self, values):
        """Original values from stored ones (numpy array or tensor)."""
        lib = torch if isinstance(values, torch.Tensor) else np
        values = values * self.scale + self.centre
        return lib.exp(values) if self.log else values


@dataclass(frozen=True)
class Columns:
    """Where a cohort's numbers sit in the learner's table (see
    :meth:`Cohort.from_frame`), so that :meth:`Cohort.to_frame` can write it
    back in the original names and units.

    Attributes:
        id, time: names of the id and time columns.
        variables: names of the ``p`` time-dependent columns, in order.
        baseline: names of the ``q`` baseline columns, in order.
        transforms: ``{name: Transform}`` for every variable and baseline column.
        people: the id value of each individual, in the cohort's order.
        time_origin: each individual's first visit time in the table (the
            cohort's clock starts at 0 there), in the table's unit.
    """

    id: str
    time: str
    variables: tuple
    baseline: tuple
    transforms: dict
    people: tuple
    time_origin: tuple

    def take(self, indices) -> "Columns":
        """The record for the individuals ``indices`` (in that order)."""
        return replace(
            self,
            people=tuple(self.people[i] for i in indices),
            time_origin=tuple(self.time_origin[i] for i in indices),
        )


@dataclass
class Cohort:
    """A cohort of individuals with irregular visits, some values missing.

    The constructor converts its arguments (numpy arrays and nested lists
    are accepted for the tensors) and never modifies the caller's lists. It
    trusts them: the public doors that build cohorts (:func:`simulate_cohort`,
    :meth:`from_frame`) check what a person typed.

    Attributes:
        xs: list of ``n`` float32 tensors ``(n_visits_i, p)``; row 0 is the
            first visit, at t = 0. A missing entry holds 0.0 (on a
            standardised scale, the average); NaN entries given to the
            constructor become missing.
        ts: list of ``n`` float32 tensors ``(n_visits_i,)``, starting at 0.0.
        baseline: float32 tensor ``(n, q)`` of baseline variables.
        groups: int64 tensor ``(n,)`` with values 1 and 2 for a simulated
            cohort; None for a real one.
        ode_params: the true matrices per group, ``((a11, a12, a21, a22), ...)``,
            or None (no simulated truth).
        u0: the true initial state ``(u1, u2)`` shared by everyone, or None.
        settings: the arguments that produced the cohort (for the record).
        masks: list of ``n`` bool tensors ``(n_visits_i, p)``, True where a
            value was observed; default: observed wherever ``xs`` is not NaN.
        columns: the learner's column names, ids and transforms
            (:class:`Columns`), or None for a simulated cohort.
    """

    xs: list
    ts: list
    baseline: torch.Tensor
    groups: torch.Tensor | None = None
    ode_params: tuple | None = None
    u0: tuple | None = None
    settings: dict = field(default_factory=dict)
    masks: list | None = None
    columns: Columns | None = None

    def __post_init__(self):
        xs = [torch.as_tensor(x, dtype=torch.float32) for x in self.xs]
        if self.masks is None:
            self.masks = [~torch.isnan(x) for x in xs]
        else:
            self.masks = [torch.as_tensor(m, dtype=torch.bool) for m in self.masks]
        # complete rows keep their tensor; missing entries hold 0.0
        self.xs = [
            x if bool(m.all()) else torch.where(m, x, torch.zeros(()))
            for x, m in zip(xs, self.masks)
        ]
        self.ts = [torch.as_tensor(t, dtype=torch.float32) for t in self.ts]
        self.baseline = torch.as_tensor(self.baseline, dtype=torch.float32)
        if self.groups is not None:
            self.groups = torch.as_tensor(self.groups).to(torch.int64)
        self.settings = dict(self.settings)

    @property
    def n(self) -> int:
        """Number of individuals."""
        return len(self.xs)

    @property
    def p(self) -> int:
        """Number of time-dependent variables."""
        return self.xs[0].shape[1]

    @property
    def q(self) -> int:
        """Number of baseline variables."""
        return self.baseline.shape[1]

    @property
    def t_end(self) -> float:
        """The latest visit time in the cohort."""
        return max(float(t[-1]) for t in self.ts)

    @property
    def has_truth(self) -> bool:
        """Whether the cohort carries a simulation's groups and true dynamics."""
        return self.groups is not None and self.ode_params is not None

    @property
    def variables(self) -> tuple:
        """Names of the ``p`` variables (``x1..xp`` for a simulated cohort)."""
        if self.columns is not None:
            return self.columns.variables
        return tuple(f"x{j + 1}" for j in range(self.p))

    def missing_share(self) -> float:
        """Share of the entries of ``xs`` that are missing (0 when complete)."""
        observed = sum(int(m.sum()) for m in self.masks)
        return 1.0 - observed / sum(m.numel() for m in self.masks)

    def original_units(self, values) -> torch.Tensor:
        """Values ``(..., p)`` on the cohort's scale in the table's units.

        Undoes the transforms of :meth:`from_frame` (log, centre, scale) per
        variable; a simulated cohort's values come back unchanged (float64).
        """
        values = torch.as_tensor(values, dtype=torch.float64)
        if self.columns is None:
            return values
        transforms = [self.columns.transforms[name] for name in self.variables]
        return torch.stack(
            [f.invert(values[..., j]) for j, f in enumerate(transforms)], -1
        )

    def time_grid(self) -> torch.Tensor:
        """The 0.1 grid from 0 to the latest visit, float32 ``(T,)`` (for plots)."""
        return torch.tensor(grid_times(0.0, round(self.t_end, 1)), dtype=torch.float32)

    def first_visits(self, ids=None) -> torch.Tensor:
        """First visits ``(B, p)`` of the individuals ``ids`` (default all)."""
        ids = range(self.n) if ids is None else ids
        return torch.stack([self.xs[int(i)][0] for i in ids])

    def true_trajectory(self, group: int, ts) -> torch.Tensor:
        """True latent state ``(u1, u2)`` of a group at the given times.

        Args:
            group: 1 or 2.
            ts: ``(n_times,)`` times.

        Returns:
            float32 tensor ``(n_times, 2)``.
        """
        if not self.has_truth:
            raise ValueError(
                "this cohort has no simulated truth (groups and ode_params): it "
                "came from a table of real data"
            )
        check_choice("group", group, (1, 2))
        return true_states(self.ode_params[group - 1], self.u0, ts).float()

    def subset(self, indices) -> "Cohort":
        """The cohort restricted to the individuals in ``indices`` (in that order)."""
        indices = [int(i) for i in indices]
        return replace(
            self,
            xs=[self.xs[i] for i in indices],
            ts=[self.ts[i] for i in indices],
            masks=[self.masks[i] for i in indices],
            baseline=self.baseline[indices],
            groups=None if self.groups is None else self.groups[indices],
            columns=None if self.columns is None else self.columns.take(indices),
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with one row per visit; missing values are NaN.

        A cohort built by :meth:`from_frame` from a learner's table comes
        back in that table's column names, ids, time origin and original
        units (the transforms undone), so ``Cohort.from_frame(frame, ...)
        .to_frame()`` gives back ``frame``'s columns up to float32 rounding.

        A simulated cohort has the columns ``id`` (0-based individual),
        ``group``, ``visit`` (0 = first visit), ``time``, ``x1..xp``
        (time-dependent variables), ``b1..bq`` (baseline variables, repeated
        on every visit of an individual), ``true_a11, true_a12, true_a21,
        true_a22`` (the true matrix of the row's group, float64) and
        ``true_u1_0, true_u2_0`` (the true initial state, float64).
        :meth:`Cohort.from_frame` reads it back, also from a CSV file.
        ``settings`` is not written (it cannot travel in a CSV), so a cohort
        read back has ``settings == {}``. Written with
        ``float_format="%.9g"`` the float32 data are exact, and so are true
        parameters with at most nine significant digits (such as the
        defaults); write without ``float_format`` to keep more.

        Returns:
            DataFrame with ``sum(n_visits_i)`` rows.
        """
        if self.columns is not None:
            return _learner_frame(self)
        rows = []
        for i, (x, t, m) in enumerate(zip(self.xs, self.ts, self.masks)):
            values = torch.where(m, x, torch.tensor(float("nan"))).numpy()
            block = pd.DataFrame(values, columns=list(self.variables))
            block.insert(0, "time", t.numpy())
            block.insert(0, "visit", np.arange(len(t), dtype=np.int64))
            if self.groups is not None:
                block.insert(0, "group", int(self.groups[i]))
            block.insert(0, "id", i)
            base = self.baseline[i].numpy()
            extra = {f"b{j + 1}": np.float32(base[j]) for j in range(self.q)}
            if self.has_truth:
                group = int(self.groups[i])
                extra |= dict(zip(TRUE_PARAM_COLUMNS, self.ode_params[group - 1]))
                extra |= dict(zip(TRUE_U0_COLUMNS, self.u0))
            extra = pd.DataFrame({k: [v] * len(t) for k, v in extra.items()})
            rows.append(pd.concat([block, extra], axis=1))
        return pd.concat(rows, ignore_index=True)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        id: str = "id",
        time: str = "time",
        variables=None,
        baseline=(),
        log=(),
        standardise: bool = True,
        ode_params=DEFAULT_ODE_PARAMS,
        u0=DEFAULT_U0,
    ) -> "Cohort":
        """Build a cohort from a long table, one row per visit.

        With ``variables`` given, the table is a learner's own: ``id``,
        ``time``, ``variables`` and ``baseline`` name its columns. Rules:
        ids may be numbers or text; times, variables and baseline columns
        hold numbers; within a person the rows come in strictly increasing
        time (no two visits at one time); baseline values are observed and
        the same on all of a person's rows; a variable may be missing (NaN)
        on some rows but not everywhere, and a row with none of the
        variables observed is dropped (it carries no information) - a person
        left with no row is an error. Each person's clock starts at their
        first row (``time_origin`` records where). Columns in ``log`` are
        log-transformed (their observed values must be > 0); then, with
        ``standardise``, every variable and baseline column is centred and
        scaled by its observed mean and standard deviation over all rows (a
        constant column is only centred). :class:`Transform` records each,
        so :meth:`original_units` and :meth:`to_frame` give the original
        units back. The cohort has no simulated truth.

        Without ``variables`` the table is the simulated layout written by
        :meth:`to_frame`: numeric columns ``id, visit, time, x1..xp`` and
        optionally ``group``, ``b1..bq``, ``true_a11, true_a12, true_a21,
        true_a22`` and ``true_u1_0, true_u2_0``; ``x`` values may be NaN
        (missing). ``group`` and ``b1..bq`` must be the same on all rows of
        an individual, visit numbers distinct within an individual.

        Args:
            frame: the table.
            id, time: names of the id and time columns (learner's table).
            variables: names of the time-dependent columns, or None for the
                simulated layout.
            baseline: names of the baseline columns (learner's table).
            log: names of columns to log-transform (learner's table).
            standardise: centre and scale every column (learner's table).
            ode_params: simulated layout only: true matrices per group,
                ``((a11, a12, a21, a22), ...)``, used (for the truth in
                plots) when the ``true_a*`` columns are absent, and for a
                group with no rows.
            u0: simulated layout only: true initial state ``(u1, u2)``, used
                when the ``true_u*`` columns are absent.

        Returns:
            The cohort, individuals ordered by id; visits by time (learner's
            table) or by ``visit`` (simulated layout).

        Raises:
            ValueError: naming the column (and the person, where one is to
                blame) for every broken rule above.
        """
        if variables is None:
            return _from_simulated_layout(frame, ode_params, u0)
        return _from_learner_table(
            frame, id, time, variables, baseline, log, standardise
        )


def _from_simulated_layout(frame: pd.DataFrame, ode_params, u0) -> Cohort:
    """:meth:`Cohort.from_frame` for the layout written by :meth:`Cohort.to_frame`."""
    names = [c for c in frame.columns if isinstance(c, str)]
    x_cols = sorted(
        (c for c in names if c[:1] == "x" and c[1:].isdigit()),
        key=lambda c: int(c[1:]),
    )
    b_cols = sorted(
        (c for c in names if c[:1] == "b" and c[1:].isdigit()),
        key=lambda c: int(c[1:]),
    )
    missing = {"id", "visit", "time"} - set(names)
    if missing or not x_cols:
        raise ValueError(
            "frame must have columns id, visit, time, x1..xp (or name your "
            f"columns with variables=[...]); missing {sorted(missing) or ['x1..xp']}"
        )
    has_groups = "group" in names
    complete = ("id", "visit", "time", *(["group"] if has_groups else []))
    roles = {"numbers": (*complete, *b_cols, *x_cols), "complete": complete,
             "baseline": b_cols, "group": ("group",) if has_groups else ()}
    _check_rows(frame, _TABLE_RULES, roles, "id", x_cols)
    if has_groups and all(c in names for c in TRUE_PARAM_COLUMNS + TRUE_U0_COLUMNS):
        ode_params, u0 = _true_dynamics_from(frame, ode_params)
    if has_groups:  # the truth of a simulated cohort, from the table or arguments
        truth = check_arguments(TRUTH_RULES, {"ode_params": ode_params, "u0": u0})
        ode_params, u0 = truth["ode_params"], truth["u0"]

    frame = frame.sort_values(["id", "visit"], kind="stable")
    xs, ts, baseline, groups = [], [], [], []
    for _, rows in frame.groupby("id", sort=True):
        xs.append(torch.tensor(rows[x_cols].to_numpy(np.float32)))
        ts.append(torch.tensor(rows["time"].to_numpy(np.float32)))
        baseline.append(rows[b_cols].to_numpy(np.float32)[0])
        groups.append(int(rows["group"].iloc[0]) if has_groups else 0)
    return Cohort(
        xs=xs,
        ts=ts,
        baseline=torch.tensor(np.stack(baseline)).reshape(len(xs), len(b_cols)),
        groups=torch.tensor(groups) if has_groups else None,
        ode_params=ode_params if has_groups else None,
        u0=u0 if has_groups else None,
    )


def _true_dynamics_from(frame: pd.DataFrame, fallback: tuple) -> tuple:
    """``(ode_params, u0)`` from the ``true_*`` columns of a frame: the first
    row of each group (``fallback`` for a group with no rows)."""
    rows = list(fallback)
    for group, block in frame.groupby("group", sort=True):
        rows[int(group) - 1] = tuple(block[list(TRUE_PARAM_COLUMNS)].iloc[0])
    return rows, tuple(frame[list(TRUE_U0_COLUMNS)].iloc[0])


def _check_names(frame, id, time, variables, baseline, log) -> None:
    """Lists of the learner's column names, each present in ``frame``."""
    as_names = {"variables": variables, "baseline": baseline, "log": log}
    for argument, value in as_names.items():
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ValueError(
                f"{argument} must be a list of column names, got {value!r}"
            )
    if len(variables) == 0:
        raise ValueError("variables must name at least one column, got []")
    used = (id, time, *variables, *baseline)
    repeated = sorted({name for name in used if used.count(name) > 1})
    if repeated:
        raise ValueError(f"each column may play one part only; repeated: {repeated}")
    absent = [name for name in used if name not in frame.columns]
    if absent:
        raise ValueError(
            f"frame has no column {absent[0]!r} (its columns: {list(frame.columns)})"
        )
    stray = [name for name in log if name not in (*variables, *baseline)]
    if stray:
        raise ValueError(
            f"log must name variables or baseline columns, got {stray[0]!r}"
        )


# The rules of a table of visits. Each finds the rows of a column that break
# it, ``bad(frame, column, id, variables)``, with ``id`` the person's column.
def _not_numbers(frame, column, id, variables):
    return pd.Series(not pd.api.types.is_numeric_dtype(frame[column]), frame.index)


def _missing(frame, column, id, variables):
    return frame[column].isna()


def _not_a_group(frame, column, id, variables):
    return ~frame[column].isin([1, 2])


def _never_observed(frame, column, id, variables):
    return frame[column].isna() & frame[column].isna().all()


def _not_positive(frame, column, id, variables):
    return frame[column] <= 0


def _person_without_variables(frame, column, id, variables):
    unobserved = frame[list(variables)].isna().all(axis=1)
    return unobserved.groupby(frame[column]).transform("all")


def _time_repeats(frame, column, id, variables):
    return frame.groupby(id, sort=False)[column].diff() == 0


def _time_goes_back(frame, column, id, variables):
    return frame.groupby(id, sort=False)[column].diff() < 0


def _changes_within_person(frame, column, id, variables):
    return frame.groupby(id, sort=False)[column].transform("nunique") > 1


_INCREASING = "each person's rows must come in strictly increasing time"
# (role of the columns, rule, what to tell the person), checked in this order
# by _check_rows: a door says which columns play each role (a role it leaves
# out has none); a message may name the column, the person and the value of
# the first bad row, the count of bad rows, the dtype and the variables.
_TABLE_RULES = (
    ("numbers", _not_numbers, ("column {column!r} must hold numbers, got dtype "
     "{dtype} (code text as numbers first, e.g. 0/1)")),
    ("complete", _missing, ("column {column!r} is missing (NaN) on {count} rows, "
     "e.g. for person {person!r}; every row needs it")),
    ("baseline", _missing, ("column {column!r} is missing (NaN) on {count} rows, "
     "e.g. for person {person!r}; impute it or drop the person")),
    ("group", _not_a_group, ("column {column!r} must be 1 or 2, got {value!r} for "
     "person {person!r}")),
    ("variables", _never_observed, "variable {column!r} is missing on every row"),
    ("log", _not_positive, ("column {column!r} is to be log-transformed but holds "
     "{value!r} <= 0 for person {person!r}")),
    ("people", _person_without_variables, ("person {person!r} (column {column!r}) "
     "has no visit with any of the variables {variables} observed")),
)  # fmt: skip
# ... and, once the rows with no variable observed are dropped:
_PERSON_RULES = (
    ("time", _time_repeats, "column {column!r}: person {person!r} has two visits "
     "at time {value!r}; " + _INCREASING),
    ("time", _time_goes_back, "column {column!r}: person {person!r} goes back to "
     "time {value!r}; " + _INCREASING),
    ("baseline", _changes_within_person, ("baseline column {column!r} changes "
     "between the rows of person {person!r}; a baseline value is one per person")),
)  # fmt: skip


def _check_rows(frame, rules, roles: dict, id: str, variables) -> None:
    """Raise for the first row that breaks one of ``rules`` (``_TABLE_RULES``),
    with ``roles`` the columns of each role and ``id`` the person's column."""
    for role, bad_rows, message in rules:
        for column in roles.get(role, ()):
            bad = bad_rows(frame, column, id, list(variables))
            if bad.any():
                first = frame.iloc[np.flatnonzero(bad.to_numpy(bool))[:1]]
                raise ValueError(message.format(  # Python values read best
                    column=column, person=first[id].tolist()[0], count=int(bad.sum()),
                    value=first[column].tolist()[0], dtype=frame[column].dtype,
                    variables=list(variables)))  # fmt: skip


def _fit_transforms(frame, names, log, standardise) -> dict:
    """``{name: Transform}``: log where asked, then the observed mean and sd."""
    transforms = {}
    for name in names:
        values = frame[name].to_numpy(np.float64)
        values = np.log(values) if name in log else values
        centre, scale = 0.0, 1.0
        if standardise:
            centre = float(np.nanmean(values))
            scale = float(np.nanstd(values)) or 1.0
        transforms[name] = Transform(log=name in log, centre=centre, scale=scale)
    return transforms


def _from_learner_table(frame, id, time, variables, baseline, log, standardise):
    """:meth:`Cohort.from_frame` for a learner's own table (see there)."""
    check_instance("frame", frame, pd.DataFrame, "a pandas DataFrame")
    _check_names(frame, id, time, variables, baseline, log)
    variables, baseline, log = tuple(variables), tuple(baseline), tuple(log)
    roles = {"numbers": (time, *variables, *baseline), "complete": (id, time),
             "baseline": baseline, "variables": variables, "log": log,
             "people": (id,)}  # fmt: skip
    _check_rows(frame, _TABLE_RULES, roles, id, variables)
    frame = frame[frame[list(variables)].notna().any(axis=1)]
    _check_rows(frame, _PERSON_RULES, {"time": (time,), "baseline": baseline},
                id, variables)  # fmt: skip
    transforms = _fit_transforms(frame, variables + baseline, log, standardise)
    stored = pd.DataFrame(
        {
            name: transforms[name].apply(frame[name].to_numpy(np.float64))
            for name in variables + baseline
        }
    )
    stored[id], stored[time] = frame[id].to_numpy(), frame[time].to_numpy(np.float64)
    xs, ts, base, people, origins = [], [], [], [], []
    for person, rows in stored.groupby(id, sort=True):
        origin = rows[time].iloc[0]
        xs.append(torch.tensor(rows[list(variables)].to_numpy(np.float32)))
        ts.append(torch.tensor((rows[time] - origin).to_numpy(np.float32)))
        base.append(rows[list(baseline)].to_numpy(np.float32)[0])
        people.append(person)
        origins.append(float(origin))
    columns = Columns(
        id=id,
        time=time,
        variables=variables,
        baseline=baseline,
        transforms=transforms,
        people=tuple(people),
        time_origin=tuple(origins),
    )
    return Cohort(
        xs=xs,
        ts=ts,
        baseline=torch.tensor(np.stack(base)).reshape(len(xs), len(baseline)),
        settings={"log": log, "standardise": standardise},
        columns=columns,
    )


def _learner_frame(cohort: Cohort) -> pd.DataFrame:
    """:meth:`Cohort.to_frame` for a cohort read from a learner's table."""
    columns = cohort.columns
    counts = [len(t) for t in cohort.ts]
    frame = pd.DataFrame(
        {
            columns.id: np.repeat(np.array(columns.people, dtype=object), counts),
            columns.time: np.concatenate(
                [
                    t.double().numpy() + origin
                    for t, origin in zip(cohort.ts, columns.time_origin)
                ]
            ),
        }
    )
    x = torch.cat(cohort.xs).double()
    x[~torch.cat(cohort.masks)] = float("nan")
    values = cohort.original_units(x).numpy()
    for j, name in enumerate(columns.variables):
        frame[name] = values[:, j]
    for j, name in enumerate(columns.baseline):
        stored = np.repeat(cohort.baseline[:, j].double().numpy(), counts)
        frame[name] = columns.transforms[name].invert(stored)
    frame[columns.id] = frame[columns.id].infer_objects()
    return frame


def simulate_cohort(
    n: int = 100,
    p: int = 10,
    q: int = 50,
    q_info: int = 10,
    baseline: str = "trueparams",
    maxntps: int = 10,
    t_start: float = 1.5,
    t_end: float = 10.0,
    sigma_var: float = 0.1,
    sigma_ind: float = 0.5,
    ode_params=DEFAULT_ODE_PARAMS,
    u0=DEFAULT_U0,
    seed: int = 12,
) -> Cohort:
    """Simulate the cohort of Part II (notebook section "Simulating the data").

    Args:
        n: number of individuals (>= 2); ``n // 2`` are in group 1.
        p: number of time-dependent variables (even); the first half are noisy
            copies of ``u1``, the second half of ``u2``.
        q: number of baseline variables.
        q_info: number of informative baseline variables (even, <= q).
        baseline: ``"trueparams"`` (baseline variables centred on the group's
            a11 and a22, standard deviation 0.1) or ``"groupsonly"`` (centred
            on -1 or +1 by group, standard deviation 1).
        maxntps: maximum number of follow-up visits (each individual has 1 to
            ``maxntps``, uniformly).
        t_start, t_end: follow-up times are drawn with replacement from the
            0.1 grid on ``[t_start, t_end]``.
        sigma_var: standard deviation of the per-variable offset shared by
            all individuals.
        sigma_ind: standard deviation of the measurement noise.
        ode_params: ``(a11, a12, a21, a22)`` of group 1 and of group 2.
        u0: initial state shared by everyone.
        seed: seed of the random numbers (numpy ``default_rng``).

    Returns:
        The simulated :class:`Cohort`.
    """
    settings = {
        "n": n, "p": p, "q": q, "q_info": q_info, "baseline": baseline,
        "maxntps": maxntps, "t_start": t_start, "t_end": t_end,
        "sigma_var": sigma_var, "sigma_ind": sigma_ind,
        "ode_params": ode_params, "u0": u0,
    }  # fmt: skip
    checked = check_arguments(SIMULATION_RULES, settings | {"seed": seed})
    if p % 2:
        raise ValueError(f"p must be even (half copy each state), got {p}")
    if q_info > q or q_info % 2:
        raise ValueError(f"q_info must be even and at most q={q}, got {q_info}")
    grid = (checked["t_start"] / DT, checked["t_end"] / DT)
    if t_start >= t_end or max(abs(g - round(g)) for g in grid) > 1e-6:
        raise ValueError(
            f"t_start and t_end must be multiples of {DT} with t_start < t_end, "
            f"got {t_start} and {t_end}"
        )
    return _draw_cohort(settings, seed, checked["ode_params"], checked["u0"])


def _draw_cohort(settings: dict, seed: int, ode_params: tuple, u0: tuple) -> Cohort:
    """The draws of :func:`simulate_cohort`, for settings already checked
    (``settings`` as given, for the record; ``ode_params`` and ``u0`` as
    checked)."""
    n, p, q, q_info = (settings[k] for k in ("n", "p", "q", "q_info"))
    t_start, t_end, maxntps, sigma_var, sigma_ind = (
        settings[k] for k in ("t_start", "t_end", "maxntps", "sigma_var", "sigma_ind"))
    rng = np.random.default_rng(seed)
    groups = np.full(n, 2, dtype=np.int64)
    groups[rng.permutation(n)[: n // 2]] = 1
    offsets = rng.normal(0.0, sigma_var, size=p)
    follow_up_grid = grid_times(t_start, t_end)
    visit_times = np.concatenate([[0.0], follow_up_grid])
    # true states of both groups at every possible visit time: (2, n_times, 2)
    truth = np.stack([true_states(a, u0, visit_times).numpy() for a in ode_params])
    component = np.repeat([0, 1], p // 2)  # which state each variable copies

    xs, ts = [], []
    for group in groups:
        n_follow_ups = rng.integers(1, maxntps + 1)
        picks = np.sort(rng.integers(1, len(visit_times), size=n_follow_ups))
        picks = np.concatenate([[0], picks])  # the baseline visit first
        times, states = visit_times[picks], truth[group - 1][picks]
        noise = rng.normal(0.0, sigma_ind, size=(len(times), p))
        xs.append(
            torch.tensor(states[:, component] + offsets + noise, dtype=torch.float32)
        )
        ts.append(torch.tensor(times, dtype=torch.float32))

    base = _simulate_baseline(rng, groups, q, q_info, settings["baseline"],
                              ode_params)
    return Cohort(
        xs=xs,
        ts=ts,
        baseline=torch.tensor(base, dtype=torch.float32),
        groups=torch.tensor(groups),
        ode_params=ode_params,
        u0=u0,
        settings=settings | {"seed": seed},
    )


def _simulate_baseline(rng, groups, q, q_info, strategy, ode_params) -> np.ndarray:
    """Baseline variables ``(n, q)`` for the two strategies of the spec."""
    n, half = len(groups), q_info // 2
    means = np.zeros((n, q))
    if strategy == "trueparams":
        params = np.asarray(ode_params, dtype=np.float64)[groups - 1]  # (n, 4)
        means[:, :half] = params[:, [0]]  # a11 of the individual's group
        means[:, half:q_info] = params[:, [3]]  # a22
        sd = 0.1
    else:
        means[:, :q_info] = np.where(groups == 1, -1.0, 1.0)[:, None]
        sd = 1.0
    return means + rng.normal(0.0, sd, size=(n, q))


def split_last_visit(cohort: Cohort):
    """Hold out the last visit of everyone with at least two follow-ups.

    Args:
        cohort: the full cohort.

    Returns:
        ``(train_cohort, heldout)``: the cohort without the held-out visits,
        and the held-out visits, the one shape the package uses for them: a
        dict with ``ids`` (int64 ``(m,)``, individuals with a held-out
        visit), ``times`` (float32 ``(m,)``), ``values`` (float32 ``(m, p)``,
        0.0 where missing) and ``mask`` (bool ``(m, p)``, True where
        observed; every error skips the missing entries). All tensors are
        new copies that share no memory with ``cohort``.
    """
    xs, ts, masks, ids, times, values, observed = [], [], [], [], [], [], []
    for i, (x, t, m) in enumerate(zip(cohort.xs, cohort.ts, cohort.masks)):
        if len(t) >= 3:  # first visit + at least two follow-ups
            ids.append(i)
            times.append(t[-1])
            values.append(x[-1])
            observed.append(m[-1])
            x, t, m = x[:-1], t[:-1], m[:-1]
        xs.append(x.clone())  # copies: editing one cohort never edits the other
        ts.append(t.clone())
        masks.append(m.clone())
    train_cohort = replace(
        cohort,
        xs=xs,
        ts=ts,
        masks=masks,
        baseline=cohort.baseline.clone(),
        groups=None if cohort.groups is None else cohort.groups.clone(),
    )
    p = cohort.p
    heldout = {
        "ids": torch.tensor(ids, dtype=torch.int64),
        "times": torch.stack(times) if times else torch.zeros(0),
        "values": torch.stack(values) if values else torch.zeros(0, p),
        "mask": torch.stack(observed) if observed else torch.zeros(0, p, dtype=bool),
    }
    return train_cohort, heldout


DEFAULT_CSV = "cohort.csv"


def load_cohort(path=None) -> Cohort:
    """Read a cohort saved with ``cohort.to_frame().to_csv(path, index=False)``.

    Args:
        path: CSV file; default the shipped ``data/cohort.csv`` (made by
            ``simulate_cohort()`` with its default arguments, see
            ``data/README.md``).

    Returns:
        The :class:`Cohort` (see :meth:`Cohort.from_frame`): true dynamics
        from the file's ``true_*`` columns, or the defaults of
        :func:`simulate_cohort` for a file without them; ``settings`` empty.
    """
    from . import data_path

    path = data_path(DEFAULT_CSV) if path is None else path
    return Cohort.from_frame(pd.read_csv(path))
