"""Fit the four elephant parameters by gradient descent with torch autograd.

The elephant of ``elephant.py`` is a small program: four complex numbers go
in, an outline comes out. Differentiable programming turns the question
"which parameters made this outline?" into "follow the gradient of a loss
through that program". This script

1. samples points from the published elephant's outline (optionally noisy),
2. starts from random complex parameters,
3. runs plain gradient descent on the mean squared distance between the
   drawn and the observed points, with gradients from ``torch.autograd``,
4. prints the recovered parameters and the largest error against the
   published ones, saves before/after plots, and
5. uses the fifth parameter to make the trunk wiggle (a GIF).

Identifiability. Each point is observed together with its curve parameter
``t`` (where along the outline it lies). Then every outline coordinate is a
linear function of the eight real numbers in p1..p4, the loss is a convex
quadratic, and its unique minimum is the true parameter set: any random
start finds it. Without ``t`` (a bare cloud of points) the problem is much
harder and not even identifiable: starting the curve elsewhere
(``t -> t + c``) or running it backwards draws the same elephant from
different coefficients. How you pose a fit matters as much as how you
solve it.

The real part of p5 cannot be learned from a still picture: it only says
how far the trunk swings, so it is taken from the paper.

Run ``python elephant/fit_elephant.py --out DIR``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.animation import FuncAnimation, PillowWriter

from elephant import (
    EYE_AND_WIGGLE,
    PUBLISHED_PARAMS,
    as_params,
    draw_elephant,
    format_complex,
    outline,
)

MIN_POINTS = 8
"""Fewest observed points accepted: one per unknown real coefficient."""

ANGLE_TOLERANCE = 1e-9
"""Curve parameters closer than this (in radians, modulo 2 pi) count as one."""

IDENTIFIABLE_RATIO = 1e-10
"""Smallest accepted ratio of the loss's least to its largest curvature."""

WIGGLE_SCALE = 0.4
"""Trunk-tip swing per unit of Re p5: 0.4 * 40 = 16 units up and down."""


