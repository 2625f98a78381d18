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
    # the per-variable offsets are shared, so they show as column means
    shifted = helpers.simulate_cohort(n=2000, sigma_var=1.0, sigma_ind=0.1, seed=2)
    columns = torch.cat(
        [
            x - shifted.true_trajectory(int(g), t)[:, [0] * 5 + [1] * 5]
            for x, t, g in zip(shifted.xs, shifted.ts, shifted.groups)
        ]
    ).mean(0)
    assert columns.std().item() > 0.3  # offsets ~ N(0, 1), not N(0, 0.1)


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
    assert torch.equal(cohort.baseline, shipped.baseline)


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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 9}, "p must be even"),
        ({"t_start": 5.0, "t_end": 2.0}, "t_start must be smaller"),
        ({"baseline": "age"}, "baseline must be one of"),
        ({"n": 1}, "n must be an integer >= 2"),
        ({"maxntps": 0}, "maxntps must be an integer >= 1"),
        ({"q_info": 60}, "q_info must be even"),
        ({"sigma_ind": -1.0}, "sigma_ind must be"),
        ({"sigma_var": math.nan}, "sigma_var must be"),
        ({"t_start": 1.55}, "multiple of 0.1"),
        ({"ode_params": (1, 2, 3)}, "ode_params must be"),
        ({"u0": (1.0,)}, "u0 must be"),
    ],
)
def test_bad_simulation_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        helpers.simulate_cohort(**kwargs)


def test_cohort_rejects_nan_and_mismatched_shapes(cohort):
    xs = [x.clone() for x in cohort.xs]
    xs[3][1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        helpers.Cohort(
            xs=xs, ts=cohort.ts, baseline=cohort.baseline, groups=cohort.groups
        )
    with pytest.raises(ValueError, match="shape"):
        helpers.Cohort(
            xs=cohort.xs,
            ts=[t[:-1] for t in cohort.ts],
            baseline=cohort.baseline,
            groups=cohort.groups,
        )
    with pytest.raises(ValueError, match="groups"):
        helpers.Cohort(
            xs=cohort.xs,
            ts=cohort.ts,
            baseline=cohort.baseline,
            groups=torch.zeros(cohort.n),
        )
    with pytest.raises(ValueError, match="columns"):
        helpers.Cohort.from_frame(pd.DataFrame({"id": [0]}))
