"""Evaluation: alignment, AUC and held-out errors against hand-computed values."""

import matplotlib
import pytest
import torch

import helpers
from helpers import ODEVAE, VAE

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
    with pytest.raises(ValueError, match="shape"):
        helpers.fit_alignment(latent[:, :1], truth)


def test_auc_against_hand_counts():
    assert helpers.auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert helpers.auc([1, 1], [True, False]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        helpers.auc([1, 2], [True, True])


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
    one = model.predict(
        train_cohort.xs[ids[0]][0], train_cohort.baseline[ids[0]], heldout["times"][:1]
    )
    each = []
    with torch.no_grad():
        for i, t, v in zip(ids, heldout["times"], heldout["values"]):
            pred = model.predict(
                train_cohort.xs[i][0], train_cohort.baseline[i], t[None]
            )
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
    with pytest.raises(ValueError, match="needs an ODEVAE"):
        helpers.evaluate(VAE(train_cohort.p), train_cohort, heldout)
    broken = dict(heldout, values=heldout["values"][:, :3])
    with pytest.raises(ValueError, match="heldout must be"):
        helpers.evaluate(ODEVAE(train_cohort.p, train_cohort.q), train_cohort, broken)


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
    with pytest.raises(ValueError, match="individual must be"):
        helpers.plot_individual(model, train_cohort, 99)
    with pytest.raises(ValueError, match="group must be"):
        helpers.plot_group(model, train_cohort, 3)
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


def test_alignment_and_auc_refuse_nan_and_mismatched_labels():
    truth = torch.randn(20, 2, generator=torch.Generator().manual_seed(2))
    latent = truth.clone()
    latent[3, 1] = float("nan")
    with pytest.raises(ValueError, match="latent contains NaN"):
        helpers.fit_alignment(latent, truth)
    with pytest.raises(ValueError, match="truth contains NaN"):
        helpers.fit_alignment(truth, latent)
    with pytest.raises(ValueError, match="scores contains NaN"):
        helpers.auc([0.1, float("nan"), 0.3], [True, False, True])
    with pytest.raises(ValueError, match=r"labels must have one entry per score"):
        helpers.auc([0.1, 0.2, 0.3], [True, False])
    with pytest.raises(ValueError, match=r"labels must be True/False.*\[2\]"):
        helpers.auc([0.1, 0.2, 0.3], [1, 2, 1])  # group numbers are not labels
    with pytest.raises(ValueError, match=r"labels must be True/False.*nan"):
        helpers.auc([0.1, 0.2], [1.0, float("nan")])
    with pytest.raises(ValueError, match="scores must be 1-D"):
        helpers.auc([[0.1, 0.2]], [[True, False]])
    assert helpers.auc([0.2, 0.9, 0.4], [0, 1, 0]) == 1.0  # 1/0 still work


def test_evaluate_refuses_the_full_cohort(split):
    train_cohort, heldout = split
    full = helpers.simulate_cohort(n=30, seed=4)
    model = ODEVAE(train_cohort.p, train_cohort.q)
    with pytest.raises(ValueError, match="pass the training cohort returned by split"):
        helpers.evaluate(model, full, heldout)
    # ... also when the heldout visit is before the cohort's last visit
    i = heldout["ids"][0].item()
    earlier = dict(heldout, times=heldout["times"].clone())
    earlier["times"][0] = train_cohort.ts[i][-1] - 0.5
    with pytest.raises(ValueError, match="earlier than its last visit in cohort"):
        helpers.evaluate(model, train_cohort, earlier)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, n: [1, 2, 3], "heldout must be the dict .*got list"),
        (lambda h, n: {"ids": h["ids"]}, r"lacks the keys \['times', 'values'\]"),
        (lambda h, n: dict(h, ids=-h["ids"] - 1), r"individuals 0 to 29 .*got \[-"),
        (lambda h, n: dict(h, ids=h["ids"] + n), r"individuals 0 to 29 .*got \[3"),
        (lambda h, n: dict(h, ids=h["ids"] + 0.5), r"ids'\] must be integers"),
        (lambda h, n: dict(h, ids=h["ids"].float()), r"ids'\] must be integers"),
        (lambda h, n: dict(h, ids=h["ids"][0]), r"non-empty 1-D tensor, got shape"),
        (lambda h, n: dict(h, ids=h["ids"][:0]), r"non-empty 1-D tensor"),
        (
            lambda h, n: dict(h, ids=torch.cat([h["ids"][:1], h["ids"][:-1]])),
            "must not repeat an individual",
        ),
        (
            lambda h, n: dict(h, values=h["values"] * torch.tensor(float("nan"))),
            r"values'\] contains NaN",
        ),
        (
            lambda h, n: dict(h, times=h["times"] * torch.tensor(float("nan"))),
            r"times'\] contains NaN",
        ),
        (lambda h, n: dict(h, times=h["times"][:-1]), r"times'\] must have shape"),
    ],
)
def test_evaluate_refuses_bad_heldout(split, change, message):
    train_cohort, heldout = split
    model = ODEVAE(train_cohort.p, train_cohort.q)
    with pytest.raises(ValueError, match=message):
        helpers.evaluate(model, train_cohort, change(heldout, train_cohort.n))
