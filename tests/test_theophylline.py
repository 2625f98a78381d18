"""Tests of helpers.bonus.theophylline: the model, loss, fits and CSV loader."""

import math

import pandas as pd
import pytest
import torch
from torchdiffeq import odeint

from helpers import data_path
from helpers.bonus import theophylline as pk

F64 = torch.float64


def study_of(times, conc, dose, weight):
    """A Study from nested lists, every sample observed."""
    times = torch.tensor(times, dtype=F64)
    return pk.Study(
        subject=torch.arange(1, len(times) + 1),
        weight=torch.tensor(weight, dtype=F64),
        dose=torch.tensor(dose, dtype=F64),
        times=times,
        conc=torch.tensor(conc, dtype=F64),
        observed=torch.ones(times.shape, dtype=torch.bool),
    )


@pytest.fixture(scope="module")
def study():
    return pk.to_study(pk.load_theophylline(data_path("theophylline.csv")))


# --- the data -------------------------------------------------------------------


def test_shipped_csv_is_r_theoph(study):
    frame = pk.load_theophylline(data_path("theophylline.csv"))
    assert len(frame) == 132 and tuple(frame.columns) == pk.COLUMNS
    assert frame["Subject"].nunique() == 12
    assert (frame.groupby("Subject").size() == 11).all()
    first = frame.iloc[0]
    assert (first.Subject, first.Wt, first.Dose, first.Time, first.conc) == (
        1, 79.6, 4.02, 0.0, 0.74)
    assert frame.iloc[-1].tolist() == [12, 60.5, 5.3, 24.15, 1.17]
    assert study.conc.shape == (12, 11) and bool(study.observed.all())
    assert study.weight[4].item() == 54.6 and study.dose[8].item() == 3.1


