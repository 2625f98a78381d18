"""Simulated cohort with the shape of a small patient registry (Part II, "Data").

Every individual has a baseline visit at t = 0 and a few follow-up visits at
irregular times. The measured variables are noisy copies of a two-dimensional
linear ODE whose matrix differs between two groups; baseline variables carry
(some of) the information about the group.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ._checks import check_choice, check_float, check_int, check_tensor

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


def _check_ode_params(value) -> tuple:
    """``value`` as ``((a11, a12, a21, a22), (a11, a12, a21, a22))`` of floats."""
    message = (
        "ode_params must be two rows (a11, a12, a21, a22) of finite numbers, one "
        f"per group, got {value!r}"
    )
    try:
        rows = [tuple(row) for row in value]
    except TypeError:
        raise ValueError(message) from None
    if len(rows) != 2 or any(len(row) != 4 for row in rows):
        raise ValueError(message)
    try:
        return tuple(tuple(check_float("ode_params", a) for a in row) for row in rows)
    except ValueError:
        raise ValueError(message) from None


def _check_u0(value) -> tuple:
    """``value`` as ``(u1, u2)`` of floats."""
    message = f"u0 must be two finite numbers (u1, u2), got {value!r}"
    try:
        entries = tuple(value)
    except TypeError:
        raise ValueError(message) from None
    if len(entries) != 2:
        raise ValueError(message)
    try:
        return tuple(check_float("u0", u) for u in entries)
    except ValueError:
        raise ValueError(message) from None


def _real_tensor(name: str, value, shape: tuple) -> torch.Tensor:
    """``value`` (tensor, array or nested list) as a float32 tensor of ``shape``."""
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"{name} must be a tensor or array of real numbers, got "
            f"{type(value).__name__}"
        ) from None
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold real numbers, got a tensor of dtype {tensor.dtype}"
        )
    return check_tensor(name, tensor, shape).float()


def _show(tensor: torch.Tensor) -> str:
    """A short description of a tensor's values for error messages."""
    if tensor.numel() <= 8:
        return repr(tensor.tolist())
    return f"shape {tuple(tensor.shape)} with values {sorted(set(tensor.tolist()))[:8]}"


def _check_groups(value, n: int) -> torch.Tensor:
    """``value`` as an int64 tensor ``(n,)`` of 1s and 2s."""
    allowed = f"one whole number, 1 or 2, per individual (shape ({n},))"
    try:
        groups = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"groups must hold {allowed}, got {value!r}") from None
    if groups.is_complex() or groups.dtype == torch.bool:
        raise ValueError(f"groups must hold {allowed}, got dtype {groups.dtype}")
    if groups.is_floating_point() and not bool(
        (torch.isfinite(groups) & (groups == groups.round())).all()
    ):
        raise ValueError(f"groups must hold {allowed}, got {_show(groups)}")
    groups = groups.to(torch.int64)
    if groups.shape != (n,) or not bool(((groups == 1) | (groups == 2)).all()):
        raise ValueError(f"groups must hold {allowed}, got {_show(groups)}")
    return groups


