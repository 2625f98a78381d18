"""Tests of elephant/elephant.py and elephant/fit_elephant.py."""

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

ELEPHANT_DIR = Path(__file__).resolve().parents[1] / "elephant"
sys.path.insert(0, str(ELEPHANT_DIR))

# elephant/ is a folder of scripts, not a package: import them from there
elephant = importlib.import_module("elephant")
fit_elephant = importlib.import_module("fit_elephant")


def test_outline_matches_hand_computed_points():
    # t = 0: x = A3x + A5x = 12 - 14 = -2, y = A1y = -60 -> drawn at (y, -x)
    # t = pi/2: x = B1x = 50, y = B1y - B3y = -30 + 10 -> drawn at (-20, -50)
    t = torch.tensor([0.0, math.pi / 2], dtype=torch.float64)
    points = elephant.outline(elephant.PUBLISHED_PARAMS, t)
    expected = torch.tensor([[-60.0, 2.0], [-20.0, -50.0]], dtype=torch.float64)
    torch.testing.assert_close(points, expected)


def test_outline_is_closed_and_periodic():
    t = torch.linspace(0, 2 * math.pi, 50, dtype=torch.float64)
    points = elephant.outline(elephant.PUBLISHED_PARAMS, t)
    shifted = elephant.outline(elephant.PUBLISHED_PARAMS, t + 2 * math.pi)
    torch.testing.assert_close(points, shifted)
    torch.testing.assert_close(points[0], points[-1])


def test_each_coefficient_moves_the_outline_through_its_own_basis_function():
    t = torch.linspace(0, 2 * math.pi, 7, dtype=torch.float64)
    base = elephant.outline(elephant.PUBLISHED_PARAMS, t)
    bumped = list(elephant.PUBLISHED_PARAMS)
    bumped[2] += 1j  # Im p3 = B_3^y: y gains sin(3t), drawn horizontally
    change = elephant.outline(bumped, t) - base
    torch.testing.assert_close(change[:, 0], torch.sin(3 * t))
    torch.testing.assert_close(change[:, 1], torch.zeros_like(t))


def test_eye_sits_at_imaginary_part_of_p5():
    assert elephant.eye_position(40 + 20j) == (20.0, 20.0)


def test_trunk_bend_moves_only_the_trunk():
    horizontal = torch.tensor([-60.0, 0.0, elephant.TRUNK_BASE, 85.0])
    shift = elephant.bend_trunk(horizontal, tip_shift=10.0)
    torch.testing.assert_close(shift[:3], torch.zeros(3))
    assert shift[3].item() == pytest.approx(10.0)


@pytest.mark.parametrize(
    "bad", [(1, 2, 3), (1, 2, 3, 4, 5), (1, 2, float("nan"), 4), ("a", 1, 2, 3)]
)
def test_bad_parameters_raise_value_error(bad):
    with pytest.raises(ValueError, match="params"):
        elephant.as_params(bad)


def test_loss_gradient_matches_finite_differences():
    t, points = fit_elephant.sample_outline(n_points=20, noise_sd=0.5, seed=3)
    params = fit_elephant.random_params(seed=4).requires_grad_(True)
    loss = fit_elephant.elephant_loss(params, t, points)
    (grad,) = torch.autograd.grad(loss, params)
    step = 1e-6
    for index in range(4):
        for direction, component in ((1.0, grad[index].real), (1j, grad[index].imag)):
            up = params.detach().clone()
            down = params.detach().clone()
            up[index] += step * direction
            down[index] -= step * direction
            numeric = (
                fit_elephant.elephant_loss(up, t, points)
                - fit_elephant.elephant_loss(down, t, points)
            ) / (2 * step)
            assert component.item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-6)


