"""Plots of the data, of training progress and of results (Part II).

Colours: first latent dimension / true state blue, second orange. True
trajectories are dotted, fitted ODE solutions solid, encoder means dots.
Latent curves are aligned to the truth (sign, scale, shift, order) with
:func:`helpers.align_latent`, so no manual colour swap is needed. Every
function returns the figure and accepts an optional ``ax`` to draw into.
"""


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib import patheffects

from .evaluation import Alignment, align_latent
from .models import ODEVAE, VAE
from .simulation import Cohort

COLORS = ("#1f77b4", "#ff7f0e")
# a dark rim keeps a dotted truth visible on top of many thin fitted lines
OUTLINE = (patheffects.Stroke(linewidth=4.5, foreground="black"), patheffects.Normal())
STATE_NAMES = ("$u_1$", "$u_2$")


def _axes(ax, figsize=(5, 3.5)):
    if ax is None:
        figure, ax = plt.subplots(figsize=figsize)
        return figure, ax
    return ax.figure, ax


def _axes_2x2(axes, figsize, **options):
    """A new 2x2 grid of axes, or the caller's four ``axes`` as a 2x2 array."""
    if axes is None:
        return plt.subplots(2, 2, figsize=figsize, **options)
    axes = np.asarray(axes, dtype=object).reshape(2, 2)
    return axes[0, 0].figure, axes


def _plot_truth(ax, times, truth, k, **style):
    """The true state ``k`` (column of ``truth``) as a dotted line."""
    ax.plot(times, truth[:, k], ":", color=COLORS[k], label=f"true {STATE_NAMES[k]}",
            **style)  # fmt: skip


def plot_truth_and_data(cohort: Cohort, figsize=(10, 7), axes=None):
    """True trajectories per group, alone and with every measurement (2x2).

    Args:
        cohort: the cohort (notebook section "Simulating the data").
        figsize: figure size in inches (for a new figure).
        axes: optional 2x2 grid of axes to draw into (rows: groups).

    Returns:
        The figure.
    """
    figure, axes = _axes_2x2(axes, figsize, sharex=True, sharey=True)
    times = cohort.time_grid()
    half = cohort.p // 2
    for row, group in enumerate((1, 2)):
        truth = cohort.true_trajectory(group, times)
        members = [i for i in range(cohort.n) if int(cohort.groups[i]) == group]
        for column, ax in enumerate(axes[row]):
            for k in range(2):
                _plot_truth(ax, times, truth, k, lw=2.5)
            if column == 1:
                for i in members:
                    t, x = cohort.ts[i], cohort.xs[i]
                    for k, columns in enumerate((slice(0, half), slice(half, None))):
                        ax.plot(
                            t.repeat_interleave(half),
                            x[:, columns].reshape(-1),
                            ".",
                            color=COLORS[k],
                            ms=2,
                            alpha=0.35,
                        )
                for k in range(2):  # legend entries for the measurements
                    label = f"measurements of {STATE_NAMES[k]}"
                    ax.plot([], [], ".", color=COLORS[k], label=label)
            title = "truth" if column == 0 else "truth and measurements"
            ax.set_title(f"group {group}: {title} ({len(members)} individuals)")
            ax.set_xlabel("time")
        axes[row, 0].set_ylabel("value")
    axes[0, 0].legend(loc="upper left")
    axes[0, 1].legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    return figure


def _draw_individual(ax, model, cohort, individual, alignment, legend=True):
    """Truth (dotted), fitted latent solution (solid) and encoder means (dots)."""
    group = int(cohort.groups[individual])
    times = cohort.time_grid()
    truth = cohort.true_trajectory(group, times)
    with torch.no_grad():
        visits = alignment.apply(model.encode(cohort.xs[individual])[0])
        fitted = None
        if isinstance(model, ODEVAE):
            x0 = cohort.xs[individual][:1]  # (1, p): the first visit
            base = cohort.baseline[individual : individual + 1]
            fitted = alignment.apply(model._latent_paths(x0, base, times)[:, 0])
    for k in range(2):
        _plot_truth(ax, times, truth, k, lw=2)
        if fitted is not None:
            ax.plot(
                times,
                fitted[:, k],
                "-",
                color=COLORS[k],
                lw=1.8,
                label=f"fitted {STATE_NAMES[k]}",
            )
        ax.plot(
            cohort.ts[individual],
            visits[:, k],
            "o",
            color=COLORS[k],
            ms=5,
            mfc="white",
            label=f"encoder mean {STATE_NAMES[k]}",
        )
    ax.set_title(f"individual {individual} (group {group})")
    ax.set_xlabel("time")
    ax.set_ylabel("latent state (aligned)")
    if legend:
        ax.legend(fontsize="small", ncol=2)


