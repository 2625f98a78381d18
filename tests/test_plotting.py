"""Plots draw into the caller's axes, use the house colours and refuse bad input."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import helpers
from helpers import ODEVAE

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def trained():
    cohort = helpers.simulate_cohort(n=16, seed=4)
    model = ODEVAE(cohort.p, cohort.q)
    helpers.train(model, cohort, epochs=2, progress=False)
    return model, cohort


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_grid_plots_draw_into_given_axes(trained):
    model, cohort = trained
    figure, axes = plt.subplots(2, 2)
    assert helpers.plot_truth_and_data(cohort, axes=axes) is figure
    assert all(ax.lines for ax in axes.flat)
    figure, axes = plt.subplots(2, 2)
    assert helpers.plot_training_panels(model, cohort, axes=axes) is figure
    assert all(ax.lines for ax in axes.flat)


def test_measurements_have_a_legend_entry(trained):
    _, cohort = trained
    figure = helpers.plot_truth_and_data(cohort)
    labels = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]
    assert labels[-2:] == ["measurements of $u_1$", "measurements of $u_2$"]


def test_group_truth_is_dotted_in_the_state_colours(trained):
    model, cohort = trained
    figure = helpers.plot_group(model, cohort, 1)
    dotted = [line for line in figure.axes[0].lines if line.get_linestyle() == ":"]
    assert [line.get_color() for line in dotted] == list(helpers.COLORS)


def test_numpy_index_works(trained):
    model, cohort = trained
    figure = helpers.plot_individual(model, cohort, np.int64(2))
    assert figure.axes[0].get_title().startswith("individual 2 ")
