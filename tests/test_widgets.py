"""Tests of the exercise explorer: run_experiment and the ipywidgets panel.

Training is the slow part, so runs that check plumbing use few epochs; the
behavioural check relies on an information bound rather than on a long fit.
"""

import inspect
import math

import pytest
import torch

import helpers
from helpers import evaluation
from helpers import widgets as hw

FAST = {"n": 40, "epochs": 8}  # enough to exercise every step, not to fit well


@pytest.fixture(scope="module")
def quick_run():
    return hw.run_experiment(**FAST)


def test_default_settings_follow_the_helpers_signatures():
    settings = hw.default_settings()
    train_defaults = inspect.signature(helpers.train).parameters
    for name in ("epochs", "lr", "batch_size"):
        assert settings[name] == train_defaults[name].default
    simulate_defaults = inspect.signature(helpers.simulate_cohort).parameters
    for name in ("n", "maxntps", "sigma_ind", "baseline", "ode_params", "seed"):
        assert settings[name] == simulate_defaults[name].default, name
    for name, value in hw.FIXED_SIMULATION.items():
        assert simulate_defaults[name].default == value, name
    assert settings["n"] == 100 and settings["baseline"] == "trueparams"
    assert settings["ode_params"] == ((-0.2, 0.0, 0.0, -0.2), (-0.2, 0.0, 0.0, 0.2))


def test_run_experiment_returns_scores_figure_and_settings(quick_run):
    expected = {"heldout_mse", "locf_mse", "group_auc", "group_auc_new",
                "latent_r2", "n_heldout",
                "learned_ode_params", "final_loss", "seconds", "history",
                "settings", "figure"}
    assert expected <= set(quick_run)
    for name in hw.METRICS:
        assert math.isfinite(quick_run[name]), name
    assert quick_run["final_loss"] == quick_run["history"]["loss"].iloc[-1]
    assert 0.5 <= quick_run["group_auc"] <= 1.0
    assert quick_run["seconds"] > 0
    assert len(quick_run["history"]) == FAST["epochs"]
    assert quick_run["settings"] == dict(hw.default_settings(), **FAST)
    assert len(quick_run["figure"].axes) == 2
    assert set(quick_run["learned_ode_params"]) == {1, 2}
    assert all(len(v) == 2 for v in quick_run["learned_ode_params"].values())


@pytest.mark.parametrize("settings", [
    {"baseline": "groupsonly", "sigma_ind": 0.2, "maxntps": 4},
    {"n_ode_params": 4, "n": 30, "baseline_noise": 0.3, "model_seed": 3,
     "ode_params": ((-0.3, 0.0, 0.0, -0.1), (-0.1, 0.0, 0.0, 0.1))},
])
def test_run_experiment_on_other_settings(settings):
    result = hw.run_experiment(**dict(FAST, **settings))
    assert result["settings"]["baseline"] == settings.get("baseline", "trueparams")
    assert all(math.isfinite(result[k]) for k in ("heldout_mse", "latent_r2"))
    k = settings.get("n_ode_params", 2)
    assert all(len(v) == k for v in result["learned_ode_params"].values())
    # the held-out visits are the individuals' last ones: at most n of them
    assert 0 < result["n_heldout"] <= result["settings"]["n"]
    assert len(result["figure"].axes) == 2


def test_sigma_ind_reaches_the_data(quick_run):
    # carrying the last visit forward errs by about the noise: less noise, less error
    quiet = hw.run_experiment(**dict(FAST, sigma_ind=0.05, epochs=1))
    assert quiet["locf_mse"] < quick_run["locf_mse"] - 0.2


def test_baseline_noise_erases_the_group_signal():
    # With clean "trueparams" baselines the learned parameters separate the
    # groups at once; noise of sd 3 leaves too little information for that
    # (the best possible AUC from the baseline variables is then about 0.6).
    clean = hw.run_experiment(epochs=3)
    noisy = hw.run_experiment(epochs=3, baseline_noise=3.0)
    assert clean["group_auc"] > 0.9
    assert noisy["group_auc"] < 0.75


def test_run_experiment_is_deterministic(quick_run):
    again = hw.run_experiment(**FAST)
    assert again["heldout_mse"] == quick_run["heldout_mse"]
    assert again["learned_ode_params"] == quick_run["learned_ode_params"]


@pytest.mark.parametrize("settings, words", [
    ({"foo": 1}, "unknown setting(s) foo; allowed settings are n, maxntps"),
    ({"n_ode_params": 3}, "n_ode_params must be 2"),
    ({"baseline_noise": -1.0}, "baseline_noise"),
    ({"model_seed": -2}, "model_seed"),
    ({"baseline": "random"}, "baseline must be one of"),
    ({"maxntps": 1}, "maxntps=1 leaves nobody"),
    ({"lr": 0.0}, "lr must be"),
    ({"p": 4}, "unknown setting(s) p"),
])
def test_bad_settings_raise_clear_errors(settings, words):
    with pytest.raises(ValueError) as error:
        hw.run_experiment(**settings)
    assert words in str(error.value)


