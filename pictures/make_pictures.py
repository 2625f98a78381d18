"""Draw every diagram of the workshop with matplotlib.

One script, one source of truth: the notebooks, the README and the blog post
show the PNG files this script writes into ``pictures/``. Edit a drawing
function below and run

    python pictures/make_pictures.py            # PNG and SVG into pictures/
    python pictures/make_pictures.py --out DIR  # somewhere else
    python pictures/make_pictures.py --only vae odevae

Each ``draw_*`` function returns a matplotlib figure drawn on a plain
coordinate canvas (one unit is about a quarter inch), built from the small
shape helpers at the top. Colours follow the notebooks: latent dimension 1
blue, dimension 2 orange; neural networks green, knowledge-driven parts
(the ODE) purple, data grey, the loss red.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import (
    Circle,
    FancyArrowPatch,
    FancyBboxPatch,
    Polygon,
    Rectangle,
)

LATENT_1 = "#1f77b4"
LATENT_2 = "#ff7f0e"
INK = "#222222"
STYLES = {
    "network": {"face": "#e3f2e1", "edge": "#2ca02c"},
    "knowledge": {"face": "#eee6f7", "edge": "#9467bd"},
    "data": {"face": "#f0f0f0", "edge": "#7f7f7f"},
    "loss": {"face": "#fde3e1", "edge": "#d62728"},
    "latent": {"face": "#e8f1fa", "edge": LATENT_1},
    "plain": {"face": "white", "edge": INK},
}
FONT = 14
SMALL = 12
UNIT_INCHES = 0.25

plt.rcParams.update(
    {"font.family": "DejaVu Sans", "svg.fonttype": "none", "svg.hashsalt": "workshop"}
)


# --- drawing helpers -------------------------------------------------------


def canvas(width: float, height: float, title: str = "") -> tuple[plt.Figure, plt.Axes]:
    """A blank figure whose data coordinates run over ``[0, width] x [0, height]``.

    Args:
        width: canvas width in drawing units (one unit is ``UNIT_INCHES``).
        height: canvas height in drawing units.
        title: bold heading centred one unit below the top edge.

    Returns:
        ``(figure, axes)`` with the axes filling the figure, no ticks or frame.
    """
    fig = plt.figure(figsize=(width * UNIT_INCHES, height * UNIT_INCHES))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.text(
            width / 2,
            height - 1,
            title,
            ha="center",
            va="center",
            fontsize=15,
            weight="bold",
            color=INK,
        )
    return fig, ax


def box(
    ax: plt.Axes,
    center: tuple[float, float],
    size: tuple[float, float],
    text: str = "",
    kind: str = "plain",
    fontsize: float = FONT,
    **text_kwargs,
) -> None:
    """A rounded box with centred text, coloured by ``kind`` (see ``STYLES``)."""
    (x, y), (w, h) = center, size
    style = STYLES[kind]
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.4",
            facecolor=style["face"],
            edgecolor=style["edge"],
            linewidth=2,
        )
    )
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, **text_kwargs)


def trapezoid(
    ax: plt.Axes,
    center: tuple[float, float],
    width: float,
    heights: tuple[float, float],
    text: str,
    kind: str = "network",
) -> None:
    """A network drawn as a trapezoid: ``heights`` = (left edge, right edge)."""
    x, y = center
    left, right = heights
    corners = [
        (x - width / 2, y - left / 2),
        (x + width / 2, y - right / 2),
        (x + width / 2, y + right / 2),
        (x - width / 2, y + left / 2),
    ]
    style = STYLES[kind]
    ax.add_patch(
        Polygon(
            corners, closed=True, facecolor=style["face"], edgecolor=style["edge"], lw=2
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=FONT)


def arrow(
    ax: plt.Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    color: str = INK,
    style: str = "-|>",
    curve: float = 0.0,
    linestyle: str = "-",
    width: float = 1.8,
) -> None:
    """An arrow from ``start`` to ``end``; ``curve`` bends it (arc radius)."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=18,
            color=color,
            linewidth=width,
            linestyle=linestyle,
            connectionstyle=f"arc3,rad={curve}",
            shrinkA=0,
            shrinkB=0,
        )
    )


