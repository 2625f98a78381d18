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

from ._utils import check_choice, check_float, check_int

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
    rows = tuple(tuple(check_float("ode_params", a) for a in row) for row in value)
    if len(rows) != 2 or any(len(row) != 4 for row in rows):
        raise ValueError(
            "ode_params must be two rows (a11, a12, a21, a22), one per group, "
            f"got {value!r}"
        )
    return rows


def _check_u0(value) -> tuple:
    """``value`` as ``(u1, u2)`` of floats."""
    entries = tuple(check_float("u0", u) for u in value)
    if len(entries) != 2:
        raise ValueError(f"u0 must be two numbers (u1, u2), got {value!r}")
    return entries


@dataclass
class Cohort:
    """A cohort of individuals with irregular visits.

    The constructor converts its arguments (numpy arrays and nested lists
    are accepted for the tensors) and never modifies the caller's lists.

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
        self.xs = [torch.as_tensor(x, dtype=torch.float32) for x in self.xs]
        self.ts = [torch.as_tensor(t, dtype=torch.float32) for t in self.ts]
        self.baseline = torch.as_tensor(self.baseline, dtype=torch.float32)
        self.groups = torch.as_tensor(self.groups).to(torch.int64)
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

    def time_grid(self) -> torch.Tensor:
        """The 0.1 grid from 0 to the latest visit, float32 ``(T,)`` (for plots)."""
        return torch.tensor(grid_times(0.0, round(self.t_end, 1)), dtype=torch.float32)

    def first_visits(self, ids=None) -> torch.Tensor:
        """Baseline visits ``(B, p)`` of the individuals ``ids`` (default all)."""
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
        for column in ["id", "group", "visit", "time", *x_cols, *b_cols]:
            values = frame[column]
            if not pd.api.types.is_numeric_dtype(values) or values.isna().any():
                raise ValueError(
                    f"frame column {column!r} must hold numbers and no missing "
                    f"(NaN) values, got dtype {values.dtype} and "
                    f"{values.isna().sum()} NaN"
                )
        if not frame["group"].isin([1, 2]).all():
            values = sorted(set(frame["group"].tolist()))
            raise ValueError(f"frame column 'group' must be 1 or 2, got {values}")
        if all(c in names for c in TRUE_PARAM_COLUMNS + TRUE_U0_COLUMNS):
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
    """``(ode_params, u0)`` from the ``true_*`` columns of a frame: the first
    row of each group (``fallback`` for a group with no rows)."""
    rows = list(fallback)
    for group, block in frame.groupby("group", sort=True):
        rows[int(group) - 1] = tuple(block[list(TRUE_PARAM_COLUMNS)].iloc[0])
    return rows, tuple(frame[list(TRUE_U0_COLUMNS)].iloc[0])


def _check_simulation_args(n, p, q, q_info, baseline, maxntps, t_start, t_end,
                           sigma_var, sigma_ind, ode_params, u0):  # fmt: skip
    check_int("n", n, minimum=2)
    if check_int("p", p, minimum=2) % 2:
        raise ValueError(f"p must be even (half copy each state), got {p}")
    check_int("q", q, minimum=0)
    if check_int("q_info", q_info, minimum=0) > q or q_info % 2:
        raise ValueError(f"q_info must be even and at most q={q}, got {q_info}")
    check_choice("baseline", baseline, BASELINE_STRATEGIES)
    check_int("maxntps", maxntps, minimum=1)
    grid = (check_float("t_start", t_start, minimum=0, strict=True) / DT,
            check_float("t_end", t_end) / DT)  # fmt: skip
    if t_start >= t_end or max(abs(g - round(g)) for g in grid) > 1e-6:
        raise ValueError(
            f"t_start and t_end must be multiples of {DT} with t_start < t_end, "
            f"got {t_start} and {t_end}"
        )
    check_float("sigma_var", sigma_var, minimum=0)
    check_float("sigma_ind", sigma_ind, minimum=0)
    return _check_ode_params(ode_params), _check_u0(u0)


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
    ode_params, u0 = _check_simulation_args(**settings)
    check_int("seed", seed, minimum=0)
    return _draw_cohort(settings, seed, ode_params, u0)


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
        and a dict with ``ids`` (int64 ``(m,)``, individuals with a held-out
        visit), ``times`` (float32 ``(m,)``) and ``values`` (float32 ``(m, p)``).
        All tensors are new copies that share no memory with ``cohort``.
    """
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
