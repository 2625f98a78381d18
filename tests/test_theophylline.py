"""Tests of helpers.bonus.theophylline: the model, loss, fits and CSV loader;
and the notebook's two "your turn" cells (closed form, sparse design), whose
check cells must say "Right" for the hidden solution, "Wrong" for typical
mistakes and "Not yet" for the stub."""

import math
import pathlib

import pandas as pd
import pytest
import torch
from torchdiffeq import odeint

import build_notebooks
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
        ("Wt", "80.6", ("line 7: Wt must be the same on every row of a subject,"
         " as on its first row, got '80.6'")),
        ("Time", "2.02", ("line 7: Time must be a new time for its subject: one "
         "sample a time, got '2.02'")),
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


def test_without_the_weight_covariate_the_model_ignores_weight(study):
    model = pk.PopulationModel(12, [-2.4, 0.4, -3.2], weight=False)
    assert model.n_fixed == 3 and len(model.mean) == 3 + 2 * 12
    z = model.sample(3, torch.Generator().manual_seed(0))
    other = pk.covariates(study).flip(0)  # different covariates, same draws
    for a, b in zip(model.subject_parameters(z, pk.covariates(study)),
                    model.subject_parameters(z, other)):
        assert torch.equal(a, b)
    with_weight = pk.PopulationModel(12, [-2.4, 0.4, -3.2])
    assert with_weight.n_fixed == 4
    fit = pk.fit_population(study, [-2.45, 0.45, -3.2], weight=False, n_steps=5,
                            progress=False)
    assert "weight_effect" not in pk.summarise(fit).index


def test_lr_is_checked_by_name(study):
    with pytest.raises(ValueError, match="lr must be"):
        pk.fit_population(study, [0, 0, 0], lr=0)
    fast = pk.fit_population(study, [-2.45, 0.45, -3.2], n_steps=3, lr=0.05,
                             seed=1, progress=False)
    slow = pk.fit_population(study, [-2.45, 0.45, -3.2], n_steps=3, lr=0.01,
                             seed=1, progress=False)
    assert fast.losses[0] == slow.losses[0] and fast.losses[-1] != slow.losses[-1]


# --- sparse designs ---------------------------------------------------------------


def test_keep_mask_keeps_the_k_smallest_allowed_scores():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.5], [0.4, 0.2, 0.8, 0.1, 0.6]])
    allowed = torch.tensor([[False, True, True, True, True], [True] * 5])
    expected = torch.tensor([[False, False, True, True, False],
                             [False, True, False, True, False]])
    assert torch.equal(pk.keep_mask(scores, allowed, 2), expected)


def test_sparse_design_keeps_k_post_dose_samples_and_holds_out_the_rest(study):
    post_dose = study.times > 0
    for k in (2, 3, 5, 9):
        train, held_out = pk.sparse_design(study, k, seed=7)
        assert (train.observed.sum(1) == k).all()
        assert not (train.observed & ~post_dose).any()  # Time 0 never kept
        assert torch.equal(held_out, post_dose & ~train.observed)
        assert torch.equal(train.conc, study.conc)
    first, _ = pk.sparse_design(study, 3, seed=1)
    again, _ = pk.sparse_design(study, 3, seed=1)
    other, _ = pk.sparse_design(study, 3, seed=2)
    assert torch.equal(first.observed, again.observed)
    assert not torch.equal(first.observed, other.observed)


@pytest.mark.parametrize("k", [0, 10, 2.5])
def test_sparse_design_rejects_impossible_k(study, k):
    with pytest.raises(ValueError, match="k must be an integer"):
        pk.sparse_design(study, k)


def test_sparse_design_takes_numpy_integers_as_python_ones(study):
    # the rules table returns the checked values as Python ints, which
    # torch.Generator.manual_seed needs
    import numpy as np

    numpy_made, _ = pk.sparse_design(study, np.int64(3), seed=np.int64(4))
    typed, _ = pk.sparse_design(study, 3, seed=4)
    assert torch.equal(numpy_made.observed, typed.observed)


