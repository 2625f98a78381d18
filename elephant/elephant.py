"""Draw the four-parameter elephant of Mayer, Khairy and Howard (2010).

"With four parameters I can fit an elephant, and with five I can make him
wiggle his trunk" (von Neumann, as quoted by Fermi to Dyson). Mayer, Khairy
and Howard, Am. J. Phys. 78, 648 (2010), doi:10.1119/1.3254017, took the
joke literally. They describe a closed outline by two Fourier series in a
curve parameter ``t`` running once around the outline,

    x(t) = sum_k A_k^x cos(k t) + B_k^x sin(k t),
    y(t) = sum_k A_k^y cos(k t) + B_k^y sin(k t),

keep only eight non-zero coefficients and pack them, two at a time, into the
real and imaginary parts of four complex numbers:

    =================  ==============  ===================
    parameter          real part       imaginary part
    =================  ==============  ===================
    p1 =  50 - 30i     B_1^x (sin t)   B_1^y (sin t)
    p2 =  18 +  8i     B_2^x (sin 2t)  B_2^y (sin 2t)
    p3 =  12 - 10i     A_3^x (cos 3t)  B_3^y (sin 3t)
    p4 = -14 - 60i     A_5^x (cos 5t)  A_1^y (cos t)
    p5 =  40 + 20i     trunk wiggle    eye position
    =================  ==============  ===================

The elephant stands upright, facing right, when the point (y, -x) is drawn;
this module uses that drawing frame throughout: ``outline`` returns
(horizontal, vertical) = (y(t), -x(t)), and the eye sits at
(Im p5, Im p5). The paper leaves the wiggle to the reader; here the real
part of p5 sets how far the tip of the trunk swings (see ``bend_trunk``).

The workshop uses the elephant twice: as a warning (a flexible model with
enough parameters fits anything) and, in ``fit_elephant.py``, as a
differentiable-programming exercise that recovers the four parameters from
points on the outline.

Run ``python elephant/elephant.py --out DIR`` to save ``elephant.png``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch

PUBLISHED_PARAMS = (50 - 30j, 18 + 8j, 12 - 10j, -14 - 60j)
"""The four complex shape parameters p1..p4 of Mayer, Khairy and Howard."""

EYE_AND_WIGGLE = 40 + 20j
"""The fifth parameter p5: real part = trunk wiggle, imaginary part = eye."""

TRUNK_BASE = 45.0
"""Horizontal position (drawing frame) where the trunk leaves the head."""

TRUNK_LENGTH = 40.0
"""Horizontal distance from the trunk's base to (about) its tip."""

ELEPHANT_COLOR = "#1f77b4"


def as_params(params: Sequence[complex] | torch.Tensor) -> torch.Tensor:
    """Check and convert the four shape parameters to a complex tensor.

    Args:
        params: four complex numbers p1..p4 (a sequence or a complex tensor of
            shape ``(4,)``). Tensors are passed through unchanged, so autograd
            sees them.

    Returns:
        Complex128 tensor of shape ``(4,)``.

    Raises:
        ValueError: if there are not exactly four finite parameters.
    """
    if isinstance(params, torch.Tensor):
        tensor = params if params.is_complex() else params.to(torch.complex128)
    else:
        try:
            tensor = torch.tensor([complex(p) for p in params], dtype=torch.complex128)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"params must be four complex numbers, got {params!r}"
            ) from error
    if tensor.shape != (4,):
        raise ValueError(
            f"params must hold exactly four complex numbers (p1..p4), "
            f"got shape {tuple(tensor.shape)}"
        )
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"params must be finite, got {tensor.detach().tolist()}")
    return tensor