def write_changed(tmp_path, line, column, value):
    """Copy the shipped CSV with one cell changed (``line`` as in an editor)."""
    frame = pd.read_csv(data_path("theophylline.csv"), dtype=str)
    frame.loc[line - 2, column] = value
    path = tmp_path / "changed.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("conc", "abc", "line 7: conc must be a number, got 'abc'"),
        ("conc", "", "line 7: conc must be a number, got ''"),
        ("Time", "NaN", "line 7: Time must be a number"),
        ("conc", "-0.5", "line 7: conc must be a concentration in mg/L >= 0"),
        ("Time", "-1", "line 7: Time must be hours since the dose"),
        ("Wt", "0", "line 7: Wt must be a body weight in kg > 0"),
        ("Dose", "-4", "line 7: Dose must be a dose in mg/kg > 0"),
        ("Wt", "80.6", "Wt must be the same on every row of a subject; subject 1"),
        ("Time", "2.02", "line 7: subject 1 has two samples at Time 2.02"),
    ],
)
def test_bad_rows_give_clear_errors(tmp_path, column, value, message):
    path = write_changed(tmp_path, 7, column, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        pk.load_theophylline(path)


def test_missing_column_and_empty_file(tmp_path):
    path = tmp_path / "no_dose.csv"
    pd.read_csv(data_path("theophylline.csv")).drop(columns="Dose").to_csv(
        path, index=False)
    with pytest.raises(ValueError, match=r"missing \['Dose'\]"):
        pk.load_theophylline(path)
    empty = tmp_path / "empty.csv"
    empty.write_text("Subject,Wt,Dose,Time,conc\n")
    with pytest.raises(ValueError, match="no rows"):
        pk.load_theophylline(empty)


def test_hold_out_last_hides_exactly_the_last_sample(study):
    train, last_time, last_conc = pk.hold_out_last(study)
    assert torch.equal(train.observed[:, :-1], study.observed[:, :-1])
    assert not train.observed[:, -1].any()
    assert torch.equal(last_time, study.times[:, -1])
    assert torch.equal(last_conc, study.conc[:, -1])
    assert last_conc[0].item() == 3.28


# --- the model ------------------------------------------------------------------


PARAMETER_SETS = [(-2.45, 0.47, -3.23), (-3.0, 1.5, -3.9), (-1.5, -0.3, -2.6)]


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_ode_solution_equals_closed_form(params):
    log_ke, log_ka, log_cl = (torch.full((3,), p, dtype=F64) for p in params)
    dose = torch.tensor([3.1, 4.02, 5.86], dtype=F64)
    times = torch.linspace(0, 30, 61, dtype=F64)
    state0 = torch.stack([dose, torch.zeros_like(dose)], -1)
    solution = odeint(pk.OneCompartment(log_ke, log_ka, log_cl), state0, times,
                      rtol=1e-10, atol=1e-12)
    exact = pk.concentration(times, dose[:, None], log_ke[:, None], log_ka[:, None],
                             log_cl[:, None])
    torch.testing.assert_close(solution[..., 1].T, exact, atol=1e-8, rtol=0)
    torch.testing.assert_close(solution[..., 0].T,
                               dose[:, None] * (-log_ka.exp()[:, None] * times).exp())


def test_closed_form_by_hand_and_area_under_the_curve():
    ke, ka, cl, dose, t = 0.1, 1.0, 0.05, 4.0, 2.5
    volume = cl / ke
    by_hand = dose * ka / (volume * (ka - ke)) * (math.exp(-ke * t) - math.exp(-ka * t))
    logs = [torch.tensor(math.log(v), dtype=F64) for v in (ke, ka, cl)]
    assert pk.concentration(torch.tensor(t, dtype=F64), dose, *logs).item() == \
        pytest.approx(by_hand, rel=1e-12)
    # The area under the curve of an oral dose is dose / clearance.
    times = torch.linspace(0, 400, 400_001, dtype=F64)
    area = torch.trapezoid(pk.concentration(times, dose, *logs), times)
    assert area.item() == pytest.approx(dose / cl, rel=1e-6)


def test_elbo_of_a_hand_made_subject_is_exact():
    # Two identical subjects (so both covariates are 0), samples at 1 h and 4 h.
    study = study_of([[1.0, 4.0]] * 2, [[1.5, 1.0], [1.2, 0.8]], [1.0, 1.0],
                     [70.0, 70.0])
    model = pk.PopulationModel(2, [math.log(0.1), math.log(1.0), math.log(0.05)])
    with torch.no_grad():
        model.log_sigma.fill_(math.log(0.5))
    z = model.mean.detach()[None].clone()  # one draw: the means, random effects 0
    fitted = [2 / 0.9 * (math.exp(-0.1 * t) - math.exp(-t)) for t in (1.0, 4.0)]
    log_lik = sum(
        -0.5 * ((y - f) / 0.5) ** 2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
        for row in ([1.5, 1.0], [1.2, 0.8]) for y, f in zip(row, fitted))
    log_prior = 2 * sum(-math.log(w) - 0.5 * math.log(2 * math.pi) for w in (0.5, 0.2))
    dim = 4 + 2 * 2
    entropy = dim * math.log(0.1) + 0.5 * dim * (1 + math.log(2 * math.pi))
    value = pk.elbo(model, study, z).item()
    assert value == pytest.approx(log_lik + log_prior + entropy, rel=1e-12)


def test_gradient_of_the_elbo_matches_finite_differences(study):
    model = pk.PopulationModel(12, [-2.4, 0.4, -3.2], random_effects="all")
    z = model.sample(2, torch.Generator().manual_seed(5)).detach()
    assert torch.autograd.gradcheck(lambda z: pk.elbo(model, study, z),
                                    (z.requires_grad_(),))


# --- the fits -------------------------------------------------------------------


def test_least_squares_recovers_noise_free_parameters():
    truth = torch.tensor([[-2.5, 0.3, -3.2], [-2.2, 1.2, -2.9], [-2.8, -0.2, -3.5]],
                         dtype=F64)
    times = torch.tensor([0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24],
                         dtype=F64).expand(3, -1)
    dose = torch.tensor([4.0, 5.0, 3.2], dtype=F64)
    conc = pk.concentration(times, dose[:, None], *truth.unsqueeze(-1).unbind(-2))
    study = study_of(times.tolist(), conc.tolist(), dose.tolist(), [70.0, 60.0, 80.0])
    torch.testing.assert_close(pk.fit_least_squares(study), truth, atol=1e-6, rtol=0)


def test_mirror_image_gives_the_same_curve():
    params = torch.tensor([[0.3, -2.5, -3.2]], dtype=F64)  # ke > ka
    swapped = pk._absorption_first(params)
    assert swapped[0, 0] < swapped[0, 1]
    times = torch.linspace(0.1, 24, 50, dtype=F64)
    study = study_of([times.tolist()], [[0.0] * 50], [4.0], [70.0])
    torch.testing.assert_close(pk.least_squares_prediction(params, study, times[None]),
                               pk.least_squares_prediction(swapped, study, times[None]))


def test_population_fit_is_deterministic_under_a_seed(study):
    start = [-2.45, 0.45, -3.2]
    first = pk.fit_population(study, start, n_steps=30, seed=3, progress=False)
    second = pk.fit_population(study, start, n_steps=30, seed=3, progress=False)
    other = pk.fit_population(study, start, n_steps=30, seed=4, progress=False)
    assert (first.losses == second.losses).all()
    assert not (first.losses == other.losses).all()
    assert first.losses[-1] < first.losses[0]


def test_bad_settings_name_the_argument(study):
    with pytest.raises(ValueError, match="random_effects must be one of"):
        pk.PopulationModel(12, [0, 0, 0], random_effects="ke")
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        pk.fit_population(study, [0, 0, 0], n_steps=0)
    with pytest.raises(ValueError, match="hidden must be an integer >= 0"):
        pk.PopulationModel(12, [0, 0, 0], hidden=-1)