@pytest.mark.parametrize(("options", "message"), [
    ({"ks": (3, 10)}, "k must be an integer in \\[1, 9\\]"),
    ({"seeds": (0, -1.5)}, "seed must be an integer"),
    ({"random_effects": "none"}, "random_effects must be one of"),
    ({"lr": 0}, "lr must be a finite number > 0"),
])
def test_sparse_experiment_refuses_a_bad_design_before_any_fit(
    study, options, message, monkeypatch
):
    def no_fit(*args, **kwargs):
        raise AssertionError("a fit started before every setting was checked")

    monkeypatch.setattr(pk, "fit_least_squares", no_fit)
    settings = {"ks": (3,), "seeds": (0,), "n_steps": 5, "progress": False}
    with pytest.raises(ValueError, match=message):
        pk.sparse_experiment(study, **(settings | options))


def test_sparse_experiment_errors_are_those_of_the_fits(study):
    frame = pk.sparse_experiment(study, ks=(3,), seeds=(5,), n_steps=20,
                                 progress=False)
    assert list(frame.method) == list(pk.SPARSE_METHODS)
    assert (frame.n_held_out == 12 * 7).all() and (frame.k == 3).all()
    # the per-subject row, recomputed independently
    train, held_out = pk.sparse_design(study, 3, seed=5)
    fitted = pk.least_squares_prediction(pk.fit_least_squares(train), train,
                                         study.times)
    error = (fitted - study.conc)[held_out]
    row = frame.set_index("method").loc["own least-squares fit"]
    assert row.rmse == pytest.approx(error.square().mean().sqrt().item())
    assert row.mae == pytest.approx(error.abs().mean().item())


# --- the notebook's "your turn" cells -------------------------------------------

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "theophylline.py"


def notebook_cells():
    text = SOURCE.read_text(encoding="utf-8")
    return build_notebooks.parse_source(text, SOURCE.name)


def your_turn(name):
    """``(code cells before the stub, stub, check)`` for the function ``name``."""
    code = [cell.source for cell in notebook_cells() if cell.kind == "code"]
    (index,) = [i for i, source in enumerate(code)
                if source.startswith("# Your turn") and f"def {name}(" in source]
    assert code[index + 1].startswith("# Check"), "a check cell follows"
    return code[:index], code[index], code[index + 1]


def solution(name):
    """The solution's code, from the fenced block in a collapsed markdown cell."""
    blocks = build_notebooks.hidden_solutions(notebook_cells(), name)
    assert blocks, f"no solution for {name}"
    return blocks[0]


def verdict(namespace, definition, check):
    """Run a definition and the check cell; return the check's verdict."""
    namespace = dict(namespace)
    exec(definition, namespace)  # noqa: S102 - notebook cells, run as in Jupyter
    exec(check, namespace)  # noqa: S102
    return namespace["verdict"]


@pytest.fixture(scope="module")
def before_closed_form():
    """The notebook's namespace up to the closed-form stub (data, ODE solve)."""
    before, _, _ = your_turn("closed_form")
    namespace = {}
    for source in before:
        exec(source, namespace)  # noqa: S102
    return namespace


CLOSED_FORM_WRONG = {
    "wrong shape": """
def closed_form(times, dose, log_ke, log_ka, log_cl):
    ke, ka = log_ke.exp(), log_ka.exp()
    volume = (log_cl - log_ke).exp()
    decay = (-ke * times).exp() - (-ka * times).exp()
    return (dose * ka / (volume * (ka - ke)) * decay).sum(0)
""",
    "wrong sign": """
def closed_form(times, dose, log_ke, log_ka, log_cl):
    ke, ka = log_ke.exp(), log_ka.exp()
    volume = (log_cl - log_ke).exp()
    decay = (-ka * times).exp() - (-ke * times).exp()
    return dose * ka / (volume * (ka - ke)) * decay
""",
    "near miss": """
def closed_form(times, dose, log_ke, log_ka, log_cl):
    ke, ka, cl = log_ke.exp(), log_ka.exp(), log_cl.exp()
    volume = cl * ke  # should be cl / ke
    decay = (-ke * times).exp() - (-ka * times).exp()
    return dose * ka / (volume * (ka - ke)) * decay
""",
    "not a tensor": """
def closed_form(times, dose, log_ke, log_ka, log_cl):
    return [0.0] * len(times)
""",
}


def test_closed_form_check_says_not_yet_for_the_stub(before_closed_form):
    _, stub, check = your_turn("closed_form")
    assert verdict(before_closed_form, stub, check).startswith("Not yet")


