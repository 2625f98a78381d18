"""The increment model and the baselines of the ICU bonus notebook.

Hackenberg et al. (The American Statistician 76(3), 2022) predict the daily
change of a hospital's COVID-19 ICU cases ``y`` from the county's incidence
``z``::

    y(t + 1) - y(t) = b1 + b2 * y~(t) + b3 * z(t)

with ``y~(t)`` the report of day ``t`` if there was one, else the model's own
bridged value. The notebook writes the loss as a loop with branches
(section "The loss is a program") and checks it against
:func:`increment_loss_batched`, the same loop run for all hospitals at once.
Shapes: ``(n_hospitals, n_days)`` for ``y``, ``z``, ``reported``;
``(n_hospitals, 3)`` for ``beta``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers._checks import check_float, check_int
from helpers._threads import one_thread
from helpers.icu_data import to_arrays

MODELS = (
    "zero",
    "mean",
    "modified mean",
    "LOCF + regression",
    "LOCF + regression (published code)",
    "increment model",
    "increment model (original recipe)",
)
"""Models scored by :func:`last_day_predictions`, see there."""

PUBLISHED_LAST_DAY_SSE = {
    "zero": 86.0,
    "mean": 89.24,
    "modified mean": 84.34,
    "LOCF + regression (published code)": 181.07,
    "increment model (original recipe)": 74.75,
}
"""Sums of squared errors on the held-out last day, registry data (1281
hospitals, 70 days), as published; the regression and the increment model
were run as the rows named here."""


def _unroll(y, z, reported, beta):
    """Run the model over all days; return bridged values and predictions.

    Before its first report a hospital's ``y~`` is 0 and nothing counts.

    Returns:
        ``y_tilde`` ``(H, T)`` and ``predicted`` ``(H, T-1)``, the prediction
        of day ``t + 1`` from day ``t``.
    """
    b1, b2, b3 = beta.unbind(dim=1)
    growth = 1.0 + b2  # y~ + b2 y~ in one product
    drive = (b1[:, None] + b3[:, None] * z).unbind(dim=1)  # b1 + b3 z(t)
    started = (reported.cumsum(dim=1) > 0).to(y.dtype).unbind(dim=1)
    cases, flags = y.unbind(dim=1), reported.unbind(dim=1)
    y_tilde = torch.where(flags[0], cases[0], 0.0)
    bridged, predictions = [y_tilde], []
    for t in range(1, y.shape[1]):
        prediction = growth * y_tilde + drive[t - 1]
        y_tilde = torch.where(flags[t], cases[t], prediction * started[t - 1])
        predictions.append(prediction)
        bridged.append(y_tilde)
    return torch.stack(bridged, dim=1), torch.stack(predictions, dim=1)


def increment_loss_batched(y, z, reported, beta) -> torch.Tensor:
    """Each hospital's loss ``(n_hospitals,)``: the notebook's loop, vectorised.

    Squared errors of the predicted against the reported value on every
    reported day after the first report, divided by their number (a
    hospital with one report gets 0). The branch "was day t reported?"
    becomes ``torch.where``.
    """
    _, predicted = _unroll(y, z, reported, beta)
    compared = (reported.cumsum(dim=1)[:, :-1] > 0) & reported[:, 1:]
    error = torch.where(compared, y[:, 1:] - predicted, 0.0)
    return (error**2).sum(dim=1) / compared.sum(dim=1).clamp(min=1)


def bridged_values(y, z, reported, beta):
    """The model's bridged values ``y~`` and one-day predictions, both
    ``(n_hospitals, n_days)`` and NaN before the first report (predictions
    also on the first day)."""
    with torch.no_grad():
        y_tilde, predicted = _unroll(y, z, reported, beta)
    started = reported.cumsum(dim=1) > 0
    nan = torch.full_like(y_tilde[:, :1], float("nan"))
    predicted = torch.where(started[:, :-1], predicted, nan)
    return torch.where(started, y_tilde, nan), torch.cat([nan, predicted], dim=1)


def fit_plain_gradient_descent(y, z, reported, steps: int = 150) -> torch.Tensor:
    """The original recipe: fixed steps (0.001, 0.01, 0.001) from ``b = 0``.

    Introduced (written by hand) in the notebook section "Gradient descent
    by hand". Stopping after ``steps`` steps keeps slow coefficients near 0.

    Returns:
        ``beta`` ``(n_hospitals, 3)``; NaN or huge where it diverged.
    """
    check_int("steps", steps, minimum=1)
    step_sizes = torch.tensor([0.001, 0.01, 0.001], dtype=y.dtype)
    beta = torch.zeros(y.shape[0], 3, dtype=y.dtype, requires_grad=True)
    with one_thread():
        for _ in range(steps):
            loss = increment_loss_batched(y, z, reported, beta).sum()
            (gradient,) = torch.autograd.grad(loss, beta)
            with torch.no_grad():
                beta -= step_sizes * gradient
    return beta.detach()


def fit_increment_model(y, z, reported, *, steps: int = 300, lr: float = 0.05):
    """Least-squares fit of every hospital's ``beta`` by Adam on scaled data.

    Introduced in the notebook section "Gradient descent by hand, and why
    scaling matters". Per hospital the parameters ``theta = (c, b2, g)``
    enter as
    ``b1 = c s_y - b2 m_y - b3 m_z``, ``b3 = g s_y / s_z`` (``m``, ``s``:
    mean and spread of the reported cases and of the incidence), so all
    three are of order one; autograd differentiates through that map. Adam
    treats every parameter separately, so hospitals do not interact; the
    learning rate decays to ``lr / 100``.

    Returns:
        float64 ``beta`` ``(n_hospitals, 3)``; NaN with fewer than 2 reports.
    """
    check_int("steps", steps, minimum=1)
    check_float("lr", lr, minimum=0.0, strict=True)
    weight = reported.to(y.dtype)
    n = weight.sum(dim=1)
    mean_y = (weight * y).sum(dim=1) / n
    scale_y = ((weight * (y - mean_y[:, None]) ** 2).sum(dim=1) / n).sqrt()
    scale_y = scale_y.clamp(min=1.0)
    mean_z, scale_z = z.mean(dim=1), z.std(dim=1, correction=0)
    scale_z = torch.where(scale_z > 0, scale_z, 1.0)

    def to_beta(theta):
        b3 = theta[:, 2] * scale_y / scale_z
        b1 = theta[:, 0] * scale_y - theta[:, 1] * mean_y - b3 * mean_z
        return torch.stack([b1, theta[:, 1], b3], dim=1)

    theta = torch.zeros(y.shape[0], 3, dtype=y.dtype, requires_grad=True)
    optimiser = torch.optim.Adam([theta], lr=lr)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimiser, 0.01 ** (1 / steps))
    with one_thread():
        for _ in range(steps):
            optimiser.zero_grad()
            losses = increment_loss_batched(y, z, reported, to_beta(theta))
            (losses / scale_y**2).sum().backward()
            optimiser.step()
            decay.step()
    beta = to_beta(theta).detach()
    beta[n < 2] = float("nan")
    return beta


def needs_fallback(beta, max_abs: float = 10.0) -> torch.Tensor:
    """The original's rule, bool ``(n_hospitals,)``: distrust a fit with NaN
    or any ``|b| > max_abs`` (such hospitals get the mean model)."""
    return torch.isnan(beta).any(dim=1) | (beta.abs() > max_abs).any(dim=1)


def _locf_regression(y, z, shift: int) -> torch.Tensor:
    """Least squares of ``y(t+1) - y(t)`` on ``(1, y, z)`` at ``t + shift``
    per hospital (minimum norm); the predicted next increment from the last
    day. ``shift=1`` pairs each change with its end, as the published code."""
    design = torch.stack([torch.ones_like(y), y, z], dim=2)  # (H, T, 3)
    fitted_on = design[:, shift : shift + y.shape[1] - 1]
    coefficients = torch.linalg.pinv(fitted_on) @ y.diff(dim=1).unsqueeze(-1)
    return (design[:, -1:] @ coefficients).flatten()


def last_day_predictions(data: pd.DataFrame, *, steps: int = 300, lr: float = 0.05,
                         plain_steps: int = 150) -> pd.DataFrame:
    """Predict each hospital's last change with every model in :data:`MODELS`.

    Introduced in the notebook section "Comparing with the baselines". The
    models see days ``0..T-2`` as published; hospitals whose day ``T-1`` was
    reported are scored on ``y[T-1] - y[T-2]``. zero: no change; mean: mean
    published change; modified mean: 0 if the last change was 0, else the
    mean; LOCF + regression: :func:`_locf_regression` with ``shift=0``, and
    with ``shift=1`` as the published code; increment model: Adam fit, the
    last change predicted from the bridged ``y~`` (plus the bridged change
    since the last report); original recipe: :func:`fit_plain_gradient_descent`
    (``plain_steps`` steps) predicting from the published ``y[T-2]``, as
    the original evaluation. Fits that :func:`needs_fallback` get the mean
    model. ``steps``, ``lr``: the Adam fit's.

    Returns:
        One row per scored hospital: ``hospital``, ``observed``, one column
        per model, ``days_missing_before_last`` (unreported days just before
        the last day) and the Adam fit's ``b1``, ``b2``, ``b3``.
    """
    arrays = to_arrays(data)
    scored = arrays.reported[:, -1] & arrays.reported[:, :-1].any(dim=1)
    y, z, reported = arrays.y[scored], arrays.z[scored], arrays.reported[scored]
    train_y, train_z, train_r = y[:, :-1], z[:, :-1], reported[:, :-1]
    changes = train_y.diff(dim=1)
    mean = changes.mean(dim=1)
    last_y, last_z = train_y[:, -1], train_z[:, -1]

    beta = fit_increment_model(train_y, train_z, train_r, steps=steps, lr=lr)
    y_tilde, _ = bridged_values(train_y, train_z, train_r, beta.nan_to_num())
    bridged = y_tilde[:, -1]
    from_bridged = (beta[:, 0] + (1 + beta[:, 1]) * bridged + beta[:, 2] * last_z
                    - last_y)
    original = fit_plain_gradient_descent(train_y, train_z, train_r, plain_steps)
    from_published = original[:, 0] + original[:, 1] * last_y + original[:, 2] * last_z

    def fallback(fit, prediction):
        return torch.where(needs_fallback(fit), mean, prediction).numpy()

    trailing = train_r.flip(dims=[1]).to(torch.int64).argmax(dim=1)
    return pd.DataFrame({
        "hospital": arrays.hospitals[scored.numpy()],
        "observed": (y[:, -1] - y[:, -2]).numpy(),
        "zero": np.zeros(int(scored.sum())),
        "mean": mean.numpy(),
        "modified mean": torch.where(changes[:, -1] == 0, 0.0, mean).numpy(),
        "LOCF + regression": _locf_regression(train_y, train_z, 0).numpy(),
        "LOCF + regression (published code)": _locf_regression(
            train_y, train_z, 1).numpy(),
        "increment model": fallback(beta, from_bridged),
        "increment model (original recipe)": fallback(original, from_published),
        "days_missing_before_last": trailing.numpy(),
        "b1": beta[:, 0].numpy(), "b2": beta[:, 1].numpy(), "b3": beta[:, 2].numpy(),
    })


def summarise_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Sum, mean and maximum of each model's squared errors, one row per
    model of :data:`MODELS`, plus ``n_hospitals``."""
    rows = {}
    for model in MODELS:
        squared = (predictions[model] - predictions["observed"]) ** 2
        rows[model] = {"sse": squared.sum(), "mean": squared.mean(),
                       "max": squared.max(), "n_hospitals": squared.size}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def compare_models(data: pd.DataFrame, **fit) -> pd.DataFrame:
    """:func:`summarise_errors` of :func:`last_day_predictions` (``fit``:
    its ``steps``, ``lr`` and ``plain_steps``)."""
    return summarise_errors(last_day_predictions(data, **fit))