def test_loss_is_zero_at_the_published_parameters_on_exact_points():
    t, points = fit_elephant.sample_outline(n_points=30, noise_sd=0.0, seed=1)
    params = elephant.as_params(elephant.PUBLISHED_PARAMS)
    assert fit_elephant.elephant_loss(params, t, points).item() < 1e-20


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_recovers_published_parameters_from_random_starts(seed):
    t, points = fit_elephant.sample_outline(n_points=40, noise_sd=0.0, seed=seed)
    result = fit_elephant.fit_parameters(t, points, seed=seed + 100)
    assert fit_elephant.max_parameter_error(result.initial) > 10  # a real start
    assert fit_elephant.max_parameter_error(result.fitted) < 1e-6
    assert result.losses[-1] < 1e-10 < result.losses[0]


def test_fit_on_noisy_points_lands_near_the_published_parameters():
    t, points = fit_elephant.sample_outline(n_points=60, noise_sd=1.0, seed=5)
    result = fit_elephant.fit_parameters(t, points, seed=6)
    # each coefficient has standard error about noise_sd * sqrt(2 / n) = 0.18
    assert fit_elephant.max_parameter_error(result.fitted) < 1.0


def test_fit_is_deterministic_under_a_seed():
    t, points = fit_elephant.sample_outline(seed=7)
    t_again, points_again = fit_elephant.sample_outline(seed=7)
    torch.testing.assert_close(points, points_again)
    first = fit_elephant.fit_parameters(t, points, seed=8, steps=20)
    second = fit_elephant.fit_parameters(t_again, points_again, seed=8, steps=20)
    torch.testing.assert_close(first.fitted, second.fitted)
    other = fit_elephant.fit_parameters(t, points, seed=9, steps=20)
    assert not torch.equal(first.initial, other.initial)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_points": 7}, "n_points"),
        ({"n_points": 2.5}, "n_points"),
        ({"noise_sd": -1.0}, "noise_sd"),
        ({"noise_sd": float("inf")}, "noise_sd"),
    ],
)
def test_bad_sampling_settings_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_elephant.sample_outline(**kwargs)