@dataclass
class FitResult:
    """Outcome of ``fit_parameters``.

    Attributes:
        initial: the random starting parameters, complex ``(4,)``.
        fitted: the parameters after gradient descent, complex ``(4,)``.
        losses: loss before each step and after the last one, ``steps + 1``
            floats.
    """

    initial: torch.Tensor
    fitted: torch.Tensor
    losses: list[float]


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_positive_float(name: str, value: float, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def sample_outline(
    n_points: int = 60,
    noise_sd: float = 1.0,
    seed: int = 0,
    params: Sequence[complex] | torch.Tensor = PUBLISHED_PARAMS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observe points on the elephant's outline at random, known positions.

    Args:
        n_points: number of points (at least ``MIN_POINTS``).
        noise_sd: standard deviation of Gaussian noise added to each
            coordinate (0 for exact points).
        seed: seed of the ``torch.Generator`` that draws positions and noise.
        params: the shape parameters that draw the outline.

    Returns:
        ``(t, points)``: curve parameters, shape ``(n_points,)``, uniform on
        ``[0, 2 pi)``; observed points, shape ``(n_points, 2)``.

    Raises:
        ValueError: on too few points or a negative or non-finite noise level.
    """
    _check_positive_int("n_points", n_points, MIN_POINTS)
    _check_positive_float("noise_sd", noise_sd, allow_zero=True)
    generator = torch.Generator().manual_seed(seed)
    t = 2 * math.pi * torch.rand(n_points, generator=generator, dtype=torch.float64)
    noise = torch.randn(n_points, 2, generator=generator, dtype=torch.float64)
    return t, outline(params, t) + noise_sd * noise


def random_params(seed: int = 0, scale: float = 30.0) -> torch.Tensor:
    """Random complex starting parameters.

    Args:
        seed: seed of the ``torch.Generator``.
        scale: standard deviation of the real and of the imaginary parts
            (30 is the size of the published parameters).

    Returns:
        Complex128 tensor of shape ``(4,)``.
    """
    _check_positive_float("scale", scale)
    generator = torch.Generator().manual_seed(seed)
    parts = scale * torch.randn(4, 2, generator=generator, dtype=torch.float64)
    return torch.complex(parts[:, 0], parts[:, 1])


def _check_data(t: torch.Tensor, points: torch.Tensor) -> None:
    if t.ndim != 1 or points.shape != (t.shape[0], 2):
        raise ValueError(
            f"t must have shape (n,) and points shape (n, 2); got t "
            f"{tuple(t.shape)} and points {tuple(points.shape)}"
        )
    if t.shape[0] < MIN_POINTS:
        raise ValueError(
            f"need at least {MIN_POINTS} points to fit 8 real coefficients, "
            f"got {t.shape[0]}"
        )
    if not (bool(torch.isfinite(t).all()) and bool(torch.isfinite(points).all())):
        raise ValueError("t and points must not contain NaN or infinite values")
    distinct = count_distinct_angles(t)
    if distinct < MIN_POINTS:
        raise ValueError(
            f"t must hold at least {MIN_POINTS} distinct angles (modulo 2 pi, "
            f"closer than {ANGLE_TOLERANCE:g} counts as equal) to fit 8 real "
            f"coefficients; got {distinct} distinct among {t.shape[0]} values"
        )


def count_distinct_angles(t: torch.Tensor) -> int:
    """Number of different outline positions among the curve parameters ``t``.

    ``t`` and ``t + 2 pi`` are the same point of the outline, and values
    closer than ``ANGLE_TOLERANCE`` (also across ``0 = 2 pi``) count as one.

    Args:
        t: finite curve parameters, shape ``(n,)`` with ``n >= 1``.

    Returns:
        The number of distinct angles, between 1 and ``n``.
    """
    angles = torch.sort(torch.remainder(t.detach().to(torch.float64), 2 * math.pi))
    angles = angles.values
    wrap = angles[:1] + 2 * math.pi - angles[-1:]
    gaps = torch.cat([angles[1:] - angles[:-1], wrap])
    return max(1, int((gaps > ANGLE_TOLERANCE).sum()))


def loss_curvatures(t: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the loss's Hessian in the eight real coefficients.

    ``elephant_loss`` is a quadratic in the real and imaginary parts of
    p1..p4, so its Hessian depends on ``t`` only. Plain gradient descent
    with step ``lr`` converges exactly when ``lr < 2 / largest eigenvalue``;
    a (near) zero eigenvalue means the points leave a combination of
    coefficients undetermined.

    Args:
        t: curve parameters of the observations, shape ``(n,)``.

    Returns:
        The eight eigenvalues in ascending order, float64.
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    units = torch.eye(8, dtype=torch.float64)
    columns = [
        outline(torch.complex(unit[:4], unit[4:]), t).reshape(-1) for unit in units
    ]
    design = torch.stack(columns, dim=1)
    hessian = 2 / t.shape[0] * design.T @ design
    return torch.linalg.eigvalsh(hessian)


def elephant_loss(
    params: torch.Tensor, t: torch.Tensor, points: torch.Tensor
) -> torch.Tensor:
    """Mean squared distance between drawn and observed points.

    Args:
        params: complex shape parameters, shape ``(4,)``.
        t: curve parameters of the observations, shape ``(n,)``.
        points: observed points, shape ``(n, 2)``.

    Returns:
        Scalar tensor, differentiable in ``params``.
    """
    difference = outline(params, t) - points
    return (difference**2).sum(dim=1).mean()


def fit_parameters(
    t: torch.Tensor,
    points: torch.Tensor,
    seed: int = 0,
    steps: int = 200,
    lr: float = 0.5,
    init_scale: float = 30.0,
) -> FitResult:
    """Fit p1..p4 to observed outline points by plain gradient descent.

    Each step computes the loss, asks autograd for its gradient with respect
    to the complex parameters (for a real loss, torch returns
    ``dL/dRe + i dL/dIm``) and moves against it: ``p <- p - lr * grad``.

    Args:
        t: curve parameters of the observations, shape ``(n,)``.
        points: observed points, shape ``(n, 2)``.
        seed: seed of the random start (see ``random_params``).
        steps: number of gradient steps.
        lr: step size. The loss's curvature is about 1 in every direction
            when the ``t`` are spread over the outline, so 0.5 is safe.
            Gradient descent diverges when ``lr`` reaches 2 divided by the
            largest curvature (see ``loss_curvatures``; about 1.6 for 60
            spread points), so such an ``lr`` is refused before any step.
        init_scale: spread of the random start.

    Returns:
        A ``FitResult`` with the start, the fit and the loss history.

    Raises:
        ValueError: on malformed data or settings: fewer than ``MIN_POINTS``
            distinct angles in ``t``, angles that leave a combination of the
            coefficients undetermined, an ``lr`` too large for the data (the
            message says "lower lr"), or a loss that is not finite or ends
            no lower than it started.
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    points = torch.as_tensor(points, dtype=torch.float64)
    _check_data(t, points)
    _check_positive_int("steps", steps)
    _check_positive_float("lr", lr)
    curvatures = loss_curvatures(t)
    if curvatures[0] <= IDENTIFIABLE_RATIO * curvatures[-1]:
        raise ValueError(
            "t: these angles do not determine all 8 real coefficients (the loss "
            f"is flat in some direction: curvatures {curvatures[0]:.3g} to "
            f"{curvatures[-1]:.3g}); sample points spread over the outline"
        )
    lr_limit = 2 / float(curvatures[-1])
    if lr >= lr_limit:
        raise ValueError(
            f"lr must be below 2 / {float(curvatures[-1]):.4g} = {lr_limit:.4g} "
            f"for these points, or gradient descent diverges; got {lr!r}: "
            "lower lr"
        )
    initial = random_params(seed, init_scale)
    params = initial.clone().requires_grad_(True)
    losses = []
    for _ in range(steps + 1):
        loss = elephant_loss(params, t, points)
        losses.append(loss.item())
        if len(losses) == 1 and not math.isfinite(losses[0]):
            raise ValueError(
                f"the loss at the start is {losses[0]}: points (largest absolute "
                f"value {float(points.abs().max()):.3g}) or init_scale "
                f"({init_scale!r}) are too large to square in float64"
            )
        if not math.isfinite(losses[-1]):
            raise ValueError(
                f"the loss became {losses[-1]} after {len(losses) - 1} steps; "
                f"lower lr (now {lr})"
            )
        if len(losses) > steps:
            break
        (grad,) = torch.autograd.grad(loss, params)
        with torch.no_grad():
            params -= lr * grad
    if not losses[-1] < losses[0]:
        advice = "lower lr" if losses[-1] > losses[0] else "raise lr or steps"
        raise ValueError(
            f"the loss went from {losses[0]:.6g} to {losses[-1]:.6g} in {steps} "
            f"steps instead of falling; {advice} (lr is now {lr})"
        )
    return FitResult(initial=initial, fitted=params.detach(), losses=losses)


def max_parameter_error(
    fitted: Sequence[complex] | torch.Tensor,
    reference: Sequence[complex] | torch.Tensor = PUBLISHED_PARAMS,
) -> float:
    """Largest absolute difference in any real or imaginary part."""
    difference = as_params(fitted).detach() - as_params(reference).detach()
    return float(torch.view_as_real(difference).abs().max())


def plot_fit(t: torch.Tensor, points: torch.Tensor, result: FitResult) -> plt.Figure:
    """Two panels: the random start and the fit, each against the data.

    Args:
        t: curve parameters of the observations, shape ``(n,)``.
        points: observed points, shape ``(n, 2)``.
        result: output of ``fit_parameters``.

    Returns:
        The figure.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    panels = [
        (axes[0], result.initial, f"Random start (loss {result.losses[0]:.0f})"),
        (
            axes[1],
            result.fitted,
            f"After gradient descent (loss {result.losses[-1]:.2f})",
        ),
    ]
    observed = torch.as_tensor(points).numpy()
    for ax, params, title in panels:
        draw_elephant(
            PUBLISHED_PARAMS, ax=ax, color="0.6", linestyle=":", label="truth"
        )
        draw_elephant(params, ax=ax, label="model")
        ax.plot(
            observed[:, 0], observed[:, 1], "o", color="#ff7f0e", ms=4, label="data"
        )
        ax.relim()
        ax.autoscale()
        ax.margins(0.05)
        ax.set_title(title, fontsize=12)
    axes[0].legend(loc="lower right", fontsize=10, frameon=False)
    fig.tight_layout()
    return fig


def save_wiggle_gif(
    params: Sequence[complex] | torch.Tensor,
    path: str | Path,
    p5: complex = EYE_AND_WIGGLE,
    n_frames: int = 20,
    fps: int = 10,
) -> Path:
    """Animate the trunk: its tip swings by ``WIGGLE_SCALE * Re p5``.

    Args:
        params: the four shape parameters.
        path: where to write the GIF.
        p5: fifth parameter (real part: wiggle, imaginary part: eye).
        n_frames: frames in one full swing.
        fps: frames per second.

    Returns:
        Path of the saved GIF.
    """
    _check_positive_int("n_frames", n_frames, 2)
    _check_positive_int("fps", fps)
    params = as_params(params).detach()
    amplitude = WIGGLE_SCALE * complex(p5).real
    fig, ax = plt.subplots(figsize=(3.6, 3.6))

    def draw_frame(frame: int) -> list:
        ax.clear()
        tip_shift = amplitude * math.sin(2 * math.pi * frame / n_frames)
        draw_elephant(params, p5, ax=ax, tip_shift=tip_shift)
        return []

    animation = FuncAnimation(fig, draw_frame, frames=n_frames, blit=False)
    path = Path(path)
    animation.save(path, writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    return path


def main(
    out_dir: str | Path,
    seed: int = 0,
    n_points: int = 60,
    noise_sd: float = 1.0,
    steps: int = 200,
    lr: float = 0.5,
    gif: bool = True,
) -> FitResult:
    """Sample, fit, report and save the pictures.

    Args:
        out_dir: folder for ``elephant_fit.png`` and ``elephant_wiggle.gif``.
        seed: seed for the data and for the random start.
        n_points: number of observed outline points.
        noise_sd: noise on each coordinate of the observed points.
        steps: gradient steps.
        lr: step size.
        gif: whether to write the wiggle animation.

    Returns:
        The ``FitResult``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t, points = sample_outline(n_points, noise_sd, seed)
    result = fit_parameters(t, points, seed=seed, steps=steps, lr=lr)
    print(f"{n_points} points, noise sd {noise_sd}, {steps} steps of size {lr}")
    print(
        f"loss: {result.losses[0]:.1f} at the random start, {result.losses[-1]:.3f} now"
    )
    print("parameter   start            fitted           published")
    for i, (start, fit, true) in enumerate(
        zip(result.initial.tolist(), result.fitted.tolist(), PUBLISHED_PARAMS), 1
    ):
        print(
            f"p{i}          {format_complex(start, 1):16} "
            f"{format_complex(fit, 2):16} {format_complex(true)}"
        )
    print(f"largest error: {max_parameter_error(result.fitted):.3f}")
    fig = plot_fit(t, points, result)
    fig.savefig(out_dir / "elephant_fit.png", dpi=80)
    plt.close(fig)
    saved = [out_dir / "elephant_fit.png"]
    if gif:
        saved.append(save_wiggle_gif(result.fitted, out_dir / "elephant_wiggle.gif"))
    print("saved " + ", ".join(str(path) for path in saved))
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of ``python elephant/fit_elephant.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent),
        help="output folder (default: this script's folder)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--no-gif", action="store_true", help="skip the animation")
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    main(
        options.out,
        seed=options.seed,
        n_points=options.points,
        noise_sd=options.noise,
        steps=options.steps,
        lr=options.lr,
        gif=not options.no_gif,
    )