def vector(
    ax: plt.Axes,
    center: tuple[float, float],
    n_cells: int,
    cell: float = 0.55,
    colors: Sequence[str] | None = None,
    horizontal: bool = False,
    seed: int = 0,
) -> None:
    """A data vector drawn as a column (or row) of small shaded cells."""
    x, y = center
    rng = np.random.default_rng(seed)
    shades = colors or [str(g) for g in rng.uniform(0.45, 0.9, n_cells).round(2)]
    for i, shade in enumerate(shades):
        offset = (i - (n_cells - 1) / 2) * cell
        corner = (
            (x + offset - cell / 2, y - cell / 2)
            if horizontal
            else (x - cell / 2, y - offset - cell / 2)
        )
        ax.add_patch(
            Rectangle(corner, cell, cell, facecolor=shade, edgecolor="white", lw=1)
        )


def latent_pair(ax: plt.Axes, center: tuple[float, float], cell: float = 0.7) -> None:
    """The two latent dimensions: a blue cell above an orange cell."""
    vector(ax, center, 2, cell=cell, colors=[LATENT_1, LATENT_2])


def label(
    ax: plt.Axes,
    position: tuple[float, float],
    text: str,
    fontsize: float = SMALL,
    color: str = INK,
    **kwargs,
) -> None:
    """Centred text (keyword arguments go to ``ax.text``)."""
    kwargs.setdefault("ha", "center")
    kwargs.setdefault("va", "center")
    ax.text(*position, text, fontsize=fontsize, color=color, **kwargs)


def mini_axes(
    fig: plt.Figure,
    ax: plt.Axes,
    corner: tuple[float, float],
    size: tuple[float, float],
) -> plt.Axes:
    """A small plot placed on the canvas at data position ``corner`` (lower left)."""
    width, height = ax.get_xlim()[1], ax.get_ylim()[1]
    inset = fig.add_axes(
        (corner[0] / width, corner[1] / height, size[0] / width, size[1] / height)
    )
    inset.tick_params(labelsize=9, length=2)
    for side in ("top", "right"):
        inset.spines[side].set_visible(False)
    return inset


