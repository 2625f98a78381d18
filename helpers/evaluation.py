"""Numbers, not only pictures (Part II, "Results").

``evaluate`` scores a trained ODE-VAE on held-out last visits, against the
simple baseline of carrying the last observation forward, and checks how well
the learned ODE parameters separate the two groups. The latent space of a VAE
is identified only up to sign, scale, shift and the order of its dimensions,
so ``align_latent`` finds the affine map that best matches the truth; plots
and the latent-fit score use it instead of a manual colour swap.
"""

from dataclasses import dataclass
from itertools import permutations

import numpy as np
import torch

from .models import ODEVAE, VAE, check_model
from .simulation import Cohort


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
    """
    latent = torch.as_tensor(latent, dtype=torch.float64)
    truth = torch.as_tensor(truth, dtype=torch.float64)
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
    check_model(model, cohort)
    if model.zdim != 2:
        raise ValueError(
            f"align_latent needs zdim=2 (two true states), got {model.zdim}"
        )
    if isinstance(model, ODEVAE):
        times = cohort.time_grid()[::5]
        latent = model.latent_paths(cohort.first_visits(), cohort.baseline, times)
        truth = torch.stack(
            [cohort.true_trajectory(int(g), times) for g in cohort.groups], 1
        )  # (T, n, 2), as latent
    else:
        latent = model.encode(torch.cat(cohort.xs))[0]
        pairs = zip(cohort.groups, cohort.ts)
        truth = torch.cat([cohort.true_trajectory(int(g), t) for g, t in pairs])
    return fit_alignment(latent.reshape(-1, 2).cpu(), truth.reshape(-1, 2))


def auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = positive).

    Ties count one half (Mann-Whitney statistic).

    Args:
        scores: ``(n,)`` scores.
        labels: ``(n,)`` booleans, or the numbers 0 and 1; both must occur.

    Returns:
        The AUC, between 0 and 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    positives, negatives = scores[labels], scores[~labels]
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


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
        ValueError: if ``model`` is not an ODEVAE fitting the cohort.
    """
    check_model(model, cohort)
    if not isinstance(model, ODEVAE):
        raise ValueError(
            "evaluate needs an ODEVAE (a plain VAE cannot predict later visits), "
            f"got {type(model).__name__}"
        )
    ids, times, values = heldout["ids"], heldout["times"], heldout["values"]
    start, _ = model.encode(cohort.first_visits(ids))
    params = model.ode_params(cohort.baseline[ids])
    latent = model.solve(start, params, times.to(start))  # (m, zdim)
    predictions = model.decode(latent)[0].cpu()
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