@dataclass
class Cohort:
    """A cohort of individuals with irregular visits.

    The constructor checks and converts its arguments (numpy arrays and nested
    lists are accepted for the tensors) and never modifies the caller's lists.

    Attributes:
        xs: list of ``n`` float32 tensors ``(n_visits_i, p)``; row 0 is the
            baseline visit at t = 0.
        ts: list of ``n`` float32 tensors ``(n_visits_i,)``, starting at 0.0.
        baseline: float32 tensor ``(n, q)`` of baseline variables.
        groups: int64 tensor ``(n,)`` with values 1 and 2.
        ode_params: the true matrices per group, ``((a11, a12, a21, a22), ...)``.
        u0: the true initial state ``(u1, u2)`` shared by everyone.
        settings: the arguments that produced the cohort (for the record).
    """

    xs: list
    ts: list
    baseline: torch.Tensor
    groups: torch.Tensor
    ode_params: tuple = DEFAULT_ODE_PARAMS
    u0: tuple = DEFAULT_U0
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("xs", "ts"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ValueError(
                    f"{name} must be a list with one tensor per individual, got "
                    f"{type(value).__name__}"
                )
        n = len(self.xs)
        if n < 1 or len(self.ts) != n:
            raise ValueError(
                f"xs and ts must be non-empty lists of equal length, got {n} and "
                f"{len(self.ts)}"
            )
        if not isinstance(self.settings, dict):
            raise ValueError(
                f"settings must be a dict, got {type(self.settings).__name__}"
            )
        xs, ts, p = [], [], None
        for i, (x, t) in enumerate(zip(self.xs, self.ts)):
            x = _real_tensor(f"xs[{i}]", x, (None, p))
            t = _real_tensor(f"ts[{i}]", t, (x.shape[0],))
            p = x.shape[1]
            if x.shape[0] < 1 or t[0] != 0 or bool((t[1:] < t[:-1]).any()):
                raise ValueError(
                    f"ts[{i}] must start with the baseline visit at 0.0 and be "
                    f"sorted, got {t.tolist()}"
                )
            xs.append(x)
            ts.append(t)
        self.xs, self.ts = xs, ts
        self.baseline = _real_tensor("baseline", self.baseline, (n, None))
        self.groups = _check_groups(self.groups, n)
        self.ode_params = _check_ode_params(self.ode_params)
        self.u0 = _check_u0(self.u0)
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

    def true_trajectory(self, group: int, ts) -> torch.Tensor:
        """True latent state ``(u1, u2)`` of a group at the given times.

        Args:
            group: 1 or 2.
            ts: ``(n_times,)`` times.

        Returns:
            float32 tensor ``(n_times, 2)``.
        """
        if group not in (1, 2):
            raise ValueError(f"group must be 1 or 2, got {group!r}")
        return true_states(self.ode_params[group - 1], self.u0, ts).float()

    def subset(self, indices) -> "Cohort":
        """The cohort restricted to the individuals in ``indices`` (in that order)."""
        indices = [int(i) for i in indices]
        return Cohort(
            xs=[self.xs[i] for i in indices],
            ts=[self.ts[i] for i in indices],
            baseline=self.baseline[indices],
            groups=self.groups[indices],
            ode_params=self.ode_params,
            u0=self.u0,
            settings=dict(self.settings),
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with one row per visit.

        Columns: ``id`` (0-based individual), ``group``, ``visit`` (0 =
        baseline), ``time``, ``x1..xp`` (time-dependent variables), ``b1..bq``
        (baseline variables, repeated on every visit of an individual),
        ``true_a11, true_a12, true_a21, true_a22`` (the true matrix of the
        row's group, float64) and ``true_u1_0, true_u2_0`` (the true initial
        state, float64). :meth:`Cohort.from_frame` reads it back, also from a
        CSV file. ``settings`` is not written (it cannot travel in a CSV), so
        a cohort read back has ``settings == {}``. Written with
        ``float_format="%.9g"`` the float32 data are exact, and so are true
        parameters with at most nine significant digits (such as the
        defaults); write without ``float_format`` to keep more.

        Returns:
            DataFrame with ``sum(n_visits_i)`` rows and
            ``4 + p + q + 6`` columns.
        """
        rows = []
        for i, (x, t) in enumerate(zip(self.xs, self.ts)):
            group = int(self.groups[i])
            block = pd.DataFrame(
                x.numpy(), columns=[f"x{j + 1}" for j in range(self.p)]
            )
            block.insert(0, "time", t.numpy())
            block.insert(0, "visit", np.arange(len(t), dtype=np.int64))
            block.insert(0, "group", group)
            block.insert(0, "id", i)
            base = self.baseline[i].numpy()
            extra = {f"b{j + 1}": np.float32(base[j]) for j in range(self.q)}
            extra |= dict(zip(TRUE_PARAM_COLUMNS, self.ode_params[group - 1]))
            extra |= dict(zip(TRUE_U0_COLUMNS, self.u0))
            extra = pd.DataFrame({k: [v] * len(t) for k, v in extra.items()})
            rows.append(pd.concat([block, extra], axis=1))
        return pd.concat(rows, ignore_index=True)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        ode_params=DEFAULT_ODE_PARAMS,
        u0=DEFAULT_U0,
    ) -> "Cohort":
        """Build a cohort from the table written by :meth:`to_frame`.

        Args:
            frame: one row per visit with numeric columns ``id, group, visit,
                time, x1..xp, b1..bq`` and optionally ``true_a11, true_a12,
                true_a21, true_a22`` and ``true_u1_0, true_u2_0``. ``group``
                and ``b1..bq`` must be the same on all rows of an individual,
                visit numbers distinct within an individual.
            ode_params: true matrices per group, ``((a11, a12, a21, a22),
                ...)``, used (for the truth in plots) when the ``true_a*``
                columns are absent, and for a group with no rows.
            u0: true initial state ``(u1, u2)``, used when the ``true_u*``
                columns are absent.

        Returns:
            The cohort, individuals ordered by ``id``, visits by ``visit``.
        """
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(
                f"frame must be a pandas DataFrame, got {type(frame).__name__}"
            )
        ode_params, u0 = _check_ode_params(ode_params), _check_u0(u0)
        if not frame.columns.is_unique:
            duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise ValueError(f"frame has repeated columns {duplicated}")
        names = [c for c in frame.columns if isinstance(c, str)]
        x_cols = sorted(
            (c for c in names if c[:1] == "x" and c[1:].isdigit()),
            key=lambda c: int(c[1:]),
        )
        b_cols = sorted(
            (c for c in names if c[:1] == "b" and c[1:].isdigit()),
            key=lambda c: int(c[1:]),
        )
        missing = {"id", "group", "visit", "time"} - set(names)
        if missing or not x_cols:
            raise ValueError(
                "frame must have columns id, group, visit, time, x1..xp and "
                f"b1..bq; missing {sorted(missing) or ['x1..xp']}"
            )
        true_cols = []
        for block in (TRUE_PARAM_COLUMNS, TRUE_U0_COLUMNS):
            present = [c for c in block if c in names]
            if present and len(present) < len(block):
                raise ValueError(
                    f"frame must have all or none of the columns {list(block)}, "
                    f"got only {present}"
                )
            true_cols += present
        if frame.empty:
            raise ValueError("frame must have at least one row (visit), got none")
        numeric = ["id", "group", "visit", "time", *x_cols, *b_cols, *true_cols]
        for column in numeric:
            values = frame[column]
            if not pd.api.types.is_numeric_dtype(values) or (
                pd.api.types.is_bool_dtype(values)
            ):
                raise ValueError(
                    f"frame column {column!r} must hold numbers, got dtype "
                    f"{values.dtype}"
                )
            if values.isna().any():
                row = int(np.flatnonzero(values.isna().to_numpy())[0])
                raise ValueError(
                    f"frame column {column!r} must not have missing (NaN) values, "
                    f"got one in row {row}"
                )
        for column in ("id", "group", "visit"):
            values = frame[column].to_numpy(np.float64)
            bad = ~np.isfinite(values) | (values != np.round(values))
            if bad.any():
                raise ValueError(
                    f"frame column {column!r} must hold whole numbers, got "
                    f"{float(values[bad][0])!r}"
                )
        if not frame["group"].isin([1, 2]).all():
            values = sorted(set(frame["group"].tolist()))
            raise ValueError(
                f"frame column 'group' must be 1 or 2 on every row, got {values}"
            )
        repeated = frame.duplicated(["id", "visit"])
        if repeated.any():
            row = frame[repeated].iloc[0]
            raise ValueError(
                f"frame must have distinct visit numbers within an individual, got "
                f"visit {int(row['visit'])} twice for id {int(row['id'])}"
            )
        per_id = ["group", *b_cols]  # the true_* columns are checked by group
        counts = frame.groupby("id", sort=True)[per_id].nunique()
        for column in per_id:
            if (counts[column] > 1).any():
                bad_id = counts.index[(counts[column] > 1).to_numpy()][0]
                raise ValueError(
                    f"frame column {column!r} must be the same on all rows of an "
                    f"individual, got different values for id {int(bad_id)}"
                )
        if true_cols:
            ode_params, u0 = _true_dynamics_from(frame, ode_params)

        frame = frame.sort_values(["id", "visit"], kind="stable")
        xs, ts, baseline, groups = [], [], [], []
        for _, rows in frame.groupby("id", sort=True):
            xs.append(torch.tensor(rows[x_cols].to_numpy(np.float32)))
            ts.append(torch.tensor(rows["time"].to_numpy(np.float32)))
            baseline.append(rows[b_cols].to_numpy(np.float32)[0])
            groups.append(int(rows["group"].iloc[0]))
        return cls(
            xs=xs,
            ts=ts,
            baseline=torch.tensor(np.stack(baseline)).reshape(len(xs), len(b_cols)),
            groups=torch.tensor(groups),
            ode_params=ode_params,
            u0=u0,
        )


def _true_dynamics_from(frame: pd.DataFrame, fallback: tuple) -> tuple:
    """``(ode_params, u0)`` from the ``true_*`` columns of a checked frame."""
    rows = list(fallback)
    for group, block in frame.groupby("group", sort=True):
        values = block[list(TRUE_PARAM_COLUMNS)].drop_duplicates()
        if len(values) > 1:
            raise ValueError(
                f"frame columns {list(TRUE_PARAM_COLUMNS)} must be the same on all "
                f"rows of a group, got {len(values)} different rows in group "
                f"{int(group)}"
            )
        rows[int(group) - 1] = tuple(float(a) for a in values.iloc[0])
    values = frame[list(TRUE_U0_COLUMNS)].drop_duplicates()
    if len(values) > 1:
        raise ValueError(
            f"frame columns {list(TRUE_U0_COLUMNS)} must be the same on all rows, "
            f"got {len(values)} different rows"
        )
    return _check_ode_params(rows), _check_u0(values.iloc[0].tolist())


def _check_simulation_args(
    n,
    p,
    q,
    q_info,
    baseline,
    maxntps,
    t_start,
    t_end,
    sigma_var,
    sigma_ind,
    ode_params,
    u0,
):
    check_int("n", n, minimum=2)
    check_int("p", p, minimum=2)
    if p % 2:
        raise ValueError(
            f"p must be even (half the variables copy each state), got {p}"
        )
    check_int("q", q, minimum=0)
    check_int("q_info", q_info, minimum=0)
    if q_info > q or q_info % 2:
        raise ValueError(f"q_info must be even and at most q={q}, got {q_info}")
    check_choice("baseline", baseline, BASELINE_STRATEGIES)
    check_int("maxntps", maxntps, minimum=1)
    check_float("t_start", t_start, minimum=0, strict=True)
    check_float("t_end", t_end)
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if abs(value / DT - round(value / DT)) > 1e-6:
            raise ValueError(f"{name} must be a multiple of {DT}, got {value}")
    if t_start >= t_end:
        raise ValueError(
            f"t_start must be smaller than t_end, got {t_start} >= {t_end}"
        )
    check_float("sigma_var", sigma_var, minimum=0)
    check_float("sigma_ind", sigma_ind, minimum=0)
    _check_ode_params(ode_params)
    _check_u0(u0)


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
    _check_simulation_args(**settings)
    ode_params, u0 = _check_ode_params(ode_params), _check_u0(u0)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
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

    base = _simulate_baseline(rng, groups, q, q_info, baseline, ode_params)
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
        and a dict with ``ids`` (int64 ``(m,)``, individuals with a held-out
        visit), ``times`` (float32 ``(m,)``) and ``values`` (float32 ``(m, p)``).
        All tensors are new copies that share no memory with ``cohort``.
    """
    if not isinstance(cohort, Cohort):
        raise ValueError(f"cohort must be a Cohort, got {type(cohort).__name__}")
    xs, ts, ids, times, values = [], [], [], [], []
    for i, (x, t) in enumerate(zip(cohort.xs, cohort.ts)):
        if len(t) >= 3:  # baseline + at least two follow-ups
            ids.append(i)
            times.append(t[-1])
            values.append(x[-1])
            x, t = x[:-1], t[:-1]
        xs.append(x.clone())  # copies: editing one cohort never edits the other
        ts.append(t.clone())
    train_cohort = Cohort(
        xs=xs,
        ts=ts,
        baseline=cohort.baseline.clone(),
        groups=cohort.groups.clone(),
        ode_params=cohort.ode_params,
        u0=cohort.u0,
        settings=dict(cohort.settings),
    )
    heldout = {
        "ids": torch.tensor(ids, dtype=torch.int64),
        "times": torch.stack(times) if times else torch.zeros(0),
        "values": torch.stack(values) if values else torch.zeros(0, cohort.p),
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