def _alignment(model, cohort, alignment):
    return align_latent(model, cohort) if alignment is None else alignment


def plot_individual(model: VAE, cohort: Cohort, individual: int, ax=None,
                    alignment: Alignment | None = None):  # fmt: skip
    """One individual: true trajectory, fitted latent solution, encoder means.

    Args:
        model: a :class:`VAE` (encoder means only) or :class:`ODEVAE`.
        cohort: the cohort the individual belongs to.
        individual: index of the individual.
        ax: optional matplotlib axes to draw into.
        alignment: latent-to-truth map; computed with
            :func:`helpers.align_latent` when omitted.

    Returns:
        The figure.
    """
    alignment = _alignment(model, cohort, alignment)
    figure, ax = _axes(ax)
    _draw_individual(ax, model, cohort, individual, alignment)
    return figure


def plot_training_panels(
    model: VAE,
    cohort: Cohort,
    individuals=(0, 1, 2, 3),
    epoch: int | None = None,
    figsize=(10, 7),
    axes=None,
):
    """2x2 panels of four individuals, e.g. from a training callback.

    Args:
        model: a :class:`VAE` or :class:`ODEVAE`.
        cohort: the training cohort.
        individuals: four indices.
        epoch: shown in the title when given.
        figsize: figure size in inches (for a new figure).
        axes: optional 2x2 grid of axes to draw into.

    Returns:
        The figure.
    """
    alignment = _alignment(model, cohort, None)
    figure, axes = _axes_2x2(axes, figsize, sharex=True)
    for k, (ax, individual) in enumerate(zip(axes.flat, individuals)):
        _draw_individual(ax, model, cohort, individual, alignment, legend=k == 0)
    kind = "ODE-VAE" if isinstance(model, ODEVAE) else "VAE"
    when = "" if epoch is None else f" after epoch {epoch}"
    figure.suptitle(f"{kind}{when} (latent fit R² = {alignment.r2:.2f})")
    figure.tight_layout()
    return figure


def plot_group(model: ODEVAE, cohort: Cohort, group: int, ax=None,
               alignment: Alignment | None = None):  # fmt: skip
    """Fitted latent solutions of all individuals of a group, thin lines.

    Args:
        model: a trained :class:`ODEVAE`.
        group: 1 or 2.
        cohort, ax, alignment: as in :func:`plot_individual`.

    Returns:
        The figure.
    """
    members = (cohort.groups == group).nonzero().flatten()
    alignment = _alignment(model, cohort, alignment)
    figure, ax = _axes(ax)
    times = cohort.time_grid()
    with torch.no_grad():
        paths = alignment.apply(
            model._latent_paths(
                cohort.first_visits(members), cohort.baseline[members], times
            )
        )
    truth = cohort.true_trajectory(group, times)
    for k in range(2):
        ax.plot(times, paths[:, :, k], "-", color=COLORS[k], lw=0.6, alpha=0.4)
        ax.plot([], [], "-", color=COLORS[k], lw=0.8, label=f"fitted {STATE_NAMES[k]}")
        _plot_truth(ax, times, truth, k, lw=3, zorder=3, path_effects=OUTLINE)
    ax.set_title(f"group {group}: all {len(members)} individuals")
    ax.set_xlabel("time")
    ax.set_ylabel("latent state (aligned)")
    ax.legend(fontsize="small")
    return figure


def plot_losses(histories, ax=None, log_scale: bool = False):
    """Training loss per epoch, for one run or several side by side.

    Args:
        histories: a DataFrame from :func:`helpers.train`, or a dict mapping a
            label to such a DataFrame.
        ax: optional axes.
        log_scale: use a logarithmic epoch axis (helps when runs differ a lot
            in length).

    Returns:
        The figure.
    """
    if isinstance(histories, pd.DataFrame):
        histories = {"training loss": histories}
    figure, ax = _axes(ax)
    for label, history in histories.items():
        ax.plot(history["epoch"], history["loss"], "-", lw=1.8, label=label)
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per individual")
    ax.set_title("training loss")
    ax.legend()
    return figure