def test_bad_fit_input_raises_value_error():
    t, points = fit_elephant.sample_outline(n_points=20, seed=0)
    with pytest.raises(ValueError, match="shape"):
        fit_elephant.fit_parameters(t, points[:10])
    with pytest.raises(ValueError, match="at least 8"):
        fit_elephant.fit_parameters(t[:5], points[:5])
    nan_points = points.clone()
    nan_points[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit_elephant.fit_parameters(t, nan_points)
    with pytest.raises(ValueError, match="lr"):
        fit_elephant.fit_parameters(t, points, lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        fit_elephant.fit_parameters(t, points, steps=0)
    with pytest.raises(ValueError, match="lower lr"):
        fit_elephant.fit_parameters(t, points, lr=50.0, steps=500)


def test_distinct_angles_count_wraps_around_the_circle():
    t = torch.tensor(
        [0.0, 2 * math.pi, 1.0, 1.0 + 2 * math.pi, -1.0, 3.0, 3.0 + 1e-12],
        dtype=torch.float64,
    )
    # {0 = 2 pi}, {1 = 1 + 2 pi}, {-1 = 2 pi - 1}, {3 = 3 + 1e-12}
    assert fit_elephant.count_distinct_angles(t) == 4
    assert fit_elephant.count_distinct_angles(torch.full((5,), 2.0)) == 1


def test_repeated_angles_are_refused_even_with_enough_points():
    t, _ = fit_elephant.sample_outline(n_points=20, noise_sd=0.0, seed=0)
    # 20 observations, but only 5 different places on the outline
    repeated = t[:5].repeat(4)
    # the same five angles again, some of them a whole turn or more further on
    shifted = repeated + 2 * math.pi * (torch.arange(20, dtype=torch.float64) // 5)
    for t_bad in (repeated, shifted):
        outline_points = elephant.outline(elephant.PUBLISHED_PARAMS, t_bad)
        with pytest.raises(ValueError, match="got 5 distinct among 20") as error:
            fit_elephant.fit_parameters(t_bad, outline_points)
        assert "at least 8 distinct angles" in str(error.value)


@pytest.mark.parametrize(
    "t",
    [
        # cos 5t vanishes at all ten points: Re p4 leaves no trace
        math.pi / 10 + math.pi / 5 * torch.arange(10, dtype=torch.float64),
        # on eight equally spaced points cos 5t and cos 3t coincide
        2 * math.pi / 8 * torch.arange(8, dtype=torch.float64),
    ],
)
def test_distinct_angles_that_leave_a_coefficient_undetermined_are_refused(t):
    assert fit_elephant.count_distinct_angles(t) == t.shape[0]
    assert fit_elephant.loss_curvatures(t)[0] < 1e-12
    points = elephant.outline(elephant.PUBLISHED_PARAMS, t)
    with pytest.raises(ValueError, match="do not determine all 8"):
        fit_elephant.fit_parameters(t, points)


def test_curvatures_match_the_hessian_from_autograd():
    t, points = fit_elephant.sample_outline(n_points=15, seed=2)

    def loss_of_reals(reals):
        params = torch.complex(reals[:4], reals[4:])
        return fit_elephant.elephant_loss(params, t, points)

    hessian = torch.autograd.functional.hessian(
        loss_of_reals, torch.zeros(8, dtype=torch.float64)
    )
    torch.testing.assert_close(
        fit_elephant.loss_curvatures(t), torch.linalg.eigvalsh(hessian)
    )


def test_too_large_a_learning_rate_is_refused_before_any_step():
    t, points = fit_elephant.sample_outline()  # the defaults of the script
    limit = 2 / fit_elephant.loss_curvatures(t)[-1].item()
    assert 1.5 < limit < 1.9
    with pytest.raises(ValueError, match="lower lr") as error:
        fit_elephant.fit_parameters(t, points, lr=1.9)
    assert "got 1.9" in str(error.value)
    assert f"{limit:.4g}" in str(error.value)
    # just below the limit the fit still converges, slowly
    result = fit_elephant.fit_parameters(t, points, lr=0.99 * limit, steps=2000)
    assert fit_elephant.max_parameter_error(result.fitted) < 1.0


def test_a_growing_loss_is_an_error_not_a_result(monkeypatch):
    t, points = fit_elephant.sample_outline()
    true_curvatures = fit_elephant.loss_curvatures(t)
    # pretend the loss were flatter, so that lr = 1.9 passes the first check
    monkeypatch.setattr(
        fit_elephant, "loss_curvatures", lambda t: true_curvatures / 2
    )
    with pytest.raises(ValueError, match="instead of falling; lower lr"):
        fit_elephant.fit_parameters(t, points, lr=1.9, steps=50)


def test_a_step_too_small_to_move_is_an_error():
    t, points = fit_elephant.sample_outline()
    with pytest.raises(ValueError, match="raise lr or steps"):
        fit_elephant.fit_parameters(t, points, lr=1e-30, steps=1)


def test_points_too_large_to_square_are_an_error():
    t, _ = fit_elephant.sample_outline(n_points=10)
    huge = torch.full((10, 2), 1e200, dtype=torch.float64)
    with pytest.raises(ValueError, match="too large to square"):
        fit_elephant.fit_parameters(t, huge)


def test_pictures_are_written(tmp_path):
    picture = elephant.save_elephant_picture(tmp_path)
    assert picture.stat().st_size > 5_000
    gif = fit_elephant.save_wiggle_gif(
        elephant.PUBLISHED_PARAMS, tmp_path / "w.gif", n_frames=4
    )
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")


def test_fit_script_runs_from_the_command_line(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(ELEPHANT_DIR / "fit_elephant.py"),
            "--out",
            str(tmp_path),
            "--seed",
            "1",
            "--no-gif",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=120,
    )
    assert "largest error" in completed.stdout
    assert (tmp_path / "elephant_fit.png").stat().st_size > 5_000
