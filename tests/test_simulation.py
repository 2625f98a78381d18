"""The simulated cohort matches the specification (closed forms, shapes, noise)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import helpers
from helpers.simulation import grid_times


@pytest.fixture(scope="module")
def cohort():
    return helpers.simulate_cohort()


def test_true_trajectories_match_closed_form(cohort):
    times = torch.tensor([0.0, 5.0, 10.0])
    group1 = cohort.true_trajectory(1, times)
    group2 = cohort.true_trajectory(2, times)
    expected1 = [[2.0, 1.0], [0.7358, 0.3679], [0.2707, 0.1353]]
    expected2 = [[2.0, 1.0], [0.7358, 2.7183], [0.2707, 7.3891]]
    assert torch.allclose(group1, torch.tensor(expected1), atol=1e-4)
    assert torch.allclose(group2, torch.tensor(expected2), atol=1e-4)
    t = torch.linspace(0, 10, 7)
    assert torch.allclose(group2[:, 1], torch.exp(0.2 * times))
    full = helpers.true_states((-1.0, 0.0, 0.5, 1.0), (2.0, 1.0), t)
    closed = torch.stack(
        [2 * torch.exp(-t), 1.5 * torch.exp(t) - 0.5 * torch.exp(-t)], 1
    )
    assert torch.allclose(full.float(), closed, rtol=1e-5)
    with pytest.raises(ValueError, match="matrix must be a 2x2 matrix"):
        helpers.true_states((-0.2, 0.2), (2.0, 1.0), t)


def test_shapes_groups_and_visit_grid(cohort):
    assert cohort.n == 100 and cohort.p == 10 and cohort.q == 50
    assert cohort.baseline.shape == (100, 50) and cohort.baseline.dtype == torch.float32
    assert cohort.groups.dtype == torch.int64
    assert (
        int((cohort.groups == 1).sum()) == 50 and int((cohort.groups == 2).sum()) == 50
    )
    allowed = set(np.round(grid_times(1.5, 10.0), 6))
    for x, t in zip(cohort.xs, cohort.ts):
        assert x.dtype == torch.float32 and x.shape == (len(t), 10)
        assert t[0] == 0.0 and 2 <= len(t) <= 11
        assert bool((t[1:] >= t[:-1]).all())
        assert set(np.round(t[1:].double().numpy(), 6)) <= allowed
    counts = torch.tensor([len(t) - 1 for t in cohort.ts])
    assert counts.min() == 1 and counts.max() == 10


def test_odd_group_size_uses_floor():
    small = helpers.simulate_cohort(n=7, seed=3)
    assert int((small.groups == 1).sum()) == 3


def test_noise_levels_match_the_standard_deviations():
    big = helpers.simulate_cohort(n=2000, sigma_var=0.0, sigma_ind=0.5, seed=1)
    residuals = []
    for x, t, g in zip(big.xs, big.ts, big.groups):
        truth = big.true_trajectory(int(g), t)[:, [0] * 5 + [1] * 5]
        residuals.append(x - truth)
    residuals = torch.cat(residuals)
    assert abs(residuals.mean().item()) < 0.01
    assert abs(residuals.std().item() - 0.5) < 0.01
    # the per-variable offsets are shared, so they show as column means; with
    # 400 variables their spread estimates sigma_var (a standard deviation)
    wide = helpers.simulate_cohort(n=200, p=400, sigma_var=0.1, sigma_ind=0.05,
                                   seed=2)  # fmt: skip
    which_state = [0] * 200 + [1] * 200
    columns = torch.cat(
        [
            x - wide.true_trajectory(int(g), t)[:, which_state]
            for x, t, g in zip(wide.xs, wide.ts, wide.groups)
        ]
    ).mean(0)
    assert abs(columns.std().item() - 0.1) < 0.015  # not 0.1 ** 0.5 = 0.32


@pytest.mark.parametrize("strategy", ["trueparams", "groupsonly"])
def test_baseline_strategies(strategy):
    big = helpers.simulate_cohort(n=4000, baseline=strategy, seed=5)
    means = {g: big.baseline[big.groups == g].mean(0) for g in (1, 2)}
    sds = big.baseline[big.groups == 1].std(0)
    if strategy == "trueparams":
        assert torch.allclose(means[1][:5], torch.tensor(-0.2), atol=0.01)
        assert torch.allclose(means[2][:5], torch.tensor(-0.2), atol=0.01)
        assert torch.allclose(means[1][5:10], torch.tensor(-0.2), atol=0.01)
        assert torch.allclose(means[2][5:10], torch.tensor(0.2), atol=0.01)
        assert torch.allclose(sds, torch.tensor(0.1), atol=0.01)
    else:
        assert torch.allclose(means[1][:10], torch.tensor(-1.0), atol=0.08)
        assert torch.allclose(means[2][:10], torch.tensor(1.0), atol=0.08)
        assert torch.allclose(sds, torch.tensor(1.0), atol=0.08)
    assert torch.allclose(means[1][10:], torch.tensor(0.0), atol=0.08)
    assert torch.allclose(means[2][10:], torch.tensor(0.0), atol=0.08)


def test_same_seed_same_data_other_seed_other_data():
    a, b = helpers.simulate_cohort(seed=4), helpers.simulate_cohort(seed=4)
    c = helpers.simulate_cohort(seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.xs, b.xs))
    assert torch.equal(a.baseline, b.baseline) and torch.equal(a.groups, b.groups)
    assert not torch.equal(a.baseline, c.baseline)


def test_frame_round_trip_is_lossless(cohort, tmp_path):
    frame = cohort.to_frame()
    assert len(frame) == sum(len(t) for t in cohort.ts)
    assert list(frame.columns[:6]) == ["id", "group", "visit", "time", "x1", "x2"]
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False, float_format="%.9g")
    back = helpers.load_cohort(path)
    assert all(torch.equal(x, y) for x, y in zip(cohort.xs, back.xs))
    assert all(torch.equal(x, y) for x, y in zip(cohort.ts, back.ts))
    assert torch.equal(cohort.baseline, back.baseline)
    assert torch.equal(cohort.groups, back.groups)


def test_shipped_csv_is_the_default_simulation(cohort):
    shipped = helpers.load_cohort()
    assert all(torch.equal(x, y) for x, y in zip(cohort.xs, shipped.xs))
    assert all(torch.equal(x, y) for x, y in zip(cohort.ts, shipped.ts))
    assert torch.equal(cohort.baseline, shipped.baseline)
    assert torch.equal(cohort.groups, shipped.groups)
    assert shipped.ode_params == cohort.ode_params and shipped.u0 == cohort.u0
    frame = pd.read_csv(helpers.data_path("cohort.csv"))
    assert frame.shape == (720, 70)
    # the file is exactly the call in data/README.md
    text = cohort.to_frame().to_csv(
        index=False, float_format="%.9g", lineterminator="\n"
    )
    assert helpers.data_path("cohort.csv").read_text() == text


def test_true_dynamics_travel_through_a_csv_file(tmp_path):
    params = ((-0.3, 0.1, -0.05, -0.1), (-0.25, 0.0, 0.125, 0.15))
    start = (1.5, -0.75)
    cohort = helpers.simulate_cohort(n=12, q=4, q_info=2, ode_params=params, u0=start)
    frame = cohort.to_frame()
    group_of_row = frame["group"].to_numpy()
    for k, column in enumerate(["true_a11", "true_a12", "true_a21", "true_a22"]):
        expected = np.where(group_of_row == 1, params[0][k], params[1][k])
        assert np.array_equal(frame[column].to_numpy(), expected)
    assert (frame["true_u1_0"] == 1.5).all() and (frame["true_u2_0"] == -0.75).all()
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False, float_format="%.9g")
    back = helpers.load_cohort(path)  # the default ode_params/u0 are not used
    assert back.ode_params == params and back.u0 == start
    assert all(torch.equal(x, y) for x, y in zip(cohort.xs, back.xs))
    assert all(torch.equal(x, y) for x, y in zip(cohort.ts, back.ts))
    assert torch.equal(cohort.baseline, back.baseline)
    assert torch.equal(cohort.groups, back.groups)
    assert torch.allclose(
        back.true_trajectory(2, [0.0, 3.0]), cohort.true_trajectory(2, [0.0, 3.0])
    )
    # a table without the true_* columns falls back to the arguments
    plain = frame.drop(columns=[c for c in frame.columns if c.startswith("true_")])
    assert (
        helpers.Cohort.from_frame(plain).ode_params
        == helpers.simulate_cohort(n=2).ode_params
    )
    assert helpers.Cohort.from_frame(plain, ode_params=params, u0=start).u0 == start
    # a group with no rows takes its matrix from the argument
    only_two = frame[frame["group"] == 2]
    assert helpers.Cohort.from_frame(only_two).ode_params == (
        (-0.2, 0.0, 0.0, -0.2),
        params[1],
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(group=f["group"].where(f.index != 3)), "'group'.*NaN"),
        (lambda f: f.assign(b2=f["b2"].where(f.index != 1)), "'b2'.*NaN"),
        (lambda f: f.assign(group=f["group"] + 1), "'group' must be 1 or 2"),
        (lambda f: f.assign(x2="a"), "'x2' must hold numbers.*got dtype"),
        (lambda f: f.drop(columns="time"), r"missing \['time'\]"),
        (lambda f: f.assign(true_a12=np.inf), "ode_params must be a finite number"),
    ],
)
def test_from_frame_rejects_bad_tables(cohort, edit, message):
    frame = cohort.subset(range(6)).to_frame()
    with pytest.raises(ValueError, match=message):
        helpers.Cohort.from_frame(edit(frame))


def test_split_last_visit(cohort):
    train_cohort, heldout = helpers.split_last_visit(cohort)
    ids = heldout["ids"].tolist()
    assert ids == [i for i, t in enumerate(cohort.ts) if len(t) >= 3]
    for k, i in enumerate(ids):
        assert torch.equal(heldout["values"][k], cohort.xs[i][-1])
        assert heldout["times"][k] == cohort.ts[i][-1]
        assert torch.equal(train_cohort.xs[i], cohort.xs[i][:-1])
    kept = [i for i in range(cohort.n) if i not in ids]
    assert kept and all(torch.equal(train_cohort.xs[i], cohort.xs[i]) for i in kept)


def test_split_last_visit_copies_instead_of_sharing_memory():
    cohort = helpers.simulate_cohort(n=10, q=4, q_info=2, seed=3)
    original = [x.clone() for x in cohort.xs], [t.clone() for t in cohort.ts]
    baseline, groups = cohort.baseline.clone(), cohort.groups.clone()
    train_cohort, heldout = helpers.split_last_visit(cohort)
    for x, t in zip(train_cohort.xs, train_cohort.ts):
        x.add_(100.0)
        t.add_(100.0)
    train_cohort.baseline.add_(100.0)
    train_cohort.groups.fill_(1)
    heldout["values"].add_(100.0)
    heldout["times"].add_(100.0)
    assert all(torch.equal(x, y) for x, y in zip(cohort.xs, original[0]))
    assert all(torch.equal(t, s) for t, s in zip(cohort.ts, original[1]))
    assert torch.equal(cohort.baseline, baseline)
    assert torch.equal(cohort.groups, groups)
    # ... and the other way round
    again, _ = helpers.split_last_visit(cohort)
    cohort.xs[0].zero_()
    cohort.baseline.zero_()
    assert not torch.equal(again.xs[0], cohort.xs[0][: len(again.xs[0])])
    assert not torch.equal(again.baseline, cohort.baseline)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 9}, "p must be even"),
        ({"t_start": 5.0, "t_end": 2.0}, "t_start < t_end, got 5.0 and 2.0"),
        ({"baseline": "age"}, "baseline must be one of"),
        ({"n": 1}, "n must be an integer >= 2"),
        ({"maxntps": 0}, "maxntps must be an integer >= 1"),
        ({"q_info": 60}, "q_info must be even"),
        ({"sigma_ind": -1.0}, "sigma_ind must be"),
        ({"sigma_var": math.nan}, "sigma_var must be"),
        ({"t_start": 1.55}, "multiples of 0.1"),
        ({"ode_params": ((1, 2, 3), (1, 2, 3))}, "ode_params must be two rows"),
        ({"ode_params": (("a", 0, 0, 0), (0, 0, 0, 0))}, "ode_params must be a number"),
        ({"u0": (1.0,)}, "u0 must be"),
    ],
)
def test_bad_simulation_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        helpers.simulate_cohort(**kwargs)


def test_cohort_copies_the_lists_and_converts_arrays(cohort):
    xs, ts = list(cohort.xs[:3]), list(cohort.ts[:3])
    xs[0] = xs[0].double()  # to be converted to float32
    ids_before = [id(x) for x in xs]
    small = helpers.Cohort(xs=xs, ts=ts, baseline=cohort.baseline[:3], groups=[1, 2, 2])
    assert [id(x) for x in xs] == ids_before and xs[0].dtype == torch.float64
    assert small.xs is not xs and small.xs[0].dtype == torch.float32
    arrays = helpers.Cohort(
        xs=[x.numpy() for x in cohort.xs[:3]],
        ts=[t.numpy().astype(np.float64) for t in cohort.ts[:3]],
        baseline=cohort.baseline[:3].numpy(),
        groups=np.array([1.0, 2.0, 2.0]),
    )
    assert all(torch.equal(x, y) for x, y in zip(arrays.xs, cohort.xs[:3]))
    assert all(torch.equal(t, s) for t, s in zip(arrays.ts, cohort.ts[:3]))
    assert arrays.ts[0].dtype == torch.float32
    assert torch.equal(arrays.groups, torch.tensor([1, 2, 2]))


def test_make_batch_accepts_integer_ids_of_any_kind(cohort):
    reference = helpers.make_batch(cohort, [3, 0, 5])
    for ids in (np.array([3, 0, 5]), torch.tensor([3, 0, 5], dtype=torch.int32)):
        batch = helpers.make_batch(cohort, ids)
        assert torch.equal(batch.ids, reference.ids) and batch.ids.dtype == torch.int64
        assert torch.equal(batch.x, reference.x)
    assert torch.equal(helpers.make_batch(cohort, 4).x, cohort.xs[4])
    visit_times = torch.cat([cohort.ts[i] for i in (3, 0, 5)])
    assert torch.equal(reference.t, visit_times)
    assert torch.equal(reference.x[reference.first_row],
                       cohort.first_visits([3, 0, 5]))  # fmt: skip