def fourier_xy(params: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Evaluate the paper's two truncated Fourier series.

    Args:
        params: complex tensor of shape ``(4,)`` (see ``as_params``).
        t: real tensor of curve parameters, shape ``(n,)``, usually in
            ``[0, 2 pi)``.

    Returns:
        ``(x, y)``, two real tensors of shape ``(n,)`` in the paper's frame.
    """
    p1, p2, p3, p4 = params.unbind()
    x = (
        p1.real * torch.sin(t)
        + p2.real * torch.sin(2 * t)
        + p3.real * torch.cos(3 * t)
        + p4.real * torch.cos(5 * t)
    )
    y = (
        p4.imag * torch.cos(t)
        + p1.imag * torch.sin(t)
        + p2.imag * torch.sin(2 * t)
        + p3.imag * torch.sin(3 * t)
    )
    return x, y


def bend_trunk(horizontal: torch.Tensor, tip_shift: float) -> torch.Tensor:
    """Vertical shift that bends the trunk up or down, leaving the rest alone.

    A point ``d`` units beyond the trunk's base (``TRUNK_BASE``) moves up by
    ``tip_shift * (d / TRUNK_LENGTH) ** 2``: nothing at the base, smoothly
    more towards the tip, like a trunk curling.

    Args:
        horizontal: horizontal positions (drawing frame), shape ``(n,)``.
        tip_shift: vertical shift of a point one trunk length from the base.

    Returns:
        Vertical shifts, shape ``(n,)``.
    """
    beyond_base = torch.clamp(horizontal - TRUNK_BASE, min=0.0) / TRUNK_LENGTH
    return tip_shift * beyond_base**2


def outline(
    params: Sequence[complex] | torch.Tensor,
    t: torch.Tensor | Sequence[float],
    tip_shift: float = 0.0,
) -> torch.Tensor:
    """Points of the elephant's outline in the drawing frame.

    Differentiable in ``params`` (torch autograd), which ``fit_elephant.py``
    uses to fit them.

    Args:
        params: the four complex shape parameters p1..p4.
        t: curve parameters, shape ``(n,)``; ``t`` and ``t + 2 pi`` give the
            same point.
        tip_shift: vertical trunk-tip displacement (see ``bend_trunk``); 0
            draws the still elephant.

    Returns:
        Float64 tensor of shape ``(n, 2)``: columns horizontal, vertical.
    """
    params = as_params(params)
    t = torch.as_tensor(t, dtype=torch.float64)
    x, y = fourier_xy(params, t)
    horizontal, vertical = y, -x
    if tip_shift:
        vertical = vertical + bend_trunk(horizontal, tip_shift)
    return torch.stack([horizontal, vertical], dim=-1)


def format_complex(value: complex, digits: int = 0) -> str:
    """Write a complex number the way the paper does, e.g. ``50 - 30i``."""
    value = complex(value)
    sign = "-" if value.imag < 0 else "+"
    return f"{value.real:.{digits}f} {sign} {abs(value.imag):.{digits}f}i"


def eye_position(p5: complex = EYE_AND_WIGGLE) -> tuple[float, float]:
    """Position of the eye in the drawing frame: ``(Im p5, Im p5)``."""
    return (complex(p5).imag, complex(p5).imag)


def curve_grid(n_points: int = 1000) -> torch.Tensor:
    """``n_points + 1`` equally spaced curve parameters from 0 to 2 pi.

    The last point repeats the first, so a line drawn through them closes.
    """
    if n_points < 3:
        raise ValueError(f"n_points must be at least 3, got {n_points}")
    return torch.linspace(0.0, 2 * math.pi, n_points + 1, dtype=torch.float64)


def draw_elephant(
    params: Sequence[complex] | torch.Tensor = PUBLISHED_PARAMS,
    p5: complex = EYE_AND_WIGGLE,
    ax: plt.Axes | None = None,
    tip_shift: float = 0.0,
    color: str = ELEPHANT_COLOR,
    label: str | None = None,
    linestyle: str = "-",
) -> plt.Figure:
    """Draw one elephant (outline and eye).

    Args:
        params: the four complex shape parameters p1..p4.
        p5: the fifth parameter; its imaginary part places the eye.
        ax: axes to draw into; a new figure is made when ``None``.
        tip_shift: trunk-tip displacement, see ``bend_trunk``.
        color: line and eye colour.
        label: legend label for the outline.
        linestyle: matplotlib line style of the outline.

    Returns:
        The figure that holds the axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    points = outline(params, curve_grid(), tip_shift).detach().numpy()
    ax.plot(points[:, 0], points[:, 1], color=color, lw=2.5, ls=linestyle, label=label)
    ax.plot(*eye_position(p5), "o", color=color, markersize=7)
    ax.set_aspect("equal")
    ax.set_xlim(-80, 100)
    ax.set_ylim(-75, 95)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return ax.figure


def save_elephant_picture(out_dir: str | Path) -> Path:
    """Draw the published elephant and save it as ``elephant.png``.

    Args:
        out_dir: folder for the picture (created if missing).

    Returns:
        Path of the saved PNG.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = draw_elephant()
    ax = fig.axes[0]
    ax.set_title("An elephant with four complex parameters", fontsize=13)
    lines = [f"p{i} = {format_complex(p)}" for i, p in enumerate(PUBLISHED_PARAMS, 1)]
    lines.append(f"p5 = {format_complex(EYE_AND_WIGGLE)}")
    ax.text(38, -73, "\n".join(lines), fontsize=10, family="monospace", va="bottom")
    path = out_dir / "elephant.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    """Command-line entry point: ``python elephant/elephant.py --out DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent),
        help="folder for elephant.png (default: this script's folder)",
    )
    args = parser.parse_args(argv)
    path = save_elephant_picture(args.out)
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    main()
