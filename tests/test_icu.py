"""Tests of helpers.icu: the loss on hand-made series, gradients, the
vectorised loss and fit against the loop, the fallback, the simulator, the
model comparison and the plots."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import data_path, icu

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def beta_of(*values):
    return torch.tensor(values, dtype=torch.float64)


# ---------------------------------------------------------------- the loss


def test_loss_all_reported_matches_hand_computation():
    # day 1: increment 0.5 + 0.1 * 1 + 0.2 * 2 = 1.0 -> 2.0, report 3: error 1
    # day 2: increment 0.5 + 0.1 * 3 + 0.2 * 1 = 1.0 -> 4.0, report 4: error 0
    loss = icu.increment_loss([1, 3, 4], [2, 1, 0], [1, 1, 1], beta_of(0.5, 0.1, 0.2))
    assert loss.item() == pytest.approx(0.5)


def test_loss_bridges_a_gap_with_compounded_predictions():
    # day 1 not reported: 2 + (1 + 0.5 * 2) = 4 is carried forward
    # day 2: 4 + (1 + 0.5 * 4) = 7 against the report 9: error 4, one term
    y, z, reported = [2, 2, 9], [0, 0, 0], [True, False, True]
    assert icu.increment_loss(y, z, reported, beta_of(1, 0.5, 0)).item() == 4.0
    # the published (carried) value of day 1 plays no role
    carried = icu.increment_loss([2, 100, 9], z, reported, beta_of(1, 0.5, 0))
    assert carried.item() == 4.0


def test_loss_skips_days_before_the_first_report():
    reported = [False, False, True, True]
    beta = beta_of(1, 0, 0)
    assert icu.increment_loss([0, 0, 3, 6], [0, 0, 0, 0], reported, beta).item() == 4.0
    # nothing before the first report matters
    other = icu.increment_loss([7, 5, 3, 6], [9, 9, 0, 0], reported, beta)
    assert other.item() == 4.0


def test_loss_uses_yesterdays_incidence():
    # the increment into day 1 uses z[0] = 10, not z[1] = 0
    loss = icu.increment_loss([0, 1], [10, 0], [1, 1], beta_of(0, 0, 0.1))
    assert loss.item() == pytest.approx(0.0)


def test_loss_with_a_single_report_is_zero_with_zero_gradient():
    beta = beta_of(0.3, -0.2, 0.1).requires_grad_()
    loss = icu.increment_loss([0, 5, 5], [1, 2, 3], [False, True, False], beta)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(beta.grad, torch.zeros(3, dtype=torch.float64))


def test_loss_divides_by_the_number_of_compared_days():
    # reported on days 0, 2, 3: two compared days, errors 1 and 4
    y, z, reported = [0, 0, 1, 3], [0, 0, 0, 0], [1, 0, 1, 1]
    # beta = 0: predictions stay at the last value: day 2 -> 0 (error 1),
    # day 3 -> 1 (error 4)
    assert icu.increment_loss(y, z, reported, beta_of(0, 0, 0)).item() == 2.5


def test_loss_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(3)
    y = torch.randint(0, 20, (30,), generator=generator).double()
    z = torch.rand(30, generator=generator, dtype=torch.float64) * 40
    reported = torch.rand(30, generator=generator) > 0.3
    reported[[0, 5]] = False  # a late start
    beta = torch.tensor([0.4, -0.1, 0.05], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda b: icu.increment_loss(y, z, reported, b), (beta,)
    )
    # and a plain central difference on one coefficient, by hand
    (grad,) = torch.autograd.grad(icu.increment_loss(y, z, reported, beta), beta)
    step = 1e-6
    shift = torch.tensor([0.0, step, 0.0], dtype=torch.float64)
    with torch.no_grad():
        up = icu.increment_loss(y, z, reported, beta + shift)
        down = icu.increment_loss(y, z, reported, beta - shift)
    assert grad[1].item() == pytest.approx(((up - down) / (2 * step)).item(), rel=1e-6)


def test_batched_loss_gradient_matches_finite_differences():
    data = icu.simulate_hospitals(n_hospitals=4, n_days=20, seed=5)
    arrays = icu.to_arrays(data)
    beta = torch.tensor([[0.2, -0.1, 0.05]] * 4, dtype=torch.float64)
    beta.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda b: icu.increment_loss_batched(
            arrays.y, arrays.z, arrays.reported, b
        ),
        (beta,),
    )


# ------------------------------------------------- vectorised equals the loop


@pytest.fixture(scope="module")
def small():
    data, truth = icu.simulate_hospitals(n_hospitals=60, seed=11, return_truth=True)
    return data, truth, icu.to_arrays(data)


def test_batched_loss_equals_loop_in_value_and_gradient(small):
    _, _, arrays = small
    generator = torch.Generator().manual_seed(0)
    base = torch.tensor([0.3, -0.1, 0.08], dtype=torch.float64)
    noise = 0.05 * torch.randn(60, 3, generator=generator, dtype=torch.float64)
    beta = (base + noise).requires_grad_()
    batched = icu.increment_loss_batched(arrays.y, arrays.z, arrays.reported, beta)
    looped = torch.stack(
        [
            icu.increment_loss(arrays.y[h], arrays.z[h], arrays.reported[h], beta[h])
            for h in range(60)
        ]
    )
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-12)
    (grad_batched,) = torch.autograd.grad(batched.sum(), beta)
    (grad_looped,) = torch.autograd.grad(looped.sum(), beta)
    torch.testing.assert_close(grad_batched, grad_looped, rtol=1e-10, atol=1e-10)


def test_bridged_values_follow_the_loop_by_hand():
    y = torch.tensor([[0.0, 2, 2, 9]])
    reported = torch.tensor([[False, True, False, True]])
    y_tilde, predicted = icu.bridged_values(
        y, torch.zeros(1, 4), reported, beta_of(1, 0.5, 0)[None]
    )
    torch.testing.assert_close(
        y_tilde, torch.tensor([[math.nan, 2, 4, 9]], dtype=torch.float64),
        equal_nan=True,
    )
    torch.testing.assert_close(
        predicted, torch.tensor([[math.nan, math.nan, 4, 7]], dtype=torch.float64),
        equal_nan=True,
    )


def test_vectorised_fit_equals_per_hospital_loop(small):
    _, _, arrays = small
    rows = slice(0, 4)
    args = (arrays.y[rows], arrays.z[rows], arrays.reported[rows])
    fast = icu.fit_increment_model(*args, steps=40, lr=0.05)
    slow = icu.fit_increment_model(*args, steps=40, lr=0.05, vectorised=False)
    torch.testing.assert_close(fast, slow, rtol=1e-8, atol=1e-10)


def test_fit_reaches_least_squares_on_complete_series(small):
    # with every day reported the loss is ordinary least squares of the
    # increments on (1, y(t), z(t)), whose minimum numpy finds exactly
    arrays = small[2]
    complete = np.flatnonzero(arrays.reported.all(dim=1).numpy())[:10]
    assert complete.size >= 5
    fitted = icu.fit_increment_model(
        arrays.y[complete], arrays.z[complete], arrays.reported[complete]
    )
    for row, beta in zip(complete, fitted):
        y, z = arrays.y[row].numpy(), arrays.z[row].numpy()
        design = np.column_stack([np.ones(y.size - 1), y[:-1], z[:-1]])
        exact, *_ = np.linalg.lstsq(design, np.diff(y), rcond=None)
        np.testing.assert_allclose(beta.numpy(), exact, rtol=1e-4, atol=1e-4)


def test_fit_marks_hospitals_with_fewer_than_two_reports_as_not_fitted():
    y = torch.tensor([[0.0, 4, 4, 4], [1, 2, 3, 4]])
    reported = torch.tensor([[False, True, False, False], [True] * 4])
    beta = icu.fit_increment_model(y, torch.ones(2, 4), reported, steps=5)
    assert torch.isnan(beta[0]).all()
    assert torch.isfinite(beta[1]).all()


# ------------------------------------------------------------- the fallback


def test_needs_fallback_flags_nan_and_large_coefficients():
    beta = torch.tensor(
        [[0.1, -0.1, 0.1], [math.nan, 0, 0], [0, 10.5, 0], [-11, 0, 0], [10, -10, 10]],
        dtype=torch.float64,
    )
    assert icu.needs_fallback(beta).tolist() == [False, True, True, True, False]
    assert icu.needs_fallback(beta, max_abs=0.05).tolist() == [True] * 5
    with pytest.raises(ValueError, match=r"beta must have shape \(n_hospitals, 3\)"):
        icu.needs_fallback(beta[0])


def test_last_day_predictions_use_the_mean_model_where_the_fit_is_distrusted(
    monkeypatch,
):
    data = icu.simulate_hospitals(n_hospitals=3, n_days=12, seed=1)
    data.loc[data["day"] < 11, "reported"] = True
    data.loc[data["day"] == 11, "reported"] = True
    huge = torch.tensor(
        [[0.1, -0.1, 0.01], [50.0, 0, 0], [math.nan] * 3], dtype=torch.float64
    )
    monkeypatch.setattr(icu, "fit_increment_model", lambda *a, **k: huge.clone())
    predictions = icu.last_day_predictions(data)
    assert predictions["fallback"].tolist() == [False, True, True]
    fell_back = predictions.iloc[1:]
    np.testing.assert_allclose(fell_back["increment model"], fell_back["mean"])
    np.testing.assert_allclose(fell_back[icu.AS_ORIGINAL], fell_back["mean"])
    kept = predictions.iloc[0]
    arrays = icu.to_arrays(data)
    y, z = arrays.y[0], arrays.z[0]
    expected = 0.1 - 0.1 * y[-2] + 0.01 * z[-2]
    assert kept["increment model"] == pytest.approx(expected.item())
    # every day reported: both starting values are the report
    assert kept[icu.AS_ORIGINAL] == pytest.approx(expected.item())


def test_last_day_predictions_start_from_the_bridged_or_the_published_value(
    monkeypatch,
):
    data = icu.simulate_hospitals(n_hospitals=1, n_days=12, seed=1)
    data["reported"] = data["day"] != 10  # the day before the last is missing
    data.loc[10, "cases"] = data.loc[9, "cases"]  # published: carried forward
    b1, b2, b3 = 0.5, -0.1, 0.02
    beta = torch.tensor([[b1, b2, b3]], dtype=torch.float64)
    monkeypatch.setattr(icu, "fit_increment_model", lambda *a, **k: beta.clone())
    row = icu.last_day_predictions(data).iloc[0]
    y = data["cases"].to_numpy(dtype=float)
    z = data["incidence"].to_numpy()
    assert row["gap_before_last"] and row["observed"] == y[11] - y[10]
    assert row["days_missing_before_last"] == 1
    # bridged: day 10 is y[9] plus the predicted increment, then one more step
    bridged = y[9] + b1 + b2 * y[9] + b3 * z[9]
    from_bridged = bridged + b1 + b2 * bridged + b3 * z[10] - y[10]
    assert row["increment model"] == pytest.approx(from_bridged)
    # as the original: the increment predicted from the published y[10]
    assert row[icu.AS_ORIGINAL] == pytest.approx(b1 + b2 * y[10] + b3 * z[10])
    assert row["increment model"] != pytest.approx(row[icu.AS_ORIGINAL])


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([1, 2, 3], [1, 2], [1, 1, 1]), "same length"),
        (([1, 2, 3], [1, 2, 3], [0, 0, 0]), "at least one reported day"),
        (([1, math.nan, 3], [1, 2, 3], [1, 1, 1]), "y contains NaN"),
        (([1, 2, 3], [1, 2, math.inf], [1, 1, 1]), "z contains NaN"),
        (([1, 2, 3], [1, 2, 3], [1, 2, 1]), "reported must hold booleans"),
        (([[1, 2, 3]], [1, 2, 3], [1, 1, 1]), "y must have shape"),
    ],
)
def test_loss_rejects_bad_series(arguments, message):
    with pytest.raises(ValueError, match=message):
        icu.increment_loss(*arguments, beta_of(0, 0, 0))


def test_loss_rejects_a_beta_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        icu.increment_loss([1, 2], [1, 2], [1, 1], beta_of(0, 0))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("abc", [1, 2, 3], [1, 1, 1], beta_of(0, 0, 0)),
         r"y must be a tensor, array or list of numbers, got 'abc'"),
        (([1, 2, 3], None, [1, 1, 1], beta_of(0, 0, 0)),
         r"z must be a tensor, array or list of numbers, got None"),
        (([1, 2, 3], [[1], [2, 3]], [1, 1, 1], beta_of(0, 0, 0)),
         r"z must be a tensor, array or list of numbers"),
        (([1, 2, 3], [1, 2, 3], ["a", "b", "c"], beta_of(0, 0, 0)),
         (r"reported must be a tensor, array or list of booleans or 0/1, "
          r"got \['a', 'b', 'c'\]")),
        (([1, 2, 3], [1, 2, 3], [1, 1, 1], "abc"),
         (r"beta must be a tensor, array or list of numbers, shape \(3,\), "
          r"got 'abc'")),
        (([1, 2, 3], [1, 2, 3], [1, 1, 1], [True, False, True]),
         r"beta must be real numbers"),
    ],
)
def test_loss_rejects_values_that_are_not_numbers(arguments, message):
    with pytest.raises(ValueError, match=message):
        icu.increment_loss(*arguments)


def test_batched_functions_reject_values_that_are_not_numbers():
    y = torch.ones(2, 5)
    reported = torch.ones(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="y must be a tensor, array or list"):
        icu.increment_loss_batched([["a"] * 5] * 2, y, reported, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="reported must be a tensor, array or"):
        icu.fit_increment_model(y, y, [["x"] * 5] * 2)
    with pytest.raises(ValueError, match="beta must be a tensor, array or list"):
        icu.bridged_values(y, y, reported, "abc")


def test_batched_functions_reject_bad_input():
    y, z = torch.ones(2, 5), torch.ones(2, 5)
    reported = torch.ones(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="same shape"):
        icu.increment_loss_batched(y, torch.ones(2, 4), reported, torch.zeros(2, 3))
    silent = reported.clone()
    silent[1] = False
    with pytest.raises(ValueError, match=r"rows \[1\] have none"):
        icu.fit_increment_model(y, z, silent)
    with pytest.raises(ValueError, match=r"beta must have shape \(2, 3\)"):
        icu.increment_loss_batched(y, z, reported, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        icu.fit_increment_model(y, z, reported, steps=0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        icu.fit_increment_model(y, z, reported, lr=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_hospitals": 0}, "n_hospitals must be an integer >= 1"),
        ({"n_days": 5}, "n_days must be an integer >= 10"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"settings": {"b1_mean": 1}}, "settings must be a SimulationSettings"),
    ],
)
def test_simulator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        icu.simulate_hospitals(**kwargs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hospitals_per_county", 0, r"hospitals_per_county must be an integer >= 1"),
        ("hospitals_per_county", 1.5, r"hospitals_per_county must be an integer"),
        ("max_gaps", 0, r"max_gaps must be an integer >= 1, got 0"),
        ("b1_mean", -0.1, r"b1_mean must be a finite number >= 0.0"),
        ("b3_mean", "0.1", r"b3_mean must be a number, got '0.1'"),
        ("size_sd", math.nan, r"size_sd must be a finite number"),
        ("sporadic_missing", 2.0, r"sporadic_missing must be a number in \[0, 1\]"),
        ("late_missing", -0.1, r"late_missing must be a finite number >= 0.0"),
        ("longest_gap", 1.5, r"longest_gap must be a number in \[0, 1\]"),
        ("pattern_probs", (0.5, 0.5, 0.5, 0.5), r"pattern_probs must sum to 1"),
        ("pattern_probs", (1.2, -0.2, 0, 0), r"pattern_probs\[1\] must be a finite"),
        ("pattern_probs", (0.5, 0.5), r"pattern_probs must be 4 probabilities"),
        ("pattern_probs", 1.0, r"pattern_probs must be 4 probabilities"),
        ("discharge_range", (0.15, 0.05), r"discharge_range .* with low <= high"),
        ("discharge_range", (0.0, 0.1), r"discharge_range\[0\] must be .* > 0.0"),
        ("discharge_range", (0.5, 1.5), r"discharge_range must have high <= 1.0"),
        ("incidence_start", (5.0, 1.0), r"incidence_start must be a pair"),
        ("incidence_peak", (-1.0, 10.0), r"incidence_peak\[0\] must be a finite"),
        ("wave_peak", (0.5,), r"wave_peak must be a pair \(low, high\)"),
        ("wave_peak", "ab", r"wave_peak must be a pair \(low, high\), got 'ab'"),
        ("wave_width", (0.0, 5.0), r"wave_width\[0\] must be a finite number > 0"),
    ],
)
def test_simulation_settings_reject_bad_fields(field, value, message):
    with pytest.raises(ValueError, match=message):
        icu.SimulationSettings(**{field: value})


def test_simulation_settings_accept_and_normalise_good_fields():
    settings = icu.SimulationSettings(
        pattern_probs=np.array([0.25, 0.25, 0.25, 0.25]),
        discharge_range=[0.1, 0.1],
        wave_peak=(1, 2),  # a wave still rising at the end is allowed
        sporadic_missing=1.0,
        longest_gap=0.3,
    )
    assert settings.pattern_probs == (0.25, 0.25, 0.25, 0.25)
    assert settings.discharge_range == (0.1, 0.1)
    assert settings.wave_peak == (1.0, 2.0)
    hash(settings)  # still frozen and hashable
    _, truth = icu.simulate_hospitals(
        n_hospitals=40, n_days=30, seed=0, settings=settings, return_truth=True
    )
    assert (truth.coefficients["b2"] == -0.1).all()
    # every sporadic hospital misses every day but the one it must report
    sporadic = truth.coefficients.query("pattern == 'sporadic'")
    assert (sporadic["n_missing"] == 29).all()


def test_gaps_last_three_days_to_longest_gap_times_n_days():
    # the documented gap lengths: 3 to max(3, int(longest_gap * n_days)) days,
    # 3 to 7 with the defaults and 70 days; one gap per hospital to see them
    settings = icu.SimulationSettings(pattern_probs=(0, 0, 1, 0), max_gaps=1)
    data = icu.simulate_hospitals(
        n_hospitals=400, n_days=70, seed=1, settings=settings
    )
    reported = icu.to_arrays(data).reported.numpy()
    lengths = []
    for row in reported:
        missed = np.flatnonzero(~row)
        if missed.size and missed[-1] < 69:  # not cut short by the last day
            assert np.all(np.diff(missed) == 1)  # one gap
            lengths.append(missed.size)
    assert min(lengths) == 3 and max(lengths) == 7


def test_to_arrays_rejects_malformed_data():
    data = icu.simulate_hospitals(n_hospitals=2, n_days=10, seed=0)
    with pytest.raises(ValueError, match="missing"):
        icu.to_arrays(data.drop(columns="incidence"))
    with pytest.raises(ValueError, match="exactly once"):
        icu.to_arrays(data.iloc[1:])
    with pytest.raises(ValueError, match="non-negative"):
        icu.to_arrays(data.assign(cases=data["cases"] - 1000))
    with pytest.raises(ValueError, match="incidence'\\] contains NaN"):
        icu.to_arrays(data.assign(incidence=np.nan))
    with pytest.raises(ValueError, match="boolean"):
        icu.to_arrays(data.assign(reported=data["reported"].astype(int)))
    silent = data.assign(reported=data["hospital"] == 0)
    with pytest.raises(ValueError, match=r"hospitals \[1\] never report"):
        icu.to_arrays(silent)
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        icu.to_arrays(data.to_numpy())


# ------------------------------------------------------------- the simulator


def test_simulator_is_deterministic_under_a_seed():
    first = icu.simulate_hospitals(n_hospitals=50, seed=7)
    second = icu.simulate_hospitals(n_hospitals=50, seed=7)
    other = icu.simulate_hospitals(n_hospitals=50, seed=8)
    pd.testing.assert_frame_equal(first, second)
    assert not first["cases"].equals(other["cases"])


def test_simulated_data_have_the_registry_shape(small):
    data, truth, arrays = small
    assert list(data.columns) == list(icu.COLUMNS)
    assert len(data) == 60 * 70
    assert data.dtypes.to_dict() == {
        "hospital": np.dtype("int64"),
        "day": np.dtype("int64"),
        "cases": np.dtype("int64"),
        "reported": np.dtype("bool"),
        "incidence": np.dtype("float64"),
    }
    assert (data["cases"] >= 0).all()
    assert (data["incidence"] > 0).all()
    y, reported = arrays.y.numpy(), arrays.reported.numpy()
    true_cases = truth.cases
    assert (true_cases >= 0).all()
    started = np.cumsum(reported, axis=1) > 0
    # reported days publish the truth, later gaps repeat the previous value,
    # days before the first report are published as 0
    np.testing.assert_array_equal(y[reported], true_cases[reported])
    carried = started[:, 1:] & ~reported[:, 1:]
    np.testing.assert_array_equal(y[:, 1:][carried], y[:, :-1][carried])
    assert (y[~started] == 0).all()
    assert reported.any(axis=1).all()


def test_simulator_reporting_patterns_and_coefficients():
    _, truth = icu.simulate_hospitals(return_truth=True)
    coefficients = truth.coefficients
    counts = coefficients["pattern"].value_counts(normalize=True)
    for pattern, probability in zip(icu.PATTERNS, (0.50, 0.25, 0.15, 0.10)):
        assert counts[pattern] == pytest.approx(probability, abs=0.05)
    complete = coefficients[coefficients["pattern"] == "complete"]
    assert (complete["n_missing"] == 0).all()
    late = coefficients[coefficients["pattern"] == "late start"]
    assert late["first_report"].between(7, 35).all()
    # coefficients drawn around the stated means
    assert coefficients["b2"].between(-0.15, -0.05).all()
    assert coefficients["b2"].mean() == pytest.approx(-0.10, abs=0.005)
    assert coefficients["size"].mean() == pytest.approx(1.0, abs=0.06)
    assert coefficients["b1"].mean() == pytest.approx(0.25, abs=0.02)
    assert coefficients["b3"].mean() == pytest.approx(0.10, abs=0.01)


def test_expected_increment_is_the_increment_model():
    # the generating process's mean increment is b1 + b2 * y + b3 * z: the
    # residuals of the true model average to zero within sampling error
    data, truth = icu.simulate_hospitals(n_hospitals=2000, seed=4, return_truth=True)
    coefficients = truth.coefficients
    y = truth.cases.astype(float)
    z = icu.to_arrays(data).z.numpy()
    b1, b2, b3 = (coefficients[name].to_numpy()[:, None] for name in ("b1", "b2", "b3"))
    residual = np.diff(y, axis=1) - (b1 + b2 * y[:, :-1] + b3 * z[:, :-1])
    standard_error = residual.std() / math.sqrt(residual.size)
    assert abs(residual.mean()) < 4 * standard_error
    # and they are unrelated to y and z (no correlation beyond noise)
    for covariate in (y[:, :-1], z[:, :-1]):
        correlation = np.corrcoef(residual.ravel(), covariate.ravel())[0, 1]
        assert abs(correlation) < 4 / math.sqrt(residual.size)


def test_shipped_csv_is_the_documented_simulation():
    shipped = icu.load_hospitals(data_path("icu_hospitals.csv"))
    again = icu.simulate_hospitals(n_hospitals=1000, n_days=70, seed=2022)
    pd.testing.assert_frame_equal(shipped, again)


# ------------------------------------------------------ comparing the models


@pytest.fixture(scope="module")
def shipped_predictions():
    data = icu.load_hospitals(data_path("icu_hospitals.csv"))
    return icu.last_day_predictions(data, published_pairing=True)


def test_summarise_errors_on_hand_made_predictions():
    predictions = pd.DataFrame(
        {"observed": [1.0, -2.0, 0.0]}
        | {model: [0.0, 0.0, 0.0] for model in icu.MODELS}
    )
    predictions["mean"] = [1.0, 1.0, 1.0]
    table = icu.summarise_errors(predictions)
    assert list(table.index) == list(icu.MODELS)
    assert table.loc["zero"].to_dict() == {
        "sse": 5.0, "mean": 5 / 3, "max": 4.0, "n_hospitals": 3
    }
    assert table.loc["mean", "sse"] == 0 + 9 + 1
    with pytest.raises(ValueError, match="missing"):
        icu.summarise_errors(predictions.drop(columns="zero"))


def test_compare_models_table_structure(shipped_predictions):
    table = icu.summarise_errors(shipped_predictions)
    assert list(table.index) == [*icu.MODELS, icu.PUBLISHED_PAIRING]
    assert list(table.columns) == ["sse", "mean", "max", "n_hospitals"]
    scored = len(shipped_predictions)
    assert 900 < scored < 1000  # hospitals whose last day was reported
    assert (table["n_hospitals"] == scored).all()
    np.testing.assert_allclose(table["sse"], table["mean"] * scored)
    assert (table["max"] >= table["mean"]).all()
    observed = shipped_predictions["observed"]
    assert table.loc["zero", "sse"] == pytest.approx((observed**2).sum())
    # the registry's increment-model result was predicted as the original did
    assert set(icu.PUBLISHED_LAST_DAY_SSE) == set(icu.MODELS) - {"increment model"}
    assert icu.PUBLISHED_LAST_DAY_SSE[icu.AS_ORIGINAL] == 74.75


def test_increment_model_variants_differ_only_after_a_missing_day(
    shipped_predictions,
):
    both = shipped_predictions[["increment model", icu.AS_ORIGINAL]]
    gap = shipped_predictions["gap_before_last"]
    assert 0 < gap.sum() < len(gap)
    np.testing.assert_array_equal(both[~gap].iloc[:, 0], both[~gap].iloc[:, 1])
    assert (both[gap].iloc[:, 0] != both[gap].iloc[:, 1]).all()
    missing = shipped_predictions["days_missing_before_last"]
    assert ((missing > 0) == gap).all()


def test_bridged_start_is_right_after_a_long_gap_on_noise_free_data():
    # a series that follows the model exactly, with 8 unreported days before
    # the last: the fit recovers beta, so the bridged start predicts the change
    # over the whole gap, while the published (stale) start predicts one day
    n_days, b1, b2, b3 = 30, 2.0, -0.1, 0.05
    z = 20 + 10 * np.sin(np.arange(n_days) / 4)
    y = np.empty(n_days)
    y[0] = 5.0
    for t in range(n_days - 1):
        y[t + 1] = y[t] + b1 + b2 * y[t] + b3 * z[t]
    reported = np.ones(n_days, dtype=bool)
    reported[-9:-1] = False
    published = y.copy()
    published[-9:-1] = y[-10]
    data = pd.DataFrame({
        "hospital": 0, "day": np.arange(n_days), "cases": published,
        "reported": reported, "incidence": z,
    })
    row = icu.last_day_predictions(data).iloc[0]
    assert row["days_missing_before_last"] == 8 and not row["fallback"]
    np.testing.assert_allclose([row["b1"], row["b2"], row["b3"]], [b1, b2, b3],
                               rtol=1e-3)
    observed = y[-1] - y[-10]
    assert row["observed"] == pytest.approx(observed)
    assert row["increment model"] == pytest.approx(observed, rel=1e-3)
    stale = b1 + b2 * y[-10] + b3 * z[-2]
    assert row[icu.AS_ORIGINAL] == pytest.approx(stale, rel=1e-3)
    assert abs(row[icu.AS_ORIGINAL] - observed) > 1


def test_increment_model_beats_the_zero_model_on_simulated_data(shipped_predictions):
    table = icu.summarise_errors(shipped_predictions)
    sse = table["sse"]
    assert sse["increment model"] < 0.95 * sse["zero"]
    # and the regression set up consistently beats the published pairing
    assert sse["LOCF + regression"] < sse[icu.PUBLISHED_PAIRING]


def test_compare_models_runs_end_to_end_on_a_small_simulation():
    data = icu.simulate_hospitals(n_hospitals=30, n_days=20, seed=3)
    table = icu.compare_models(data, steps=20)
    assert list(table.index) == list(icu.MODELS)
    assert table["sse"].notna().all()


# ------------------------------------------------------------- the plots


def test_plot_hospital_returns_a_labelled_figure(small):
    data, truth, arrays = small
    hospital = int(np.flatnonzero(~arrays.reported.all(dim=1).numpy())[0])
    beta = icu.fit_increment_model(
        arrays.y[hospital : hospital + 1],
        arrays.z[hospital : hospital + 1],
        arrays.reported[hospital : hospital + 1],
        steps=20,
    )[0]
    fig = icu.plot_hospital(
        data, hospital, beta=beta, true_cases=truth.cases[hospital]
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "day" and ax.get_ylabel() == "current ICU cases"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "model: bridged gap" in labels and "true cases (hidden)" in labels
    plt.close(fig)
    with pytest.raises(ValueError, match="hospital must be one of"):
        icu.plot_hospital(data, 999)


def test_plot_coefficients_draws_three_panels(shipped_predictions):
    _, truth = icu.simulate_hospitals(return_truth=True)
    fig = icu.plot_coefficients(shipped_predictions, truth.coefficients)
    assert [ax.get_xlabel() for ax in fig.axes] == ["true b1", "true b2", "true b3"]
    plt.close(fig)
