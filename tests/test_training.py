"""Batched training: determinism, the original scheme, errors and the quality bar."""

import dataclasses
from itertools import pairwise

import pandas as pd
import pytest
import torch

import helpers
from helpers import ODEVAE, VAE, make_batch


@pytest.fixture(scope="module")
def small():
    return helpers.simulate_cohort(n=10, seed=7)


def test_history_and_callback(small):
    seen = []
    history = helpers.train(
        ODEVAE(small.p, small.q),
        small,
        epochs=7,
        batch_size=4,
        callback=lambda m, e: seen.append(e),
        every=3,
        progress=False,
    )
    assert isinstance(history, pd.DataFrame)
    assert list(history["epoch"]) == list(range(1, 8))
    assert {"loss", "seconds"} <= set(history.columns)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert seen == [3, 6, 7]


def test_same_seed_same_trained_weights(small):
    models = [ODEVAE(small.p, small.q, seed=2) for _ in range(3)]
    for model, seed in zip(models, (5, 5, 6)):
        helpers.train(model, small, epochs=4, starts=2, batch_size=3, seed=seed,
                      progress=False)  # fmt: skip
    same = zip(models[0].parameters(), models[1].parameters())
    assert all(torch.equal(a, b) for a, b in same)
    assert not torch.equal(models[0].encoder.weight, models[2].encoder.weight)


def test_batch_size_one_is_the_original_one_at_a_time_scheme(small):
    trained, by_hand = ODEVAE(small.p, small.q), ODEVAE(small.p, small.q)
    original = dict(helpers.ORIGINAL_SETTINGS, epochs=2)
    helpers.train(trained, small, seed=3, progress=False, **original)
    optimiser = torch.optim.Adam(by_hand.parameters(), lr=5e-4)
    generator = torch.Generator().manual_seed(3)
    for _ in range(2):
        for i in range(small.n):
            loss = by_hand.loss(make_batch(small, [i]), generator=generator)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    for a, b in zip(trained.parameters(), by_hand.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert helpers.ORIGINAL_SETTINGS["batch_size"] == 1


def test_a_poor_start_is_dropped_for_a_better_one(small):
    """Starting weights whose decoded means are far off predict the training
    visits badly; with two starts the fresh one is kept, and the history is
    the kept run's."""
    losses = {}
    for starts in (1, 2):
        model = ODEVAE(small.p, small.q, seed=1)
        with torch.no_grad():
            model.decoder_mean.bias.fill_(30.0)  # every prediction far off
        history = helpers.train(model, small, epochs=8, starts=starts, seed=4,
                                progress=False)  # fmt: skip
        losses[starts] = history["loss"]
    assert losses[2].iloc[0] < losses[1].iloc[0] / 10
    assert model.decoder_mean.bias.abs().max() < 10.0  # the fresh weights


def test_fit_error_is_the_heldout_error_on_training_visits(small):
    """fit_error equals evaluate's held-out error when the 'training' visits
    are the held-out ones plus the first visits."""
    from helpers.training import fit_error

    train_cohort, heldout = helpers.split_last_visit(small)
    model = ODEVAE(small.p, small.q, seed=3)
    ids = heldout["ids"].tolist()
    xs, ts = list(train_cohort.xs), list(train_cohort.ts)
    for k, i in enumerate(ids):  # first visit, then the held-out one
        xs[i] = torch.stack([xs[i][0], heldout["values"][k]])
        ts[i] = torch.stack([ts[i][0], heldout["times"][k]])
    pairs = dataclasses.replace(train_cohort, xs=xs, ts=ts)
    expected = helpers.evaluate(model, train_cohort, heldout)["heldout_mse"]
    assert fit_error(model, make_batch(pairs, ids)) == pytest.approx(expected)


def test_vae_trains(small):
    history = helpers.train(VAE(small.p), small, epochs=5, progress=False)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]


def test_nan_loss_stops_with_advice(small):
    def broken(t, z, params):
        return z * float("nan")

    model = ODEVAE(small.p, small.q, dynamics=broken)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        helpers.train(model, small, epochs=2, progress=False)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_runaway_learning_rate_stops_with_advice(small, method):
    """A huge lr makes the latent system stiff: the adaptive solver gives up
    after helpers.models.MAX_SOLVER_STEPS steps instead of creeping on for
    minutes, and the fixed-step one ends in a NaN loss."""
    model = ODEVAE(small.p, small.q, method=method)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        helpers.train(model, small, epochs=5, lr=1e6, progress=False)


