"""The PBC registry bonus: the shipped table, the cohort built from it, the
ODE-VAE's two predictions and the comparison's bookkeeping."""

import numpy as np
import pandas as pd
import pytest
import torch

import helpers
from helpers import ODEVAE
from helpers.bonus import pbc_registry as pbc


@pytest.fixture(scope="module")
def frame():
    return pbc.load_pbcseq()


@pytest.fixture(scope="module")
def built(frame):
    return pbc.pbc_cohort(frame)


def test_the_shipped_table_is_the_published_one(frame):
    assert frame.shape == (1945, 19)
    first = frame.groupby("id").first()
    assert len(first) == 312
    assert first["status"].value_counts().to_dict() == {0: 143, 2: 140, 1: 29}
    assert first["trt"].value_counts().to_dict() == {1: 158, 0: 154}
    assert frame["chol"].isna().mean() == pytest.approx(0.422, abs=0.001)
    assert (frame.groupby("id")["day"].first() == 0).all()


def test_load_names_missing_columns(tmp_path, frame):
    path = tmp_path / "short.csv"
    frame.drop(columns=["bili", "stage"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks the columns \['bili', 'stage'\]"):
        pbc.load_pbcseq(path)


def test_prepare_adds_years_and_first_visit_signs(frame):
    prepared = pbc.prepare(frame)
    patient = prepared[prepared["id"] == 1]
    assert np.allclose(patient["years"], patient["day"] / 365.25)
    assert (patient["female"] == 1.0).all()
    for sign in ("ascites", "hepato", "spiders", "edema"):
        assert (patient[f"{sign}0"] == patient[sign].iloc[0]).all()


def test_cohort_keeps_every_visit_and_value(built, frame):
    cohort, outcomes = built
    assert (cohort.n, cohort.p, cohort.q) == (312, 7, 7)
    assert sum(len(t) for t in cohort.ts) == 1945
    observed = sum(int(m.sum()) for m in cohort.masks)
    assert observed == int(frame[list(pbc.LABS)].notna().sum().sum())
    assert outcomes["event"].sum() == 169
    assert list(outcomes["id"]) == list(cohort.columns.people)
    # patient 1's bilirubin comes back in mg/dl
    bili = cohort.original_units(cohort.xs[0])[:, 0]
    assert np.allclose(bili, frame.loc[frame["id"] == 1, "bili"], rtol=1e-5)


@pytest.fixture(scope="module")
def split(built):
    return helpers.split_last_visit(built[0])


def test_first_visit_prediction_is_what_evaluate_scores(built, split):
    train_cohort, heldout = split
    model = ODEVAE(train_cohort.p, train_cohort.q, seed=4)  # untrained is enough
    predictions = pbc.odevae_predictions(model, train_cohort, heldout, "first")
    scores = helpers.evaluate(model, train_cohort, heldout)
    ours = helpers.prediction_errors(predictions, heldout)["mse"]
    assert ours == pytest.approx(scores["heldout_mse"], rel=1e-6)
    assert scores["group_auc"] is None and scores["latent_r2"] is None
    locf = helpers.locf_predictions(train_cohort, heldout)
    assert helpers.prediction_errors(locf, heldout)["mse"] == scores["locf_mse"]


def test_last_visit_prediction_solves_over_the_gap(split):
    train_cohort, heldout = split
    model = ODEVAE(train_cohort.p, train_cohort.q, seed=5, method="closed_form")
    predictions = pbc.odevae_predictions(model, train_cohort, heldout, "last")
    k = 3
    i = int(heldout["ids"][k])
    with torch.no_grad():
        start = model.encode(train_cohort.xs[i][-1])[0]
        rates = model.ode_params(train_cohort.baseline[i])
        gap = heldout["times"][k] - train_cohort.ts[i][-1]
        expected = model.decode(torch.exp(rates * gap) * start)[0]
    assert torch.allclose(predictions[k], expected, atol=1e-5)
    with pytest.raises(ValueError, match="start must be one of"):
        pbc.odevae_predictions(model, train_cohort, heldout, "middle")


def test_original_unit_errors_by_hand():
    frame = pd.DataFrame({"id": [1, 1, 1, 2, 2, 2], "t": [0, 1, 2, 0, 1, 2],
                          "a": [1.0, 2.0, 4.0, 1.0, 1.0, np.nan],
                          "b": [10.0, 20.0, 30.0, 5.0, 6.0, 8.0]})  # fmt: skip
    cohort = helpers.Cohort.from_frame(frame, id="id", time="t",
                                       variables=["a", "b"], log=["a"])  # fmt: skip
    train_cohort, heldout = helpers.split_last_visit(cohort)
    locf = helpers.locf_predictions(train_cohort, heldout)
    errors = pbc.original_unit_errors(cohort, locf, heldout)
    # person 1: a 2 -> 4, b 20 -> 30; person 2: a missing, b 6 -> 8
    assert np.allclose(errors, [2.0, (10.0 + 2.0) / 2], rtol=1e-5)


def test_summarise_gives_mean_and_sd_per_method():
    rows = [("LOCF", -1, "x", 0.5, 1.0, 0.1), ("LOCF", -1, "overall", 0.5, np.nan, 0.1)]
    for seed, error in ((0, 1.0), (1, 2.0)):
        method = "ODE-VAE, first visit"
        rows += [(method, seed, "x", error, 2 * error, 3.0),
                 (method, seed, "overall", error, np.nan, 3.0)]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(pbc.TABLE_COLUMNS))
    summary = pbc.summarise(table)
    assert summary.loc["x", "LOCF"] == "0.5 +- 0"
    assert summary.loc["overall", "ODE-VAE, first visit"] == "1.5 +- 0.71"
    assert list(pbc.summarise(table, "mae_original").index) == ["x"]