def test_add_baseline_noise_adds_independent_noise_of_that_size():
    cohort = helpers.simulate_cohort(n=400, seed=3)
    assert hw.add_baseline_noise(cohort, 0.0, seed=1) is cohort
    noisy = hw.add_baseline_noise(cohort, 1.0, seed=1)
    # non-informative variables: sd 0.1 before, sqrt(0.1^2 + 1^2) after
    sd = noisy.baseline[:, 10:].std().item()
    assert sd == pytest.approx(math.sqrt(0.01 + 1.0), rel=0.03)
    assert torch.equal(noisy.xs[0], cohort.xs[0])
    again = hw.add_baseline_noise(cohort, 1.0, seed=1)
    assert torch.equal(again.baseline, noisy.baseline)


def test_learned_ode_params_are_carried_to_the_truths_coordinates():
    cohort = helpers.simulate_cohort(n=20, seed=4)
    model = helpers.ODEVAE(cohort.p, cohort.q, n_ode_params=4, seed=5)
    alignment = helpers.Alignment(order=(1, 0), scale=torch.tensor([2.0, -0.5]),
                                  shift=torch.zeros(2), r2=1.0)
    got = evaluation.learned_ode_params(model, cohort, alignment)
    with torch.no_grad():
        params = model.ode_params(cohort.baseline).double()
    for group in (1, 2):
        a = params[cohort.groups == group].mean(0)  # z-coordinates, row-wise
        # u1 = 2 z2, u2 = -0.5 z1: swap the axes and rescale the off-diagonals
        want = (a[3], a[2] * 2.0 / -0.5, a[1] * -0.5 / 2.0, a[0])
        assert got[group] == pytest.approx([w.item() for w in want], abs=1e-3)


class _StubModel:
    """Stands in for a trained ODE-VAE: parameters from a fixed rule."""

    def __init__(self, rule):
        self.rule = rule

    def ode_params(self, baseline):
        return self.rule(baseline)


def test_new_individuals_auc_scores_fresh_people_in_the_training_direction():
    train_cohort = helpers.simulate_cohort(n=60, seed=1)
    fresh = helpers.simulate_cohort(n=60, seed=2)
    # baseline variable 7 is centred on a22 (-0.2 or +0.2), variable 0 on a11
    uses_a22 = _StubModel(lambda b: torch.stack([b[:, 0], -b[:, 7]], 1))
    assert evaluation.new_individuals_auc(uses_a22, train_cohort, fresh) > 0.95
    # parameters that memorised the training groups carry nothing over
    noise = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))

    def memorised(b):
        if b is train_cohort.baseline:
            return torch.stack([train_cohort.groups.float(), noise[:, 1]], 1)
        return noise
    auc_new = evaluation.new_individuals_auc(_StubModel(memorised), train_cohort, fresh)
    assert abs(auc_new - 0.5) < 0.2


def test_metrics_frame_puts_runs_side_by_side(quick_run):
    four = dict(quick_run, learned_ode_params={1: (1.0, 2.0, 3.0, 4.0),
                                               2: (5.0, 6.0, 7.0, 8.0)})
    frame = hw.metrics_frame({"two": quick_run, "four": four})
    assert list(frame.columns) == ["two", "four"]
    assert frame.loc["heldout_mse", "two"] == pytest.approx(quick_run["heldout_mse"])
    assert frame.loc["g2 a21", "four"] == 7.0
    assert math.isnan(frame.loc["g2 a21", "two"])
    # eigenvalues of [[5, 6], [7, 8]]: (13 +- sqrt(177)) / 2
    assert frame.loc["g2 rate 1", "four"] == pytest.approx((13 + math.sqrt(177)) / 2)
    assert frame.loc["g2 rate 2", "four"] == pytest.approx((13 - math.sqrt(177)) / 2)
    a11, a22 = quick_run["learned_ode_params"][1]
    assert frame.loc["g1 rate 1", "two"] == pytest.approx(max(a11, a22))


def test_growth_rates_ignore_the_choice_of_latent_axes():
    # a rotation-like change of coordinates M A M^-1 keeps the rates
    matrix = torch.tensor([[-0.2, 0.0], [0.0, 0.2]], dtype=torch.float64)
    change = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    mixed = change @ matrix @ torch.linalg.inv(change)
    rates = evaluation.growth_rates(mixed.flatten().tolist())
    assert rates == pytest.approx((0.2, -0.2))
    assert evaluation.growth_rates((-0.3, 0.1)) == pytest.approx((0.1, -0.3))