def broken_callback(model, epoch):
    return model.lost_attribute  # the learner's typo


def test_an_error_in_a_learners_callback_surfaces_with_their_line(small):
    with pytest.raises(AttributeError) as raised:
        helpers.train(ODEVAE(small.p, small.q), small, epochs=2, every=1,
                      callback=broken_callback, progress=False)  # fmt: skip
    line = broken_callback.__code__.co_firstlineno + 1
    assert any(entry.name == "broken_callback" and entry.lineno + 1 == line
               for entry in raised.traceback)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be"),
        ({"lr": -1.0}, "lr must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"starts": 0}, "starts must be"),
        ({"schedule": "step"}, "schedule must be one of"),
        ({"every": 0}, "every must be"),
        ({"lr": "0.01"}, "lr must be a number"),
        ({"epochs": 2.5}, "epochs must be"),
        ({"seed": -1}, "seed must be"),
        ({"callback": "plot"}, "callback must be a function"),
    ],
)
def test_bad_training_arguments(small, kwargs, message):
    with pytest.raises(ValueError, match=message):
        helpers.train(ODEVAE(small.p, small.q), small, progress=False, **kwargs)


def test_numpy_integers_are_accepted(small):
    import numpy as np

    history = helpers.train(
        ODEVAE(small.p, small.q), small, epochs=np.int64(2), batch_size=np.int32(5),
        progress=False,
    )  # fmt: skip
    assert len(history) == 2


def test_model_and_data_must_fit(small):
    with pytest.raises(ValueError, match="built for p=4"):
        helpers.train(VAE(4), small, progress=False)
    with pytest.raises(ValueError, match="q=3"):
        helpers.train(ODEVAE(small.p, 3), small, progress=False)
    with pytest.raises(ValueError, match="cohort must be a Cohort"):
        helpers.train(VAE(small.p), [small.xs], progress=False)
    with pytest.raises(ValueError, match="model must be a VAE or an ODEVAE"):
        helpers.train(torch.nn.Linear(2, 2), small, progress=False)


# Seeds that played no part in choosing the defaults (tuned on data seeds
# 101-112 with weight seed = data seed, and weight seeds 20-39 on data seed
# 12): three data seeds with weight seed 0, and three more weight seeds on
# data seed 12 (weight seed 3 fell into the poor optimum before starts were
# judged by fit_error).
QUALITY_RUNS = [(12, 0), (1, 0), (2, 0), (12, 1), (12, 2), (12, 3)]


@pytest.mark.parametrize(("data_seed", "weight_seed"), QUALITY_RUNS)
def test_quality_bar_with_default_settings(data_seed, weight_seed):
    """Default training beats carrying the last observation forward by far."""
    cohort = helpers.simulate_cohort(seed=data_seed)
    train_cohort, heldout = helpers.split_last_visit(cohort)
    model = ODEVAE(train_cohort.p, train_cohort.q, seed=weight_seed)
    helpers.train(model, train_cohort, seed=weight_seed, progress=False)
    scores = helpers.evaluate(model, train_cohort, heldout)
    assert scores["heldout_mse"] <= 0.40
    assert scores["group_auc"] >= 0.99
    assert scores["locf_mse"] > 1.0


def test_four_parameter_variant_trains(small):
    model = ODEVAE(small.p, small.q, n_ode_params=4)
    history = helpers.train(model, small, epochs=3, progress=False)
    assert model.ode_params(small.baseline).shape == (small.n, 4)
    assert history["loss"].notna().all()


def test_warmup_cosine_schedule_values():
    from helpers.training import warmup_cosine

    factors = [warmup_cosine(k, n_updates=200) for k in range(200)]
    assert factors[0] == pytest.approx(1 / 20) and factors[19] == pytest.approx(1.0)
    assert all(a < b for a, b in pairwise(factors[:20]))  # rising
    assert all(a >= b for a, b in pairwise(factors[19:]))  # falling
    middle = 20 + 90  # half-way through the cosine part
    assert factors[middle] == pytest.approx(0.05 + 0.95 * 0.5, abs=0.02)
    assert factors[-1] == pytest.approx(0.05, abs=1e-3)
