"""Batched training: determinism, the original scheme, errors and the quality bar."""

from itertools import pairwise

import pandas as pd
import pytest
import torch

import helpers
from helpers import ODEVAE, VAE, make_batch

QUALITY_SEEDS = (12, 1, 2)


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
        helpers.train(model, small, epochs=3, batch_size=3, seed=seed, progress=False)
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
            batch = make_batch(small, [i], per_visit=True)
            loss = by_hand.loss(batch, generator=generator)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    for a, b in zip(trained.parameters(), by_hand.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert helpers.ORIGINAL_SETTINGS["batch_size"] == 1


def test_vae_trains_and_full_grid_option_runs(small):
    history = helpers.train(VAE(small.p), small, epochs=5, progress=False)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    helpers.train(
        ODEVAE(small.p, small.q), small, epochs=1, time_grid="full", progress=False
    )


def test_nan_loss_stops_with_advice(small):
    def broken(t, z, params):
        return z * float("nan")

    model = ODEVAE(small.p, small.q, dynamics=broken)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        helpers.train(model, small, epochs=2, progress=False)


def test_runaway_learning_rate_stops_the_solver_with_advice(small):
    """A huge lr makes the latent system stiff: the solver gives up after
    helpers.models.MAX_SOLVER_STEPS steps instead of creeping on for minutes."""
    model = ODEVAE(small.p, small.q)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        helpers.train(model, small, epochs=5, lr=1e6, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be"),
        ({"lr": -1.0}, "lr must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"time_grid": "daily"}, "time_grid must be one of"),
        ({"schedule": "step"}, "schedule must be one of"),
        ({"every": 0}, "every must be"),
        ({"betas": (0.9, 1.5)}, "betas must be"),
        ({"betas": 0.9}, "betas must be"),
        ({"lr": "0.01"}, "lr must be a number"),
        ({"epochs": 2.5}, "epochs must be"),
        ({"shuffle": "no"}, "shuffle must be True or False"),
        ({"callback": "plot"}, "callback must be a function"),
        ({"callback": lambda model: None}, "callback must be a function"),
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


def test_nan_put_into_the_data_later_is_caught_before_training(small):
    broken = small.subset(range(small.n))
    broken.xs[3] = broken.xs[3].clone()
    broken.xs[3][1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"individual 3 .* contain NaN"):
        helpers.train(ODEVAE(small.p, small.q), broken, progress=False)


def test_original_scheme_on_per_visit_clocks_matches_the_union_solve(small):
    """ORIGINAL_SETTINGS solve per visit; solving each person on the union of
    their own visit times (the original's way) gives the same weights, up to
    the solver's tolerance."""
    per_visit, union = ODEVAE(small.p, small.q), ODEVAE(small.p, small.q)
    original = dict(helpers.ORIGINAL_SETTINGS, epochs=2, progress=False)
    helpers.train(per_visit, small, seed=3, **original)
    helpers.train(union, small, seed=3, **dict(original, time_grid="union"))
    for a, b in zip(per_visit.parameters(), union.parameters()):
        assert torch.allclose(a, b, atol=1e-4)


def test_model_and_data_must_fit(small):
    with pytest.raises(ValueError, match="expects p=4"):
        helpers.train(VAE(4), small, progress=False)
    with pytest.raises(ValueError, match="q=3"):
        helpers.train(ODEVAE(small.p, 3), small, progress=False)
    with pytest.raises(ValueError, match="cohort must be a Cohort"):
        helpers.train(VAE(small.p), [small.xs], progress=False)


@pytest.mark.parametrize("seed", QUALITY_SEEDS)
def test_quality_bar_with_default_settings(seed):
    """Default training beats carrying the last observation forward by far."""
    train_cohort, heldout = helpers.split_last_visit(helpers.simulate_cohort(seed=seed))
    model = ODEVAE(train_cohort.p, train_cohort.q)
    helpers.train(model, train_cohort, progress=False)
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
