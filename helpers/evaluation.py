"""Numbers, not only pictures (Part II, "Results").

``evaluate`` scores a trained ODE-VAE on held-out last visits, against the
simple baseline of carrying the last observation forward, and checks how well
the learned ODE parameters separate the two groups. The latent space of a VAE
is identified only up to sign, scale, shift and the order of its dimensions,
so ``align_latent`` finds the affine map that best matches the truth; plots
and the latent-fit score use it instead of a manual colour swap.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import permutations

import numpy as np
import torch

from ._checks import check_tensor
from .models import ODEVAE, VAE
from .simulation import Cohort, grid_times


@dataclass
class Alignment:
    """Map from latent space to true states: ``u_k = scale_k * z[order[k]] + shift_k``.

    Attributes:
        order: latent dimension matched to each true state, e.g. ``(1, 0)``.
        scale: ``(zdim,)`` signed scales.
        shift: ``(zdim,)`` shifts.
        r2: share of the truth's variance explained after alignment (1 is perfect).
    """

    order: tuple
    scale: torch.Tensor
    shift: torch.Tensor
    r2: float

    def apply(self, latent: torch.Tensor) -> torch.Tensor:
        """Aligned copy of ``latent`` ``(..., zdim)``."""
        latent = torch.as_tensor(latent).to("cpu", self.scale.dtype)
        return latent[..., list(self.order)] * self.scale + self.shift


def fit_alignment(latent, truth) -> Alignment:
    """Least-squares sign, scale, shift and order that map ``latent`` onto ``truth``.

    Args:
        latent: ``(M, zdim)`` latent points.
        truth: ``(M, zdim)`` true states at the same individuals and times.

    Returns:
        The best :class:`Alignment` over all orders of the dimensions.

    Raises:
        ValueError: if the shapes differ or are not ``(M >= 2, zdim)``, or
            either input contains NaN or infinite values.
    """
    latent = torch.as_tensor(latent, dtype=torch.float64)
    truth = torch.as_tensor(truth, dtype=torch.float64)
    if latent.shape != truth.shape or latent.dim() != 2 or len(latent) < 2:
        raise ValueError(
            f"latent and truth must both have shape (M >= 2, zdim), got "
            f"{tuple(latent.shape)} and {tuple(truth.shape)}"
        )
    for name, points in (("latent", latent), ("truth", truth)):
        if not bool(torch.isfinite(points).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    total = ((truth - truth.mean(0)) ** 2).sum().item()
    best = None
    for order in permutations(range(latent.shape[1])):
        z = latent[:, list(order)]
        z_centred = z - z.mean(0)
        variance = (z_centred**2).sum(0).clamp_min(1e-12)
        scale = (z_centred * (truth - truth.mean(0))).sum(0) / variance
        shift = truth.mean(0) - scale * z.mean(0)
        error = ((z * scale + shift - truth) ** 2).sum().item()
        if best is None or error < best[0]:
            best = (error, order, scale, shift)
    error, order, scale, shift = best
    r2 = 1.0 - error / total if total > 0 else float("nan")
    return Alignment(order=order, scale=scale.float(), shift=shift.float(), r2=r2)


def _check_model_and_cohort(model, cohort):
    if not isinstance(model, VAE):
        raise ValueError(
            f"model must be a VAE or an ODEVAE, got {type(model).__name__}"
        )
    if not isinstance(cohort, Cohort):
        raise ValueError(f"cohort must be a Cohort, got {type(cohort).__name__}")
    if cohort.p != model.p or model.zdim != 2:
        raise ValueError(
            f"model (p={model.p}, zdim={model.zdim}) does not fit the cohort "
            f"(p={cohort.p}, two true states)"
        )


@torch.no_grad()
def latent_paths(model: ODEVAE, cohort: Cohort, times) -> torch.Tensor:
    """Latent ODE solutions ``(T, n, zdim)`` of everyone at ``times`` ``(T,)``."""
    first_visits = torch.stack([x[0] for x in cohort.xs])  # (n, p)
    return model.latent_paths(first_visits, cohort.baseline, times)


@torch.no_grad()
def align_latent(model: VAE, cohort: Cohort) -> Alignment:
    """Align a model's latent space to the cohort's true states.

    For an ODE-VAE the latent ODE solutions of all individuals on a grid of
    times are matched to their groups' true trajectories; for a plain VAE the
    encoder means of all visits are matched to the truth at the visit times.

    Args:
        model: a trained :class:`VAE` or :class:`ODEVAE` with ``zdim = 2``.
        cohort: the cohort whose truth defines the target.

    Returns:
        The :class:`Alignment` (its ``r2`` is the latent-fit score).
    """
    _check_model_and_cohort(model, cohort)
    if isinstance(model, ODEVAE):
        times = torch.tensor(
            grid_times(0.0, round(cohort.t_end, 1))[::5], dtype=torch.float32
        )
        latent = latent_paths(model, cohort, times).transpose(0, 1)  # (n, T, 2)
        truth = torch.stack(
            [cohort.true_trajectory(int(g), times) for g in cohort.groups]
        )  # (n, T, 2)
    else:
        latent = torch.cat([model.encode(x)[0] for x in cohort.xs])
        truth = torch.cat(
            [
                cohort.true_trajectory(int(g), t)
                for g, t in zip(cohort.groups, cohort.ts)
            ]
        )
    return fit_alignment(latent.reshape(-1, 2).cpu(), truth.reshape(-1, 2))


def auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = positive).

    Ties count one half (Mann-Whitney statistic).

    Args:
        scores: ``(n,)`` finite scores.
        labels: ``(n,)`` booleans, or the numbers 0 and 1.

    Returns:
        The AUC, between 0 and 1.

    Raises:
        ValueError: if ``scores`` is not 1-D or not finite, ``labels`` has a
            different length or values other than True/False (1/0), or only
            one class occurs.
    """
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"scores must be numbers, got {scores!r}") from None
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contains NaN or infinite values")
    raw = np.asarray(labels)
    if raw.shape != scores.shape:
        raise ValueError(
            f"labels must have one entry per score, shape {scores.shape}, got "
            f"shape {raw.shape}"
        )
    if raw.dtype != bool:
        if not np.issubdtype(raw.dtype, np.number):
            raise ValueError(
                f"labels must be True/False (or 1/0), got dtype {raw.dtype}"
            )
        other = raw[~np.isin(raw, (0, 1))]
        if len(other):
            raise ValueError(
                f"labels must be True/False (or 1/0), got {other[:5].tolist()}"
            )
    labels = raw.astype(bool)
    positives, negatives = scores[labels], scores[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("labels must contain both classes")
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


_HELDOUT = "heldout must be the dict returned by split_last_visit"


def _check_heldout(heldout, cohort: Cohort):
    """Validated ``(ids, times, values)`` of ``heldout`` for ``cohort``.

    Besides types, shapes and NaN, this checks that ``cohort`` is the training
    cohort from the same :func:`helpers.split_last_visit` call: each held-out
    visit must come no earlier than the individual's last visit in ``cohort``,
    and must not *be* that visit (same time and identical values). Passing the
    full cohort instead would score the held-out visits against themselves
    (``locf_mse = 0``); with noisy measurements two distinct visits never
    share a time and every value exactly.

    Returns:
        ``ids`` int64 ``(m,)``, ``times`` float32 ``(m,)``, ``values`` float32
        ``(m, p)``.
    """
    if not isinstance(heldout, Mapping):
        raise ValueError(
            f"{_HELDOUT}, a dict with 'ids', 'times' and 'values', got "
            f"{type(heldout).__name__}"
        )
    missing = [k for k in ("ids", "times", "values") if k not in heldout]
    if missing:
        raise ValueError(f"{_HELDOUT}; it lacks the keys {missing}")
    ids = torch.as_tensor(heldout["ids"])
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise ValueError(
            f"{_HELDOUT}; heldout['ids'] must be integers, got dtype {ids.dtype}"
        )
    if ids.dim() != 1 or len(ids) == 0:
        raise ValueError(
            f"{_HELDOUT}; heldout['ids'] must be a non-empty 1-D tensor, got shape "
            f"{tuple(ids.shape)}"
        )
    ids = ids.to(torch.int64)
    n = len(cohort.xs)
    bad = ids[(ids < 0) | (ids >= n)]
    if len(bad):
        raise ValueError(
            f"{_HELDOUT}; heldout['ids'] must be individuals 0 to {n - 1} of the "
            f"cohort, got {bad.tolist()[:5]}"
        )
    if len(torch.unique(ids)) != len(ids):
        raise ValueError(f"{_HELDOUT}; heldout['ids'] must not repeat an individual")
    m, p = len(ids), cohort.p
    try:
        times = check_tensor("heldout['times']", heldout["times"], (m,)).float()
        values = check_tensor("heldout['values']", heldout["values"], (m, p)).float()
    except ValueError as error:
        raise ValueError(f"{_HELDOUT}; {error}") from None
    last_times = torch.stack([cohort.ts[i][-1] for i in ids.tolist()])
    last_values = torch.stack([cohort.xs[i][-1] for i in ids.tolist()])
    earlier = times < last_times
    if bool(earlier.any()):
        i = ids[earlier][0].item()
        raise ValueError(
            f"heldout visits must come after the cohort's visits, but individual "
            f"{i}'s held-out visit is earlier than its last visit in cohort: pass "
            "the training cohort returned by split_last_visit together with heldout"
        )
    same = (times == last_times) & (values == last_values).all(-1)
    if bool(same.any()):
        i = ids[same][0].item()
        raise ValueError(
            f"cohort still contains the held-out visits (individual {i}'s last "
            "visit equals its held-out visit), so they would be scored against "
            "themselves: pass the training cohort returned by split_last_visit, "
            "not the full cohort"
        )
    return ids, times, values


@torch.no_grad()
def evaluate(model: ODEVAE, cohort: Cohort, heldout: dict) -> dict:
    """Score a trained ODE-VAE (notebook section "Results in numbers").

    Args:
        model: a trained :class:`ODEVAE`.
        cohort: the training cohort from :func:`helpers.split_last_visit`.
        heldout: the held-out visits from :func:`helpers.split_last_visit`.

    Returns:
        A dict with
        ``heldout_mse``: mean squared error of the decoded prediction of each
        held-out visit, made from the baseline visit and baseline variables;
        ``locf_mse``: the same for carrying the last training visit forward;
        ``group_auc``: AUC of the best-separating learned ODE parameter for
        the two groups (orientation-free, 0.5 = no separation, 1 = perfect);
        ``group_auc_per_param``: that AUC for each ODE parameter;
        ``latent_r2``: variance of the true latent trajectories explained by
        the aligned learned ones; ``n_heldout``: number of held-out visits.

    Raises:
        ValueError: if ``model`` is not an ODEVAE fitting the cohort, or
            ``heldout`` is not the dict that :func:`helpers.split_last_visit`
            returned together with ``cohort`` (see :func:`_check_heldout`).
    """
    if not isinstance(model, ODEVAE):
        raise ValueError(
            "evaluate needs an ODEVAE (a plain VAE cannot predict later visits), "
            f"got {type(model).__name__}"
        )
    _check_model_and_cohort(model, cohort)
    ids, times, values = _check_heldout(heldout, cohort)
    first_visits = torch.stack([cohort.xs[i][0] for i in ids.tolist()])
    solve_times, where = torch.unique(times, sorted=True, return_inverse=True)
    paths = model.latent_paths(first_visits, cohort.baseline[ids], solve_times)
    latent = paths[where, torch.arange(len(ids))]  # (m, zdim)
    predictions = model.decode(latent)[0].to("cpu", torch.float32)
    last_observed = torch.stack([cohort.xs[i][-1] for i in ids.tolist()])

    params = model.ode_params(cohort.baseline).cpu().double().numpy()
    is_group_2 = (cohort.groups == 2).numpy()
    per_param = [auc(params[:, k], is_group_2) for k in range(params.shape[1])]
    per_param = [max(a, 1.0 - a) for a in per_param]
    return {
        "heldout_mse": ((predictions - values) ** 2).mean().item(),
        "locf_mse": ((last_observed - values) ** 2).mean().item(),
        "group_auc": max(per_param),
        "group_auc_per_param": per_param,
        "latent_r2": align_latent(model, cohort).r2,
        "n_heldout": len(ids),
    }