def latent_curves(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Example latent trajectories (group 2 of the simulation): both dims."""
    return 2 * np.exp(-0.2 * t), np.exp(0.2 * t)


# --- the diagrams ------------------------------------------------------------


def draw_vae() -> plt.Figure:
    """Variational autoencoder for one visit: encoder, sampling, decoder, loss."""
    fig, ax = canvas(46, 18, "Variational autoencoder (VAE)")
    vector(ax, (2.5, 10.5), 10)
    label(ax, (2.5, 5.6), "one visit\n$x$ ($p$ = 10)", FONT)
    arrow(ax, (3.5, 10.5), (5.2, 10.5))
    trapezoid(ax, (9, 10.5), 7, (9, 4.5), "encoder\n(neural\nnetwork)")
    arrow(ax, (12.5, 11.5), (14.2, 13.3))
    arrow(ax, (12.5, 9.5), (14.2, 7.7))
    box(ax, (16.5, 13.8), (4.6, 2.0), r"mean $\mu$", "latent")
    box(ax, (16.5, 7.2), (4.6, 2.0), r"spread $\sigma$", "latent")
    arrow(ax, (18.8, 13.5), (20.8, 11.4))
    arrow(ax, (18.8, 7.5), (20.8, 9.6))
    ax.add_patch(Circle((22.0, 10.5), 1.5, facecolor="white", edgecolor=INK, lw=2))
    label(ax, (22.0, 10.5), "+", 18)
    box(ax, (22.0, 4.8), (7.6, 2.0), r"noise $\varepsilon \sim N(0, I)$", "data")
    arrow(ax, (22.0, 5.8), (22.0, 9.0))
    label(ax, (22.0, 14.9), r"$z = \mu + \sigma \odot \varepsilon$", FONT)
    arrow(ax, (23.5, 10.5), (25.6, 10.5))
    latent_pair(ax, (26.4, 10.5))
    label(ax, (26.4, 8.0), "latent $z$\n(2 dims)", SMALL)
    arrow(ax, (27.2, 10.5), (29.0, 10.5))
    trapezoid(ax, (32.5, 10.5), 7, (4.5, 9), "decoder\n(neural\nnetwork)")
    arrow(ax, (36.0, 10.5), (38.3, 10.5))
    vector(ax, (39.0, 10.5), 10, seed=1)
    label(ax, (39.0, 5.6), "reconstruction:\nmean and variance", FONT)
    label(
        ax,
        (23, 1.3),
        r"loss $= -\log p(x \mid z)$  +  KL$\left(q(z \mid x)\,\|\,N(0, I)\right)$",
        FONT,
        color=STYLES["loss"]["edge"],
    )
    return fig


def draw_vae_timeseries() -> plt.Figure:
    """A plain VAE on repeated visits: each visit is encoded on its own."""
    fig, ax = canvas(44, 22, "A plain VAE on visits at irregular times")
    times = [0.0, 1.8, 4.6, 8.5]
    x_of = {t: 6 + 3.0 * t for t in times}
    ax.plot([4.5, 33.5], [16.2, 16.2], color="0.5", lw=1.2)
    label(ax, (2.3, 17.2), "visits", FONT, ha="center")
    for i, t in enumerate(times):
        x = x_of[t]
        vector(ax, (x, 17.8), 5, cell=0.5, seed=10 + i)
        label(ax, (x, 15.5), f"$t_{i}$", SMALL)
        arrow(ax, (x, 15.0), (x, 12.9))
        box(ax, (x, 11.7), (3.6, 2.0), "encoder", "network", SMALL)
        arrow(ax, (x, 10.6), (x, 8.9))
    label(ax, (2.3, 11.7), "same\nnetwork\nfor all", SMALL)
    inset = mini_axes(fig, ax, (4.5, 1.8), (29, 6.6))
    t_grid = np.array(times)
    rng = np.random.default_rng(3)
    dim1, dim2 = latent_curves(t_grid)
    inset.plot(t_grid, dim1 + rng.normal(0, 0.25, 4), "o", color=LATENT_1, ms=8)
    inset.plot(t_grid, dim2 + rng.normal(0, 0.25, 4), "o", color=LATENT_2, ms=8)
    inset.set_xlim(-0.5, 9.3)
    inset.set_ylim(-0.5, 6.5)
    inset.set_xticks(times, [f"$t_{i}$" for i in range(4)])
    inset.set_yticks([])
    inset.set_ylabel("latent $z$", fontsize=SMALL)
    for left, right in itertools.pairwise(times):
        inset.text((left + right) / 2, 3.0, "?", fontsize=18, color="0.55", ha="center")
    label(
        ax,
        (39.2, 11.5),
        "Each visit is encoded\non its own: the latent\nmeans (blue: dim 1,\n"
        "orange: dim 2) are\nseparate dots, with\nno model of how they\n"
        "change over time.",
        FONT,
        linespacing=1.4,
    )
    return fig


def draw_odevae() -> plt.Figure:
    """The ODE-VAE: encoder, latent ODE with individual parameters, decoder."""
    fig, ax = canvas(52, 26, "ODE-VAE: a VAE whose latent space follows an ODE")
    # baseline variables -> parameter network -> individual ODE parameters
    vector(ax, (9.5, 21.0), 14, cell=0.5, horizontal=True, seed=4)
    label(ax, (9.5, 22.7), "baseline variables (age, SMA type, ...)", SMALL)
    arrow(ax, (13.3, 21.0), (15.4, 21.0))
    box(ax, (19.2, 21.0), (7.2, 2.4), "ODE-parameter\nnetwork", "network", SMALL)
    arrow(ax, (22.8, 21.0), (25.2, 21.0))
    box(
        ax,
        (29.0, 21.0),
        (7.2, 2.4),
        "individual\n$a_{11}$, $a_{22}$",
        "knowledge",
        SMALL,
    )
    arrow(ax, (29.0, 19.8), (29.0, 17.0))
    # baseline visit -> encoder -> mu(t0) -> ODE solve
    vector(ax, (2.2, 13.0), 10, cell=0.5, seed=5)
    label(ax, (2.2, 9.7), "baseline\nvisit $x(t_0)$", SMALL)
    arrow(ax, (3.0, 13.0), (4.6, 13.0))
    trapezoid(ax, (7.4, 13.0), 5.6, (7, 3.5), "encoder")
    arrow(ax, (10.2, 13.0), (12.4, 13.0))
    latent_pair(ax, (13.1, 13.0))
    label(ax, (13.1, 10.8), r"$\mu(t_0)$", SMALL)
    arrow(ax, (13.8, 13.0), (22.5, 13.0))
    box(ax, (29.0, 13.0), (13.0, 8.0), "", "knowledge")
    label(ax, (29.0, 15.9), r"solve $z' = A\,z$,  $A = $ diag$(a_{11}, a_{22})$", SMALL)
    inset = mini_axes(fig, ax, (23.6, 10.3), (11.0, 4.4))
    t = np.linspace(0, 10, 100)
    dim1, dim2 = latent_curves(t)
    inset.plot(t, dim1, color=LATENT_1, lw=2)
    inset.plot(t, dim2, color=LATENT_2, lw=2)
    visits = np.array([0.0, 2.5, 5.5, 8.0])
    rng = np.random.default_rng(7)
    enc1, enc2 = latent_curves(visits)
    inset.plot(visits, enc1 + rng.normal(0, 0.3, 4), "o", color=LATENT_1, ms=5)
    inset.plot(visits, enc2 + rng.normal(0, 0.3, 4), "o", color=LATENT_2, ms=5)
    inset.set_xticks(visits, [f"$t_{i}$" for i in range(4)])
    inset.set_yticks([])
    inset.set_facecolor(STYLES["knowledge"]["face"])
    # ODE solution -> decoder -> predictions
    arrow(ax, (35.5, 13.0), (37.4, 13.0))
    trapezoid(ax, (40.2, 13.0), 5.6, (3.5, 7), "decoder")
    arrow(ax, (43.0, 13.0), (44.8, 13.0))
    for i, x in enumerate((46.0, 47.6, 49.2)):
        vector(ax, (x, 13.0), 10, cell=0.5, seed=20 + i)
    label(
        ax,
        (47.6, 9.7),
        "predicted visits\n$\\hat x(t_1), \\hat x(t_2), \\ldots$",
        SMALL,
    )
    # follow-up visits -> encoder -> consistency with the ODE solution
    for i, x in enumerate((3.4, 5.0, 6.6)):
        vector(ax, (x, 4.6), 5, cell=0.5, seed=30 + i)
    label(ax, (5.0, 2.3), "follow-up visits", SMALL)
    arrow(ax, (7.5, 4.6), (10.0, 4.6))
    box(ax, (13.0, 4.6), (5.2, 2.0), "encoder", "network", SMALL)
    arrow(ax, (15.6, 4.6), (21.6, 4.6))
    box(
        ax,
        (29.0, 4.6),
        (15.0, 3.2),
        "consistency: encoder means (dots)\nclose to the ODE solution (lines)",
        "loss",
        SMALL,
    )
    arrow(ax, (29.0, 6.2), (29.0, 9.0), color=STYLES["loss"]["edge"], style="<|-|>")
    arrow(ax, (47.6, 8.4), (46.4, 6.2), color=STYLES["loss"]["edge"])
    box(
        ax,
        (45.0, 4.6),
        (11.4, 3.2),
        "loss = $-$ELBO\n+ consistency + penalty",
        "loss",
        SMALL,
    )
    return fig


def draw_sma_example() -> plt.Figure:
    """Schematic of the SMA registry data that motivate the workshop."""
    fig, ax = canvas(54, 26, "The motivating example: an SMA patient registry")
    patients = [
        ("age 2, type 1", [0.0, 0.4, 1.1, 2.9], "HHRH", 0.8),
        ("age 7, type 2", [0.0, 0.9, 1.6, 2.2, 3.4], "RHRRH", 0.3),
        ("age 15, type 3", [0.0, 1.3, 3.1], "HRR", -0.4),
    ]
    start, scale = 15.0, 6.0
    test_style = {"R": ("o", "#2ca02c"), "H": ("s", "#9467bd")}
    for row, (baseline, times, tests, trend) in enumerate(patients):
        y = 19.0 - 6.0 * row
        person(ax, (3.0, y))
        box(ax, (8.8, y), (6.8, 2.0), baseline, "data", SMALL)
        ax.plot([start, start + 4 * scale], [y - 1.5, y - 1.5], color="0.6", lw=1)
        grid = np.linspace(0, 4, 80)
        health = y + 0.6 + 1.1 * np.tanh(trend * (grid - 1.0))
        ax.plot(start + scale * grid, health, color="0.35", ls="--", lw=1.8)
        for t, test in zip(times, tests):
            x = start + scale * t
            status = y + 0.6 + 1.1 * np.tanh(trend * (t - 1.0))
            marker, color = test_style[test]
            ax.plot([x, x], [y - 1.5, status], color="0.75", lw=1, ls=":")
            ax.plot(x, y - 1.5, marker, color=color, ms=10, mec="white", mew=1)
    label(ax, (3.0, 22.6), "patients", FONT)
    label(ax, (8.8, 22.6), "baseline", FONT)
    label(ax, (start + 2 * scale, 22.6), "tests at irregular visit times", FONT)
    ax.plot([], [], "o", color="#2ca02c", ms=10, label="RULM test")
    ax.plot([], [], "s", color="#9467bd", ms=10, label="HFMSE test")
    ax.plot(
        [], [], ls="--", color="0.35", lw=1.8, label="latent health status (unobserved)"
    )
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(start / 54, 0.4 / 26),
        fontsize=SMALL,
        frameon=False,
    )
    box(ax, (47.5, 14.3), (11.0, 13.6), "", "plain")
    label(ax, (47.5, 19.6), "Challenges", FONT, weight="bold")
    challenges = [
        "few patients,\nfew visits each",
        "irregular times",
        "several different\ntests",
        "a hidden health\nstatus and its\ndynamics",
        "heterogeneity,\nsubgroups",
    ]
    y = 18.2
    for item in challenges:
        label(ax, (43.0, y), "\u2022", SMALL, va="top", ha="left")
        label(ax, (43.8, y), item, SMALL, va="top", ha="left")
        y -= 0.75 * (item.count("\n") + 1) + 0.55
    return fig


def person(ax: plt.Axes, center: tuple[float, float]) -> None:
    """A simple person icon (head and shoulders)."""
    x, y = center
    ax.add_patch(Circle((x, y + 0.9), 0.7, color="0.45"))
    ax.add_patch(
        FancyBboxPatch(
            (x - 1.1, y - 1.5),
            2.2,
            1.7,
            boxstyle="round,pad=0,rounding_size=0.7",
            color="0.45",
        )
    )


def draw_coordinate_system() -> plt.Figure:
    """Where models sit: amount of data vs knowledge-driven or black box."""
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_linewidth(1.5)
    ax.plot(1, 0, ">k", transform=ax.transAxes, clip_on=False, ms=9)
    ax.plot(0, 1, "^k", transform=ax.transAxes, clip_on=False, ms=9)
    ax.set_xticks([1.2, 8.8], ["small data", "big data"], fontsize=FONT)
    ax.set_yticks(
        [1.0, 9.0],
        ["knowledge-\ndriven", "black\nbox"],
        fontsize=FONT,
        rotation=90,
        va="center",
    )
    ax.tick_params(length=0)
    ax.set_xlabel("amount of data", fontsize=FONT)
    ax.set_ylabel("kind of model", fontsize=FONT)
    entries = [
        (
            (2.3, 1.6),
            "mechanistic ODE models\n(pharmacokinetics, epidemics)",
            "knowledge",
        ),
        ((2.3, 4.2), "regression and\nmixed models", "data"),
        ((7.6, 8.6), "deep learning\n(images, language)", "network"),
        ((7.6, 2.3), "large simulators fitted\nto much data (weather)", "knowledge"),
        ((2.5, 8.6), "deep networks on small data:\nrisk of overfitting", "data"),
    ]
    for (x, y), text, kind in entries:
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=SMALL,
            bbox={
                "boxstyle": "round,pad=0.5",
                "facecolor": STYLES[kind]["face"],
                "edgecolor": STYLES[kind]["edge"],
                "linewidth": 1.5,
            },
        )
    ax.text(
        3.0,
        6.3,
        "this workshop: ODE + neural networks,\n"
        "fitted together by differentiable programming",
        ha="center",
        va="center",
        fontsize=SMALL,
        weight="bold",
        bbox={
            "boxstyle": "round,pad=0.5",
            "facecolor": STYLES["loss"]["face"],
            "edgecolor": STYLES["loss"]["edge"],
            "linewidth": 2,
        },
    )
    ax.text(
        7.6,
        5.4,
        "Where does\nyour own work sit?",
        ha="center",
        va="center",
        fontsize=FONT,
        style="italic",
        color="0.45",
    )
    ax.set_title("Small or big data, knowledge-driven or black box?", fontsize=15)
    fig.tight_layout()
    return fig


def draw_diffprog_overview() -> plt.Figure:
    """Differentiable programming in one picture: forward run, backward gradients."""
    fig, ax = canvas(
        50,
        19,
        "Differentiable programming: one program, every parameter fitted at once",
    )
    red = STYLES["loss"]["edge"]
    label(ax, (22.0, 15.6), "forward: run the program and compute the loss", FONT)
    label(
        ax,
        (22.0, 14.3),
        "backward: automatic differentiation sends "
        r"$\partial\,\mathrm{loss} / \partial\,\theta$ back through every step",
        FONT,
        color=red,
    )
    steps = [
        (4.0, "data", "data"),
        (13.0, "neural\nnetwork", "network"),
        (22.0, "ODE\nsolver", "knowledge"),
        (31.0, "loop with\nif / else", "plain"),
        (40.0, "loss", "loss"),
    ]
    y = 10.5
    for x, text, kind in steps:
        box(ax, (x, y), (6.0, 3.2), text, kind)
    for (x0, _, _), (x1, _, _) in itertools.pairwise(steps):
        arrow(ax, (x0 + 3.1, y + 0.7), (x1 - 3.1, y + 0.7))
        arrow(ax, (x1 - 3.1, y - 0.7), (x0 + 3.1, y - 0.7), color=red)
    box(
        ax,
        (22.0, 3.2),
        (26.0, 2.6),
        r"parameters $\theta$: weights, ODE parameters, coefficients",
        "latent",
    )
    for x in (13.0, 22.0, 31.0):
        arrow(ax, (x, 4.5), (x, 8.9), color=LATENT_1, width=1.4)
    arrow(ax, (40.0, 8.9), (35.1, 3.2), color=red, curve=-0.3)
    label(
        ax,
        (44.2, 4.6),
        "update\n"
        r"$\theta \leftarrow \theta - \eta\,\partial\,\mathrm{loss}/\partial\,\theta$",
        FONT,
        color=red,
    )
    return fig


FIGURES: dict[str, Callable[[], plt.Figure]] = {
    "vae": draw_vae,
    "vae_timeseries": draw_vae_timeseries,
    "odevae": draw_odevae,
    "sma_example": draw_sma_example,
    "coordinate_system": draw_coordinate_system,
    "diffprog_overview": draw_diffprog_overview,
}
"""Every diagram, by file stem: ``pictures/<stem>.png`` and ``.svg``."""


def make_pictures(
    out_dir: str | Path,
    names: Sequence[str] | None = None,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 110,
) -> list[Path]:
    """Draw the diagrams and save them.

    Args:
        out_dir: output folder (created if missing).
        names: which diagrams (keys of ``FIGURES``); all when ``None``.
        formats: file formats to write, e.g. ``("png",)``.
        dpi: resolution of raster formats.

    Returns:
        Paths of the files written, in order.

    Raises:
        ValueError: on an unknown diagram name or format.
    """
    names = list(FIGURES) if names is None else list(names)
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(
            f"unknown diagram names {unknown}; choose from {list(FIGURES)}"
        )
    bad_formats = [fmt for fmt in formats if fmt not in ("png", "svg", "pdf")]
    if bad_formats:
        raise ValueError(f"formats must be among png, svg, pdf; got {bad_formats}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        fig = FIGURES[name]()
        for fmt in formats:
            path = out_dir / f"{name}.{fmt}"
            fig.savefig(path, dpi=dpi, facecolor="white", metadata=_metadata(fmt))
            written.append(path)
        plt.close(fig)
    return written


def _metadata(fmt: str) -> dict[str, str | None]:
    """File metadata without dates, so re-running the script changes nothing."""
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Draw the workshop diagrams.")
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent),
        help="output folder (default: this script's folder)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"any of {list(FIGURES)}"
    )
    parser.add_argument(
        "--formats", nargs="+", default=["png", "svg"], help="default: png svg"
    )
    args = parser.parse_args(argv)
    written = make_pictures(args.out, args.only, args.formats)
    for path in written:
        print(f"saved {path}")
    return written


if __name__ == "__main__":
    main()