def test_closed_form_check_accepts_the_solution_and_other_spellings(
        before_closed_form):
    _, _, check = your_turn("closed_form")
    assert verdict(before_closed_form, solution("closed_form"), check).startswith(
        "Right")
    # another correct way: the symmetric form dose ka ke / (Cl (ka - ke))
    other = """
def closed_form(times, dose, log_ke, log_ka, log_cl):
    ke, ka, cl = torch.exp(log_ke), torch.exp(log_ka), torch.exp(log_cl)
    return dose * ka * ke / (cl * (ka - ke)) * (torch.exp(-ke * times)
                                                - torch.exp(-ka * times))
"""
    assert verdict(before_closed_form, other, check).startswith("Right")


@pytest.mark.parametrize("mistake", CLOSED_FORM_WRONG)
def test_closed_form_check_rejects_wrong_answers(before_closed_form, mistake):
    _, _, check = your_turn("closed_form")
    answer = verdict(before_closed_form, CLOSED_FORM_WRONG[mistake], check)
    assert answer.startswith("Wrong"), answer
    if mistake == "wrong sign":
        assert answer.startswith("Wrong sign")


@pytest.fixture(scope="module")
def with_data():
    """The notebook's imports and data cells (all the keep_mask check needs)."""
    before, _, _ = your_turn("closed_form")
    namespace = {}
    for source in before[:2]:
        exec(source, namespace)  # noqa: S102
    return namespace


KEEP_WRONG = {
    "wrong shape": """
def keep_mask(scores, post_dose, k):
    return scores.masked_fill(~post_dose, float("inf")).argsort(dim=1)[:, :k]
""",
    "wrong sign": """
def keep_mask(scores, post_dose, k):
    ranked = scores.masked_fill(~post_dose, -float("inf")).argsort(
        dim=1, descending=True)
    keep = torch.zeros_like(post_dose)
    keep.scatter_(1, ranked[:, :k], True)
    return keep
""",
    "near miss": """
def keep_mask(scores, post_dose, k):
    ranked = scores.argsort(dim=1)  # forgets that Time 0 may not be kept
    keep = torch.zeros_like(post_dose)
    keep.scatter_(1, ranked[:, :k], True)
    return keep
""",
    "one too many": """
def keep_mask(scores, post_dose, k):
    rank = scores.masked_fill(~post_dose, float("inf")).argsort(1).argsort(1)
    return rank <= k
""",
}


def test_keep_mask_check_says_not_yet_for_the_stub(with_data):
    _, stub, check = your_turn("keep_mask")
    assert verdict(with_data, stub, check).startswith("Not yet")


def test_keep_mask_check_accepts_the_solution_and_other_spellings(with_data):
    _, _, check = your_turn("keep_mask")
    assert verdict(with_data, solution("keep_mask"), check).startswith("Right")
    loop = """
def keep_mask(scores, post_dose, k):
    keep = torch.zeros(scores.shape, dtype=torch.int64)  # 1/0 instead of bool
    for row in range(len(scores)):
        allowed = torch.nonzero(post_dose[row]).flatten()
        best = scores[row, allowed].topk(k, largest=False).indices
        keep[row, allowed[best]] = 1
    return keep
"""
    assert verdict(with_data, loop, check).startswith("Right")


@pytest.mark.parametrize("mistake", KEEP_WRONG)
def test_keep_mask_check_rejects_wrong_answers(with_data, mistake):
    _, _, check = your_turn("keep_mask")
    answer = verdict(with_data, KEEP_WRONG[mistake], check)
    assert answer.startswith("Wrong"), answer
    if mistake == "wrong sign":
        assert "largest" in answer
    if mistake == "near miss":
        assert "Time 0" in answer


def test_the_solutions_equal_the_helpers(study):
    namespace = {"torch": torch}
    exec(solution("closed_form"), namespace)  # noqa: S102
    exec(solution("keep_mask"), namespace)  # noqa: S102
    times = torch.linspace(0, 24, 25, dtype=F64)
    logs = [torch.tensor([[v]], dtype=F64) for v in (-2.3, 0.8, -3.1)]
    torch.testing.assert_close(namespace["closed_form"](times, 4.0, *logs),
                               pk.concentration(times, 4.0, *logs))
    scores = torch.rand(study.conc.shape, generator=torch.Generator().manual_seed(3))
    post_dose = study.times > 0
    for k in (1, 4, 10):
        assert torch.equal(namespace["keep_mask"](scores, post_dose, k),
                           pk.keep_mask(scores, post_dose, k))
