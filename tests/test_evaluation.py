"""Evaluation: alignment, AUC and held-out errors against hand-computed values."""

import matplotlib
import pytest
import torch

import helpers
from helpers import ODEVAE, VAE, evaluation

matplotlib.use("Agg")


def test_alignment_undoes_sign_scale_shift_and_order():
    truth = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    latent = torch.stack([3.0 * truth[:, 1] - 1.0, -0.5 * truth[:, 0] + 2.0], 1)
    alignment = helpers.fit_alignment(latent, truth)
    assert alignment.order == (1, 0)
    assert torch.allclose(alignment.scale, torch.tensor([-2.0, 1 / 3]), atol=1e-5)
    assert torch.allclose(alignment.apply(latent), truth, atol=1e-5)
    assert alignment.r2 == pytest.approx(1.0)


def test_alignment_of_noise_explains_little():
    generator = torch.Generator().manual_seed(1)
    truth, latent = torch.randn(500, 2, generator=generator), torch.randn(500, 2)
    assert helpers.fit_alignment(latent, truth).r2 < 0.05


def test_auc_against_hand_counts():
    assert helpers.auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert helpers.auc([1, 1], [True, False]) == 0.5
    assert helpers.auc([0.2, 0.9, 0.4], [0, 1, 0]) == 1.0  # 1/0 work as labels


@pytest.fixture(scope="module")
def split():
    return helpers.split_last_visit(helpers.simulate_cohort(n=30, seed=4))


def test_evaluate_computes_locf_and_heldout_errors(split):
    train_cohort, heldout = split
    model = ODEVAE(train_cohort.p, train_cohort.q)
    scores = helpers.evaluate(model, train_cohort, heldout)
    ids = heldout["ids"].tolist()
    locf = torch.stack(
        [(train_cohort.xs[i][-1] - v) ** 2 for i, v in zip(ids, heldout["values"])]
    ).mean()
    assert scores["locf_mse"] == pytest.approx(locf.item(), rel=1e-6)
    one = model.decode(model.latent_trajectory(
        train_cohort.xs[ids[0]][0], train_cohort.baseline[ids[0]], heldout["times"][:1]
    ))[0]
    each = []
    with torch.no_grad():
        for i, t, v in zip(ids, heldout["times"], heldout["values"]):
            pred = model.decode(model.latent_trajectory(
                train_cohort.xs[i][0], train_cohort.baseline[i], t[None]
            ))[0]
            each.append(((pred[0] - v) ** 2).mean())
    assert one.shape == (1, train_cohort.p)
    assert scores["heldout_mse"] == pytest.approx(
        torch.stack(each).mean().item(), rel=1e-4
    )
    assert scores["n_heldout"] == len(ids)
    assert 0.5 <= scores["group_auc"] <= 1.0
    assert len(scores["group_auc_per_param"]) == 2


def test_evaluate_rejects_bad_input(split):
    train_cohort, heldout = split
    with pytest.raises(ValueError, match="model must be an ODEVAE"):
        helpers.evaluate(VAE(train_cohort.p), train_cohort, heldout)
    with pytest.raises(ValueError, match="zdim=2"):
        helpers.align_latent(VAE(train_cohort.p, zdim=3), train_cohort)


def test_plots_return_labelled_figures(split):
    train_cohort, _ = split
    model = ODEVAE(train_cohort.p, train_cohort.q)
    history = helpers.train(model, train_cohort, epochs=2, progress=False)
    figure = helpers.plot_truth_and_data(train_cohort)
    assert len(figure.axes) == 4 and figure.axes[0].get_legend() is not None
    figure = helpers.plot_training_panels(model, train_cohort, epoch=2)
    assert len(figure.axes) == 4 and "epoch 2" in figure._suptitle.get_text()
    figure = helpers.plot_individual(VAE(train_cohort.p), train_cohort, 3)
    assert figure.axes[0].get_xlabel() == "time"
    figure = helpers.plot_group(model, train_cohort, 2)
    members = int((train_cohort.groups == 2).sum())
    assert len(figure.axes[0].lines) >= 2 * members
    figure = helpers.plot_losses({"a": history, "b": history})
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["a", "b"]
    matplotlib.pyplot.close("all")


def test_evaluation_and_plots_follow_the_model_precision(split):
    """A float64 model (like a GPU model) gets float32 CPU data moved to it."""
    train_cohort, heldout = split
    model = ODEVAE(train_cohort.p, train_cohort.q).double()
    scores = helpers.evaluate(model, train_cohort, heldout)
    assert all(isinstance(scores[k], float) for k in ("heldout_mse", "latent_r2"))
    helpers.plot_individual(model, train_cohort, 0)
    helpers.plot_group(model, train_cohort, 1)
    matplotlib.pyplot.close("all")


def test_evaluate_returns_the_alignment_it_scored(split):
    train_cohort, heldout = split
    model = ODEVAE(train_cohort.p, train_cohort.q, seed=3)
    scores = helpers.evaluate(model, train_cohort, heldout)
    again = helpers.align_latent(model, train_cohort)
    assert scores["latent_r2"] == scores["alignment"].r2 == again.r2
    assert scores["alignment"].order == again.order
    assert torch.equal(scores["alignment"].scale, again.scale)


def test_param_aucs_match_the_rank_statistic_in_both_directions():
    groups = torch.tensor([1, 1, 2, 2, 2])
    params = torch.tensor([[0.0, 5.0], [1.0, 4.0], [2.0, 3.0], [3.0, 2.0],
                           [0.5, 1.0]])
    # column 0: group 2 values (2, 3, 0.5) beat group 1 (0, 1) in 5 of 6 pairs
    # column 1: every group 2 value is below every group 1 value
    assert evaluation.param_aucs(params, groups) == pytest.approx([5 / 6, 0.0])
