"""Tests of the ICU bonus: the notebook's loss cell against
helpers.bonus.icu_missing_reports,
gradients, the fits, the baselines, the simulator's mechanisms, reading the
CSV and the two plots."""

import re
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import data_path
from helpers.bonus import icu_missing_reports as icu

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from build_notebooks import hidden_solutions, parse_source

NOTEBOOK = ROOT / "notebooks" / "icu_missing_reports.py"


def notebook_cells():
    return parse_source(NOTEBOOK.read_text(), NOTEBOOK.name)


def solution(name):
    """The hidden solution's code for ``name`` (a collapsed markdown cell)."""
    blocks = hidden_solutions(notebook_cells(), name)
    assert blocks, f"no solution for {name}"
    return blocks[0]


def notebook_function(name):
    """The notebook's definition of ``name``: the code cell that defines it,
    or, for a "your turn" function, the hidden solution."""
    (source,) = [c.source for c in notebook_cells() if c.kind == "code"
                 and f"def {name}(" in c.source]
    if source.startswith("# Your turn"):
        source = solution(name)
    namespace = {"torch": torch, "icu": icu}
    code = compile(source, f"{NOTEBOOK.name}:{name}", "exec")
    exec(code, namespace)  # noqa: S102 (our own notebook cell, to test it)
    return namespace[name]


@pytest.fixture(scope="module")
def shipped():
    return icu.to_arrays(icu.load_hospitals(data_path("icu_hospitals.csv")))


def beta_of(*values):
    return torch.tensor(values, dtype=torch.float64)


# ---------------------------------------------------------------- the loss


def test_notebook_loss_equals_the_vectorised_loss_on_the_shipped_data(shipped):
    increment_loss = notebook_function("increment_loss")
    generator = torch.Generator().manual_seed(0)
    n = shipped.y.shape[0]
    beta = beta_of(0.05, -0.1, 0.03) + 0.02 * torch.randn(
        n, 3, generator=generator, dtype=torch.float64)
    beta.requires_grad_()
    batched = icu.increment_loss_batched(
        shipped.y, shipped.z, shipped.reported, beta)
    with torch.no_grad():
        looped = torch.stack([
            increment_loss(shipped.y[h], shipped.z[h], shipped.reported[h], beta[h])
            for h in range(n)
        ])
    torch.testing.assert_close(batched.detach(), looped, rtol=1e-12, atol=1e-12)
    some = range(0, n, 50)  # gradients: every 50th hospital
    (grad,) = torch.autograd.grad(batched.sum(), beta)
    for h in some:
        one = beta[h].detach().clone().requires_grad_()
        increment_loss(shipped.y[h], shipped.z[h], shipped.reported[h], one).backward()
        torch.testing.assert_close(grad[h], one.grad, rtol=1e-10, atol=1e-12)


