"""A cohort from a learner's own long table: Cohort.from_frame and to_frame,
its errors, and the masked loss of the ODE-VAE."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import helpers
from helpers import ODEVAE, VAE, make_batch


def _table():
    """A small table in a learner's own names, with missing values, text ids,
    rows of a person not next to each other, and a first visit away from 0."""
    nan = math.nan
    return pd.DataFrame(
        {
            "patient": ["b", "a", "a", "b", "a", "c", "c"],
            "years": [1.0, 0.0, 0.5, 2.5, 1.25, 0.0, 3.0],
            "bili": [1.5, 0.8, nan, 2.0, 1.1, 4.0, 6.5],
            "albumin": [3.5, 3.9, 3.7, nan, 3.6, 2.9, 2.7],
            "age": [61.0, 40.5, 40.5, 61.0, 40.5, 55.0, 55.0],
            "sex": [1, 0, 0, 1, 0, 0, 0],
        }
    )


def _cohort(frame=None, **options):
    frame = _table() if frame is None else frame
    arguments = {"id": "patient", "time": "years", "variables": ["bili", "albumin"],
                 "baseline": ["age", "sex"], "log": ["bili"]} | options  # fmt: skip
    return helpers.Cohort.from_frame(frame, **arguments)


def test_from_frame_reads_people_visits_and_masks():
    cohort = _cohort()
    assert cohort.n == 3 and cohort.p == 2 and cohort.q == 2
    assert cohort.columns.people == ("a", "b", "c")
    assert not cohort.has_truth and cohort.groups is None
    assert cohort.variables == ("bili", "albumin")
    assert [t.tolist() for t in cohort.ts] == [[0.0, 0.5, 1.25], [0.0, 1.5], [0.0, 3.0]]
    assert cohort.columns.time_origin == (0.0, 1.0, 0.0)
    assert cohort.masks[0].tolist() == [[True, True], [False, True], [True, True]]
    assert cohort.masks[1].tolist() == [[True, True], [True, False]]
    assert cohort.xs[0][1, 0] == 0.0  # a missing entry holds 0
    assert cohort.missing_share() == pytest.approx(2 / 14)
    # log, then centre and scale by the observed mean and sd
    logs = np.log([0.8, 1.1, 1.5, 2.0, 4.0, 6.5])
    bili = cohort.columns.transforms["bili"]
    assert bili.log and bili.centre == pytest.approx(logs.mean())
    assert bili.scale == pytest.approx(logs.std())
    expected = (np.log(0.8) - logs.mean()) / logs.std()
    assert float(cohort.xs[0][0, 0]) == pytest.approx(expected, rel=1e-6)
    ages = np.array([40.5, 40.5, 40.5, 61.0, 61.0, 55.0, 55.0])
    assert float(cohort.baseline[1, 0]) == pytest.approx(
        (61.0 - ages.mean()) / ages.std(), rel=1e-6
    )


def test_frame_round_trip_keeps_masks_and_units(tmp_path):
    frame = _table()
    back = _cohort(frame).to_frame()
    expected = frame.sort_values(["patient", "years"]).reset_index(drop=True)
    assert list(back.columns) == list(expected.columns)
    assert back["patient"].tolist() == expected["patient"].tolist()
    for column in ["years", "bili", "albumin", "age", "sex"]:
        assert np.array_equal(back[column].isna(), expected[column].isna())
        assert np.allclose(back[column], expected[column], rtol=1e-6, equal_nan=True)
    # and again through a CSV file, without standardisation
    path = tmp_path / "mine.csv"
    back.to_csv(path, index=False)
    again = _cohort(pd.read_csv(path), standardise=False, log=[])
    assert torch.allclose(again.xs[2], torch.tensor([[4.0, 2.9], [6.5, 2.7]]))
    assert np.allclose(again.to_frame()["bili"], back["bili"], equal_nan=True)


def test_original_units_undo_the_transforms():
    cohort = _cohort()
    stored = torch.cat(cohort.xs)[torch.cat(cohort.masks)[:, 0]][:, 0]
    bili = cohort.original_units(torch.stack([stored, stored], -1))[:, 0]
    assert np.allclose(np.sort(bili.numpy()), [0.8, 1.1, 1.5, 2.0, 4.0, 6.5])


def test_subset_and_split_keep_the_record_of_people():
    cohort = _cohort()
    part = cohort.subset([2, 0])
    assert part.columns.people == ("c", "a")
    assert part.columns.time_origin == (0.0, 0.0)
    assert torch.equal(part.masks[1], cohort.masks[0])
    train_cohort, heldout = helpers.split_last_visit(cohort)
    assert heldout["ids"].tolist() == [0]  # only "a" has two follow-ups
    assert heldout["mask"].tolist() == [[True, True]]
    assert train_cohort.masks[0].tolist() == [[True, True], [False, True]]
    assert train_cohort.columns == cohort.columns


def _edit(frame, column, row, value):
    frame = frame.copy()
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_edit(_table(), "years", 4, 0.25), "'years': person 'a' goes back to"),
        (_edit(_table(), "years", 4, 0.5), "'years': person 'a' has two visits at"),
        (_edit(_table(), "age", 2, 41.0), "'age' changes.*person 'a'"),
        (_edit(_table(), "age", 2, math.nan), "'age' is missing.*person 'a'"),
        (_edit(_table(), "years", 0, math.nan), "'years' is missing.*person 'b'"),
        (_table().assign(sex=list("mffmfff")), "'sex' must hold numbers"),
        (_table().assign(bili="high"), "'bili' must hold numbers"),
        (_table().assign(albumin=math.nan), "'albumin' is missing on every row"),
        (_edit(_edit(_table(), "bili", [5, 6], math.nan), "albumin", [5, 6], math.nan),
         "person 'c' .*has no visit"),
        (_edit(_table(), "bili", 3, -1.0), "'bili' is to be log.*person 'b'"),
        (_table().drop(columns="albumin"), "frame has no column 'albumin'"),
    ],
)  # fmt: skip
def test_from_frame_names_the_column_and_the_person(frame, message):
    with pytest.raises(ValueError, match=message):
        _cohort(frame)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variables": "bili"}, "variables must be a list of column names"),
        ({"variables": []}, "variables must name at least one column"),
        ({"baseline": ["age", "bili"]}, "one part only; repeated: \\['bili'\\]"),
        ({"log": ["weight"]}, "log must name variables or baseline columns"),
    ],
)
def test_from_frame_checks_its_arguments(options, message):
    with pytest.raises(ValueError, match=message):
        _cohort(**options)


def test_from_frame_takes_any_sequence_of_names_and_refuses_a_non_frame():
    names = pd.Index(["bili", "albumin"])  # e.g. a slice of frame.columns
    assert _cohort(variables=names).variables == ("bili", "albumin")
    with pytest.raises(ValueError, match="frame must be a pandas DataFrame, got dict"):
        _cohort(_table().to_dict())


def test_simulated_cohort_has_no_mask_in_its_batches():
    cohort = helpers.simulate_cohort(n=6, q=4, q_info=2, seed=2)
    assert all(bool(m.all()) for m in cohort.masks)
    assert make_batch(cohort, range(6)).mask is None
    ragged = _cohort()
    batch = make_batch(ragged, [1, 0])
    rows = [[True, True], [True, False], [True, True], [False, True], [True, True]]
    assert batch.mask.tolist() == rows
    assert batch.to(dtype=torch.float64).mask.dtype == torch.bool


def _todays_odevae_loss(model, batch, eps):
    """The ODE-VAE loss as it was written before masks, term by term."""
    mean, logvar, smooth = model.smooth_means(batch)
    z = smooth + torch.exp(0.5 * logvar) * eps
    x_mean, x_logvar = model.decode(z)
    log_likelihood = helpers.gaussian_log_likelihood(batch.x, x_mean, x_logvar).sum()
    kl = helpers.kl_to_standard_normal(smooth, logvar).sum()
    gap = ((smooth - mean) ** 2).sum(-1)[batch.is_follow_up].sum()
    return (
        -(log_likelihood - model.kl_weight * kl)
        + batch.size * model.penalty_weight * model.decoder_penalty()
        + model.consistency_weight * gap
    )


def test_loss_of_a_complete_cohort_is_exactly_todays():
    cohort = helpers.simulate_cohort(n=8, q=4, q_info=2, seed=5)
    model = ODEVAE(cohort.p, cohort.q, seed=1)
    batch = make_batch(cohort, range(8))
    eps = torch.randn(len(batch.x), 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        model.loss(batch, eps=eps), _todays_odevae_loss(model, batch, eps)
    )


@pytest.mark.parametrize("kind", [VAE, ODEVAE])
def test_masked_loss_equals_a_hand_computed_loss(kind):
    cohort = _cohort()
    model = ODEVAE(2, 2, seed=3) if kind is ODEVAE else VAE(2, seed=3)
    batch = make_batch(cohort, range(3))
    eps = torch.randn(len(batch.x), 2, generator=torch.Generator().manual_seed(1))
    mean, logvar = model.encode(batch.x)
    latent = model.smooth_means(batch)[2] if kind is ODEVAE else mean
    x_mean, x_logvar = model.decode(latent + torch.exp(0.5 * logvar) * eps)
    by_hand = 0.0
    for k in range(len(batch.x)):  # visit by visit, observed entries only
        for j in range(2):
            if batch.mask[k, j]:
                variance = x_logvar[k, j].exp()
                by_hand += 0.5 * ((batch.x[k, j] - x_mean[k, j]) ** 2 / variance
                                  + x_logvar[k, j] + math.log(2 * math.pi))  # fmt: skip
    by_hand += model.kl_weight * helpers.kl_to_standard_normal(latent, logvar).sum()
    by_hand += batch.size * model.penalty_weight * model.decoder_penalty()
    if kind is ODEVAE:
        gap = ((latent - mean) ** 2).sum(-1)[batch.is_follow_up].sum()
        by_hand += model.consistency_weight * gap
    assert torch.allclose(model.loss(batch, eps=eps), by_hand, rtol=1e-6)
    # a missing entry's stored value plays no part in the likelihood
    changed = batch.x.clone()
    changed[~batch.mask] = 123.0
    assert not torch.equal(changed, batch.x)
    unchanged = model.negative_elbo(changed, latent, logvar, eps, mask=batch.mask)
    assert torch.equal(unchanged, model.negative_elbo(batch.x, latent, logvar, eps,
                                                      mask=batch.mask))  # fmt: skip