def test_explorer_runs_from_its_controls_and_shows_the_outcome():
    panel = hw.explorer(**FAST)
    assert isinstance(panel, hw.Explorer) and panel.figure in panel.children
    assert panel.figure.layout.display == "none"  # no figure before a run
    panel.controls["g2_a22"].value = 0.1
    panel.controls["baseline"].value = "groupsonly"
    settings = panel.current_settings()
    assert settings["ode_params"] == ((-0.2, 0.0, 0.0, -0.2), (-0.2, 0.0, 0.0, 0.1))
    assert settings["baseline"] == "groupsonly" and settings["n"] == FAST["n"]

    panel.run_button.click()
    assert panel.status.value.startswith("Done")
    assert len(panel.results) == 1
    assert "heldout_mse" in panel.metrics_html.value
    assert f"{panel.results[0]['heldout_mse']:.3f}" in panel.metrics_html.value
    assert panel.figure.value[:4] == b"\x89PNG" and panel.figure.format == "png"
    assert panel.figure.layout.display is None  # shown
    assert not panel.run_button.disabled
    first_png = panel.figure.value

    panel.controls["sigma_ind"].value = 0.25
    panel.run_button.click()
    assert len(panel.results) == 2
    assert "previous run" in panel.metrics_html.value
    assert "sigma_ind 0.5 -&gt; 0.25" in panel.metrics_html.value
    assert panel.status.value.startswith("Done (run 2)")
    assert panel.figure.value != first_png


def test_explorer_shows_it_is_busy_and_ignores_a_second_click(monkeypatch):
    seen = []
    real_run = hw.run_experiment

    def slow_run(**settings):
        # what the panel shows while training; a click now must start nothing
        seen.append((panel.run_button.disabled, panel.status.value))
        assert panel.run() is None
        panel.run_button.click()
        return real_run(**dict(settings, epochs=1))

    panel = hw.explorer(**FAST)
    monkeypatch.setattr(hw, "run_experiment", slow_run)
    panel.run_button.click()
    assert len(seen) == 1 and len(panel.results) == 1
    disabled, status = seen[0]
    assert disabled and "<progress></progress> Running: 8 epochs on 40" in status
    assert not panel.run_button.disabled and panel.status.value.startswith("Done")
    panel.run_button.click()  # once the run is over, a click runs again
    assert len(seen) == 2 and len(panel.results) == 2


def test_explorer_shows_bad_settings_as_a_message_not_a_traceback():
    panel = hw.explorer(**FAST)
    panel.controls["maxntps"].value = 1
    assert panel.run() is None  # no exception escapes the handler
    assert "Could not run" in panel.status.value
    assert "maxntps" in panel.status.value
    assert "maxntps=1 leaves nobody" in panel.status.value
    assert panel.results == [] and not panel.run_button.disabled
    assert panel.figure.layout.display == "none" and panel.metrics_html.value == ""


def test_explorer_hides_the_last_figure_and_table_after_a_failed_run():
    panel = hw.explorer(**dict(FAST, epochs=1))
    panel.run_button.click()
    assert panel.figure.layout.display is None and panel.metrics_html.value
    panel.controls["maxntps"].value = 1
    panel.run_button.click()
    assert "Could not run" in panel.status.value
    assert panel.figure.layout.display == "none" and panel.metrics_html.value == ""
    assert len(panel.results) == 1 and not panel.run_button.disabled


@pytest.mark.parametrize("error", [
    FloatingPointError("the loss became nan in epoch 3: lower the learning rate"),
    RuntimeError("solver broke"),
])
def test_explorer_reports_diverging_or_failing_runs(monkeypatch, error):
    def failing_run(**settings):
        raise error

    monkeypatch.setattr(hw, "run_experiment", failing_run)
    panel = hw.explorer()
    panel.run_button.click()
    assert "Could not run" in panel.status.value
    assert str(error).split(":")[0] in panel.status.value


def test_explorer_keeps_starting_values_outside_the_slider_ranges():
    panel = hw.explorer(n=1000, epochs=1000)
    assert panel.controls["n"].value == 1000
    assert panel.current_settings()["epochs"] == 1000
    with pytest.raises(ValueError, match="unknown setting"):
        hw.explorer(colour="red")


@pytest.mark.parametrize(("settings", "words"), [
    ({"n": "100"}, "n must be an integer"),
    ({"lr": "a"}, "lr must be a number"),
    ({"seed": None}, "seed must be an integer >= 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"batch_size": None}, "batch_size must be an integer"),
    ({"ode_params": ((0, 0, 0), (0, 0, 0))}, "ode_params must be two rows"),
])
def test_explorer_checks_starting_values_before_building_controls(settings, words):
    with pytest.raises(ValueError) as error:
        hw.explorer(**settings)
    assert words in str(error.value)