def test_bridging_in_rounds_equals_the_loop_with_long_gaps_and_late_starts():
    # many long gaps and late starters, float32 series with a float64 beta
    increment_loss = notebook_function("increment_loss")
    data = icu.simulate_hospitals(60, 40, 7, settings=icu.SimulationSettings(
        gap_start=0.3, gap_length=6.0, late_start=0.5))
    a = icu.to_arrays(data)
    y, z = a.y.float(), a.z.float()
    beta = (beta_of(0.05, -0.1, 0.03) + 0.02 * torch.randn(
        60, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
            ).requires_grad_()
    batched = icu.increment_loss_batched(y, z, a.reported, beta)
    assert batched.dtype == torch.float64
    (grad,) = torch.autograd.grad(batched.sum(), beta)
    for h in range(60):
        one = beta[h].detach().clone().requires_grad_()
        looped = increment_loss(y[h].double(), z[h].double(), a.reported[h], one)
        looped.backward()
        torch.testing.assert_close(batched[h].detach(), looped.detach(),
                                   rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad[h], one.grad, rtol=1e-10, atol=1e-12)
    # the bridged values themselves, day by day as the notebook describes
    y_tilde, _ = icu.bridged_values(a.y, a.z, a.reported, beta.detach())
    b1, b2, b3 = beta.detach().unbind(dim=1)
    expected = torch.full_like(a.y, float("nan"))
    for t in range(40):
        bridge = b1 + (1 + b2) * expected[:, t - 1] + b3 * a.z[:, t - 1]
        expected[:, t] = torch.where(a.reported[:, t], a.y[:, t],
                                     bridge if t else expected[:, t])
    torch.testing.assert_close(y_tilde, expected, equal_nan=True)


def test_the_longest_gap_quoted_in_the_notebook(shipped):
    # section 5: "as many rounds as the longest gap (14 days here)"
    longest = 0
    for row in shipped.reported.numpy():
        first = row.argmax()
        run = 0
        for reported in row[first:]:
            run = 0 if reported else run + 1
            longest = max(longest, run)
    assert longest == 14


def test_notebook_loss_on_the_hand_example():
    increment_loss = notebook_function("increment_loss")
    loss = increment_loss([0, 0, 4, 4, 7, 9], [10, 10, 10, 20, 20, 20],
                          [False, False, True, False, True, True],
                          beta_of(0.5, -0.1, 0.1))
    assert loss.item() == pytest.approx(0.02405, abs=1e-12)


def batched(y, z, reported, beta):
    as_row = [torch.tensor([v], dtype=torch.float64) for v in (y, z)]
    return icu.increment_loss_batched(
        *as_row, torch.tensor([reported]).bool(), torch.atleast_2d(beta))[0]


def test_loss_bridges_gaps_and_ignores_carried_values():
    # day 1 unreported: 2 + (1 + 0.5 * 2) = 4 carried; day 2: 4 + 3 = 7 vs 9
    assert batched([2, 2, 9], [0, 0, 0], [1, 0, 1], beta_of(1, 0.5, 0)) == 4.0
    assert batched([2, 100, 9], [0, 0, 0], [1, 0, 1], beta_of(1, 0.5, 0)) == 4.0


def test_loss_skips_days_before_the_first_report_and_uses_yesterdays_z():
    reported = [False, False, True, True]
    assert batched([7, 5, 3, 6], [9, 9, 0, 0], reported, beta_of(1, 0, 0)) == 4.0
    assert batched([0, 1], [10, 0], [True, True], beta_of(0, 0, 0.1)) == 0.0


def test_loss_with_one_report_is_zero_with_zero_gradient():
    beta = beta_of(0.3, -0.2, 0.1).requires_grad_()
    loss = batched([0, 5, 5], [1, 2, 3], [False, True, False], beta)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(beta.grad, torch.zeros(3).double())


def test_loss_gradient_matches_finite_differences(shipped):
    y, z, r = shipped.y[:20], shipped.z[:20], shipped.reported[:20]
    beta = torch.full((20, 3), 0.05, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(
        icu.increment_loss_batched(y, z, r, beta).sum(), beta)
    h = 1e-6
    for j in range(3):
        step = torch.zeros(20, 3, dtype=torch.float64)
        step[:, j] = h
        with torch.no_grad():
            numeric = (icu.increment_loss_batched(y, z, r, beta + step)
                       - icu.increment_loss_batched(y, z, r, beta - step))
        torch.testing.assert_close(grad[:, j], numeric / (2 * h), rtol=1e-5,
                                   atol=1e-8)


def test_bridged_values_are_reports_on_reported_days_and_nan_before():
    y = torch.tensor([[0.0, 3.0, 3.0, 5.0]])
    reported = torch.tensor([[False, True, False, True]])
    y_tilde, predicted = icu.bridged_values(
        y, torch.zeros_like(y), reported, beta_of(1, 0, 0)[None])
    assert torch.isnan(y_tilde[0, 0]) and y_tilde[0, 1] == 3 and y_tilde[0, 3] == 5
    assert y_tilde[0, 2] == 4  # bridged: 3 + 1
    assert torch.isnan(predicted[0, :2]).all() and predicted[0, 3] == 5


# ---------------------------------------------------------------- fitting


def test_plain_gradient_descent_cell_equals_the_helper(shipped):
    plain = notebook_function("plain_gradient_descent")
    y, z, r = shipped.y[:30], shipped.z[:30], shipped.reported[:30]
    torch.testing.assert_close(
        plain(y, z, r, n_steps=20),
        icu.fit_plain_gradient_descent(y, z, r, n_steps=20), equal_nan=True)


def test_adam_fit_reaches_least_squares_on_complete_series():
    data = icu.simulate_hospitals(
        20, 40, 3, settings=icu.SimulationSettings(
            late_start=0, gap_start=0, admissions_per_incidence=1.0))
    a = icu.to_arrays(data)
    beta = icu.fit_increment_model(a.y, a.z, a.reported, n_steps=600)
    for h in range(20):
        design = torch.stack([torch.ones(39).double(), a.y[h, :-1], a.z[h, :-1]], 1)
        exact = torch.linalg.lstsq(design, a.y[h].diff()[:, None]).solution[:, 0]
        gap = (icu.increment_loss_batched(a.y[h:h+1], a.z[h:h+1],
                                                 a.reported[h:h+1], beta[h:h+1])
               / icu.increment_loss_batched(a.y[h:h+1], a.z[h:h+1],
                                                   a.reported[h:h+1], exact[None]))
        assert gap.item() == pytest.approx(1.0, abs=1e-4)


def test_hospitals_are_fitted_independently(shipped):
    y, z, r = shipped.y[:40], shipped.z[:40], shipped.reported[:40]
    together = icu.fit_increment_model(y, z, r, n_steps=50)
    alone = icu.fit_increment_model(y[7:8], z[7:8], r[7:8], n_steps=50)
    torch.testing.assert_close(together[7:8], alone)


def test_fit_arguments_are_checked(shipped):
    with pytest.raises(ValueError, match="n_steps"):
        icu.fit_increment_model(shipped.y, shipped.z, shipped.reported,
                                       n_steps=0)
    with pytest.raises(ValueError, match="n_steps"):
        icu.fit_plain_gradient_descent(shipped.y, shipped.z, shipped.reported,
                                       n_steps=1.5)
    with pytest.raises(ValueError, match="lr"):
        icu.fit_increment_model(shipped.y, shipped.z, shipped.reported,
                                       lr="0.1")


def test_fallback_rule():
    beta = torch.tensor([[0.0, 0.0, 0.0], [float("nan"), 0, 0], [0, -11.0, 0]])
    assert icu.needs_fallback(beta).tolist() == [False, True, True]


# ---------------------------------------------------------------- baselines


def test_last_day_baselines_by_hand():
    data = icu.simulate_hospitals(30, 20, 1)
    predictions = icu.last_day_predictions(data, n_steps=20)
    a = icu.to_arrays(data)
    row = int(np.flatnonzero(a.hospitals == predictions["hospital"].iloc[0])[0])
    y, z = a.y[row, :-1].numpy(), a.z[row, :-1].numpy()
    first = predictions.iloc[0]
    assert first["observed"] == a.y[row, -1] - a.y[row, -2]
    assert first["zero"] == 0 and first["mean"] == pytest.approx(np.diff(y).mean())
    # the two modified means: this bundle's rule and the published code's
    for _, row in predictions.iterrows():
        h = int(np.flatnonzero(a.hospitals == row["hospital"])[0])
        series = a.y[h, :-1].numpy()
        mean = np.diff(series).mean()
        assert row["modified mean"] == pytest.approx(
            0.0 if series[-1] == series[-2] else mean)
        assert row["modified mean (published code)"] == pytest.approx(
            0.0 if series[-1] == 0 else mean)
    design = np.column_stack([np.ones(18), y[:-1], z[:-1]])
    coef = np.linalg.lstsq(design, np.diff(y), rcond=None)[0]
    assert first["LOCF + regression"] == pytest.approx(coef @ [1, y[-1], z[-1]])
    design = np.column_stack([np.ones(18), y[1:], z[1:]])
    coef = np.linalg.lstsq(design, np.diff(y), rcond=None)[0]
    assert first["LOCF + regression (published code)"] == pytest.approx(
        coef @ [1, y[-1], z[-1]])
    assert set(predictions["hospital"]) == set(
        a.hospitals[(a.reported[:, -1] & a.reported[:, :-1].any(1)).numpy()])


def test_summary_sums_squared_errors():
    predictions = pd.DataFrame({"observed": [1.0, -2.0],
                                **{m: [0.0, 0.0] for m in icu.MODELS}})
    table = icu.summarise_errors(predictions)
    assert list(table.index) == list(icu.MODELS)
    assert (table["sse"] == 5.0).all() and (table["max"] == 4.0).all()


# ---------------------------------------------------------------- simulator


def test_shipped_csv_is_the_documented_simulation():
    shipped = icu.load_hospitals(data_path("icu_hospitals.csv"))
    pd.testing.assert_frame_equal(
        shipped, icu.simulate_hospitals(1000, 70, 2022), check_dtype=False)


def test_simulation_is_deterministic_and_published_by_locf():
    data, truth = icu.simulate_hospitals(200, 30, 4, return_truth=True)
    again = icu.simulate_hospitals(200, 30, 4)
    pd.testing.assert_frame_equal(data, again)
    a = icu.to_arrays(data)
    y, reported = a.y.numpy(), a.reported.numpy()
    for h in range(200):
        first = truth.coefficients.loc[h, "first_report"]
        assert reported[h, first] and not reported[h, :first].any()
        assert (y[h, :first] == 0).all()
        for t in range(first, 30):
            source = t if reported[h, t] else np.flatnonzero(reported[h, :t])[-1]
            assert y[h, t] == truth.cases[h, source]


@pytest.mark.parametrize("off, check", [
    ({"late_start": 0.0}, lambda d, t: (t.coefficients["first_report"] == 0).all()),
    ({"gap_start": 0.0, "late_start": 0.0}, lambda d, t: d["reported"].all()),
    ({"size_sd": 0.0}, lambda d, t: np.allclose(t.coefficients["size"], 1.0)),
    ({"incidence_end": (1.0, 1.0)},
     lambda d, t: (d.groupby("hospital")["incidence"].nunique() == 1).all()),
])
def test_each_mechanism_switches_off(off, check):
    data, truth = icu.simulate_hospitals(
        100, 20, 0, settings=icu.SimulationSettings(**off), return_truth=True)
    assert check(data, truth)


def test_census_has_the_models_expected_increment():
    _, truth = icu.simulate_hospitals(2000, 40, 9, return_truth=True)
    c = truth.coefficients
    cases = truth.cases.astype(float)
    data = icu.simulate_hospitals(2000, 40, 9)
    z = icu.to_arrays(data).z.numpy()
    expected = c["b2"].to_numpy()[:, None] * cases[:, :-1] + \
        c["b3"].to_numpy()[:, None] * z[:, :-1]
    residual = np.diff(cases, axis=1) - expected
    standard_error = residual.std() / np.sqrt(residual.size)
    assert abs(residual.mean()) < 4 * standard_error


@pytest.mark.parametrize("changes, name", [
    ({"size_sd": -1.0}, "size_sd"), ({"gap_start": 1.5}, "gap_start"),
    ({"discharge": (0.2, 0.1)}, "discharge"), ({"gap_length": 0.5}, "gap_length"),
    ({"incidence_end": 3.0}, "incidence_end"), ({"late_start": "0.1"}, "late_start"),
])
def test_bad_settings_name_the_field(changes, name):
    with pytest.raises(ValueError, match=name):
        icu.SimulationSettings(**changes)


@pytest.mark.parametrize("arguments, name", [
    ({"n_hospitals": 0}, "n_hospitals"), ({"n_days": 5}, "n_days"),
    ({"seed": -1}, "seed"), ({"settings": {"size_sd": 1}}, "settings"),
])
def test_bad_simulator_arguments_name_them(arguments, name):
    with pytest.raises(ValueError, match=name):
        icu.simulate_hospitals(**arguments)


@pytest.mark.parametrize("spoil, message", [
    (lambda d: d.drop(columns="incidence"), "missing"),
    (lambda d: d.iloc[1:], "every day"),
    (lambda d: d.assign(cases=-d["cases"] - 1), "counts"),
    (lambda d: d.assign(reported=d["reported"].astype(int) * 2), "True/False"),
    (lambda d: d.assign(incidence=np.nan), "NaN"),
])
def test_load_refuses_malformed_files(tmp_path, spoil, message):
    path = tmp_path / "bad.csv"
    spoil(icu.simulate_hospitals(5, 12, 0)).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        icu.load_hospitals(path)


# ---------------------------------------------------------------- plots


def test_plots_return_labelled_figures():
    data, truth = icu.simulate_hospitals(20, 15, 0, return_truth=True)
    figure = icu.plot_hospital(data, 3, beta=[0.1, -0.1, 0.05],
                                    true_cases=truth.cases[3])
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "bridged gap" in labels and "reported" in labels
    with pytest.raises(ValueError, match="hospital"):
        icu.plot_hospital(data, 99)
    fitted = truth.coefficients[["hospital", "b1", "b2", "b3"]]
    assert len(icu.plot_coefficients(fitted, truth.coefficients).axes) == 3
    plt.close("all")


# ---------------------------------------------------------------- your turn
# Each check cell says "Right" for the hidden solution, "Wrong" for typical
# mistakes (wrong shape or type, wrong sign, a near miss) and "Not yet" for
# the stub the notebook ships with.


def your_turn(name):
    """``(stub, check)``: the notebook's cell defining ``name``, and the next."""
    code = [c.source for c in notebook_cells() if c.kind == "code"]
    (index,) = [i for i, source in enumerate(code)
                if source.startswith("# Your turn") and f"def {name}(" in source]
    assert code[index + 1].startswith("# Check"), "a check cell follows"
    return code[index], code[index + 1]


def verdict(namespace, definition, check):
    namespace = dict(namespace)
    exec(definition, namespace)  # noqa: S102
    exec(check, namespace)  # noqa: S102
    return namespace["verdict"]


def test_every_your_turn_cell_is_tested_here():
    names = set()
    for cell in notebook_cells():
        if cell.kind == "code" and cell.source.startswith("# Your turn"):
            names.update(re.findall(r"^def (\w+)\(", cell.source, re.MULTILINE))
    assert names == {"increment_loss", "paired_difference"}


@pytest.fixture(scope="module")
def loss_namespace(shipped):
    namespace = {"torch": torch, "icu": icu, "arrays": shipped}
    (hand,) = [c.source for c in notebook_cells()
               if c.kind == "code" and c.source.startswith("y_hand = ")]
    exec(hand, namespace)  # noqa: S102
    return namespace


LOSS_WRONG = {
    "per-day errors instead of one number": """\
def increment_loss(y, z, reported, beta):
    errors, y_tilde = [], None
    for t in range(len(y)):
        if y_tilde is None:
            if reported[t]:
                y_tilde = y[t]
            continue
        increment = beta[0] + beta[1] * y_tilde + beta[2] * z[t - 1]
        if reported[t]:
            errors.append((y[t] - y_tilde - increment) ** 2)
            y_tilde = y[t]
        else:
            y_tilde = y_tilde + increment
    return torch.stack(errors)
""",
    "wrong sign of the increment": """\
def increment_loss(y, z, reported, beta):
    total, n, y_tilde = 0.0 * beta.sum(), 0, None
    for t in range(len(y)):
        if y_tilde is None:
            if reported[t]:
                y_tilde = y[t]
            continue
        increment = beta[0] + beta[1] * y_tilde + beta[2] * z[t - 1]
        if reported[t]:
            total, n, y_tilde = total + (y[t] - y_tilde + increment) ** 2, n + 1, y[t]
        else:
            y_tilde = y_tilde + increment
    return total / max(n, 1)
""",
    "near miss: LOCF instead of the bridge": """\
def increment_loss(y, z, reported, beta):
    total, n, y_tilde = 0.0 * beta.sum(), 0, None
    for t in range(len(y)):
        if y_tilde is None:
            if reported[t]:
                y_tilde = y[t]
            continue
        increment = beta[0] + beta[1] * y_tilde + beta[2] * z[t - 1]
        if reported[t]:
            total, n = total + (y[t] - y_tilde - increment) ** 2, n + 1
        y_tilde = y[t]
    return total / max(n, 1)
""",
    "near miss: divided by all days": """\
def increment_loss(y, z, reported, beta):
    total, y_tilde = 0.0 * beta.sum(), None
    for t in range(len(y)):
        if y_tilde is None:
            if reported[t]:
                y_tilde = y[t]
            continue
        increment = beta[0] + beta[1] * y_tilde + beta[2] * z[t - 1]
        if reported[t]:
            total, y_tilde = total + (y[t] - y_tilde - increment) ** 2, y[t]
        else:
            y_tilde = y_tilde + increment
    return total / len(y)
""",
    "no gradient (a float)": """\
def increment_loss(y, z, reported, beta):
    return 0.02405
""",
    "right on the toy series, wrong z day on hospitals": """\
def increment_loss(y, z, reported, beta):
    total, n, y_tilde = 0.0 * beta.sum(), 0, None
    for t in range(len(y)):
        if y_tilde is None:
            if reported[t]:
                y_tilde = y[t]
            continue
        increment = beta[0] + beta[1] * y_tilde + beta[2] * z[t - 1]
        if t > 5:
            increment = increment + beta[2] * (z[t] - z[t - 1])
        if reported[t]:
            total, n, y_tilde = total + (y[t] - y_tilde - increment) ** 2, n + 1, y[t]
        else:
            y_tilde = y_tilde + increment
    return total / max(n, 1)
""",
}


def test_loss_check_says_not_yet_for_the_stub(loss_namespace):
    stub, check = your_turn("increment_loss")
    assert verdict(loss_namespace, stub, check).startswith("Not yet")


def test_loss_check_accepts_the_solution(loss_namespace):
    _, check = your_turn("increment_loss")
    answer = verdict(loss_namespace, solution("increment_loss"), check)
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", LOSS_WRONG)
def test_loss_check_rejects_wrong_answers(loss_namespace, mistake):
    _, check = your_turn("increment_loss")
    answer = verdict(loss_namespace, LOSS_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


def test_the_loss_of_one_hospital_is_the_batched_loss(shipped):
    beta = beta_of(0.05, -0.1, 0.03)
    for h in (0, 5, 77):
        one = icu.increment_loss(shipped.y[h].tolist(), shipped.z[h].tolist(),
                                 shipped.reported[h].tolist(), beta)
        assert one.shape == ()
        torch.testing.assert_close(one, icu.increment_loss_batched(
            shipped.y[h:h + 1], shipped.z[h:h + 1], shipped.reported[h:h + 1],
            beta[None])[0])


@pytest.fixture(scope="module")
def paired_namespace():
    data = icu.simulate_hospitals(150, 30, 5)
    namespace = {"torch": torch, "icu": icu, "pd": pd,
                 "predictions": icu.last_day_predictions(data, n_steps=30)}
    (cell,) = [c.source for c in notebook_cells()
               if c.kind == "code" and c.source.startswith("squared = ")]
    exec(cell, namespace)  # noqa: S102
    return namespace


PAIRED_WRONG = {
    "per-hospital differences instead of two numbers": """\
def paired_difference(squared_a, squared_b):
    return squared_a - squared_b
""",
    "wrong sign": """\
def paired_difference(squared_a, squared_b):
    d = squared_b - squared_a
    return d.sum().item(), (d.std() * len(d) ** 0.5).item()
""",
    "near miss: the unpaired standard error": """\
def paired_difference(squared_a, squared_b):
    n = len(squared_a)
    se = ((squared_a.var() + squared_b.var()) * n).sqrt()
    return (squared_a.sum() - squared_b.sum()).item(), se.item()
""",
    "near miss: the standard error of the mean difference": """\
def paired_difference(squared_a, squared_b):
    d = squared_a - squared_b
    return d.sum().item(), (d.std() / len(d) ** 0.5).item()
""",
}


def test_paired_check_says_not_yet_for_the_stub(paired_namespace):
    stub, check = your_turn("paired_difference")
    assert verdict(paired_namespace, stub, check).startswith("Not yet")


def test_paired_check_accepts_the_solution_and_equals_the_helper(paired_namespace):
    _, check = your_turn("paired_difference")
    answer = verdict(paired_namespace, solution("paired_difference"), check)
    assert answer.startswith("Right"), answer
    other = """\
def paired_difference(squared_a, squared_b):
    import math
    d = (squared_a - squared_b).tolist()
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    return sum(d), sd * math.sqrt(len(d))
"""
    assert verdict(paired_namespace, other, check).startswith("Right")
    ours = notebook_function("paired_difference")
    squared = paired_namespace["squared"]
    for a in icu.MODELS[1:]:
        assert icu.paired_difference(squared[a], squared["zero"]) == pytest.approx(
            ours(squared[a], squared["zero"]), rel=1e-12)


@pytest.mark.parametrize("mistake", PAIRED_WRONG)
def test_paired_check_rejects_wrong_answers(paired_namespace, mistake):
    _, check = your_turn("paired_difference")
    answer = verdict(paired_namespace, PAIRED_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


def test_paired_difference_by_hand_and_its_checks():
    a, b = [1.0, 4.0, 0.0, 2.0], [0.0, 1.0, 1.0, 0.0]
    d = np.subtract(a, b)  # 1, 3, -1, 2
    difference, error = icu.paired_difference(a, b)
    assert difference == pytest.approx(5.0)
    assert error == pytest.approx(d.std(ddof=1) * 2.0)
    with pytest.raises(ValueError, match="squared_a"):
        icu.paired_difference(a, b[:3])


def test_published_numbers_name_existing_rows():
    assert set(icu.PUBLISHED_LAST_DAY_SSE) <= set(icu.MODELS)
    assert "b15b64565ddfd2093f5683f2aab43fd59cb95c3a" in icu.PUBLISHED_CODE


def test_progress_bars_change_nothing(shipped):
    y, z, r = shipped.y[:10], shipped.z[:10], shipped.reported[:10]
    torch.testing.assert_close(
        icu.fit_increment_model(y, z, r, n_steps=5, progress=True),
        icu.fit_increment_model(y, z, r, n_steps=5, progress=False))
    torch.testing.assert_close(
        icu.fit_plain_gradient_descent(y, z, r, n_steps=5, progress=True),
        icu.fit_plain_gradient_descent(y, z, r, n_steps=5), equal_nan=True)
