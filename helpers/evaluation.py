"""Numbers, not only pictures (Part II, "Results", and the exercises).

``evaluate`` scores a trained ODE-VAE on held-out last visits, against the
simple baseline of carrying the last observation forward, and checks how well
the learned ODE parameters separate the two groups. The latent space of a VAE
is identified only up to sign, scale, shift and the order of its dimensions,
so ``align_latent`` finds the affine map that best matches the truth; plots
and the latent-fit score use it instead of a manual colour swap. The
exercises' extra scores follow: the learned parameters in the truth's
coordinates, group separation on new individuals, and growth rates.
"""

import math
from dataclasses import dataclass
from itertools import permutations

import numpy as np
import torch

from .models import ODEVAE, VAE, check_model, ode_matrices
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
    return _align(model, cohort)


@torch.no_grad()
def _align(model: VAE, cohort: Cohort) -> Alignment:
    """:func:`align_latent` for a model already checked against ``cohort``."""
    if model.zdim != 2:
        raise ValueError(
            f"align_latent needs zdim=2 (two true states), got {model.zdim}"
        )
    if isinstance(model, ODEVAE):
        times = cohort.time_grid()[::5]
        latent = model._latent_paths(cohort.first_visits(), cohort.baseline, times)
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


def param_aucs(params, groups) -> list:
    """AUC of each learned ODE parameter for telling group 2 from group 1.

    Args:
        params: ``(n, k)`` learned ODE parameters of ``n`` individuals.
        groups: ``(n,)`` groups, 1 or 2.

    Returns:
        ``k`` AUCs; one below 0.5 means the parameter is lower in group 2.
    """
    params = torch.as_tensor(params).detach().cpu().double().numpy()
    is_group_2 = (torch.as_tensor(groups) == 2).numpy()
    return [auc(params[:, k], is_group_2) for k in range(params.shape[1])]


@torch.no_grad()
def evaluate(model: ODEVAE, cohort: Cohort, heldout: dict) -> dict:
    """Score a trained ODE-VAE (notebook section "Results").

    Args:
        model: a trained :class:`ODEVAE`.
        cohort: the training cohort from :func:`helpers.split_last_visit`.
        heldout: the held-out visits from :func:`helpers.split_last_visit`.

    Returns:
        A dict with
        ``heldout_mse``: mean squared error of the decoded prediction of each
        held-out visit, made from the baseline visit and baseline variables;
        ``locf_mse``: the same for carrying the last training visit forward
        (:func:`locf_predictions`); both skip missing entries
        (:func:`prediction_errors`);
        ``group_auc``: AUC of the best-separating learned ODE parameter for
        the two groups (orientation-free, 0.5 = no separation, 1 = perfect);
        ``group_auc_per_param``: that AUC for each ODE parameter;
        ``latent_r2``: variance of the true latent trajectories explained by
        the aligned learned ones; ``alignment``: that :class:`Alignment`;
        ``n_heldout``: number of held-out visits. For a cohort without a
        simulated truth (:attr:`Cohort.has_truth` False, e.g. read by
        :meth:`Cohort.from_frame`) the group and latent scores are None.

    Raises:
        ValueError: if ``model`` is not an ODEVAE fitting the cohort.
    """
    check_model(model, cohort, kind=ODEVAE)
    ids, times = heldout["ids"], heldout["times"]
    start, _ = model.encode(cohort.first_visits(ids))
    params = model.ode_params(cohort.baseline[ids])
    latent = model.solve(start, params, times.to(start))  # (m, zdim)
    predictions = model.decode(latent)[0].cpu()
    locf = locf_predictions(cohort, heldout)
    scores = {
        "heldout_mse": prediction_errors(predictions, heldout)["mse"],
        "locf_mse": prediction_errors(locf, heldout)["mse"],
        "group_auc": None,
        "group_auc_per_param": None,
        "latent_r2": None,
        "alignment": None,
        "n_heldout": len(ids),
    }
    if not cohort.has_truth:  # a real cohort: no groups, no true latent states
        return scores
    raw = param_aucs(model.ode_params(cohort.baseline), cohort.groups)
    per_param = [max(a, 1.0 - a) for a in raw]  # orientation-free
    alignment = _align(model, cohort)
    return scores | {
        "group_auc": max(per_param),
        "group_auc_per_param": per_param,
        "latent_r2": alignment.r2,
        "alignment": alignment,
    }


@torch.no_grad()
def learned_ode_params(model: ODEVAE, cohort: Cohort, alignment: Alignment) -> dict:
    """Group means of the learned ODE parameters, in the truth's coordinates.

    The latent space is identified only up to order, sign and scale of its
    dimensions, so each learned matrix ``A`` is carried over with the
    alignment to the truth (``u = D P z`` gives ``D P A P^T D^-1``; the
    alignment's shift is ignored). Diagonal entries do not change under
    sign and scale; off-diagonal ones are rescaled.

    Args:
        model: a trained :class:`helpers.ODEVAE` with linear dynamics.
        cohort: the cohort whose baseline variables feed the model.
        alignment: ``evaluate(...)["alignment"]`` or :func:`align_latent`.

    Returns:
        ``{1: (...), 2: (...)}``: per group the mean learned ``(a11, a22)``
        for two parameters or ``(a11, a12, a21, a22)`` for four.
    """
    params = model.ode_params(cohort.baseline).double()  # (n, k)
    permutation = torch.eye(2, dtype=torch.float64)[list(alignment.order)]
    scale = alignment.scale.double()
    matrices = permutation @ ode_matrices(params) @ permutation.T
    matrices = matrices * scale[:, None] / scale[None, :]  # D A D^-1
    entries = matrices.reshape(-1, 4)
    if params.shape[-1] == 2:
        entries = entries[:, [0, 3]]
    return {
        group: tuple(round(value, 4)
                     for value in entries[cohort.groups == group].mean(0).tolist())
        for group in (1, 2)
    }


@torch.no_grad()
def new_individuals_auc(model: ODEVAE, train_cohort: Cohort, fresh: Cohort) -> float:
    """Group separation by the learned ODE parameters, on individuals never seen.

    ``evaluate``'s ``group_auc`` scores the training individuals, whose group
    the parameter network can memorise from their trajectories when there
    are many baseline variables per individual. Here the parameter that
    separates the training groups best, with its direction, is read off the
    training individuals and then scored on a fresh cohort.

    Args:
        model: a trained :class:`helpers.ODEVAE`.
        train_cohort: the individuals it was trained on.
        fresh: new individuals simulated with the same settings.

    Returns:
        The AUC on ``fresh`` (0.5 = no separation, 1 = perfect; can fall
        below 0.5 when the training direction does not carry over).
    """
    scores = param_aucs(model.ode_params(train_cohort.baseline), train_cohort.groups)
    best = max(range(len(scores)), key=lambda k: abs(scores[k] - 0.5))
    new = model.ode_params(fresh.baseline)[:, best : best + 1]
    score = param_aucs(new, fresh.groups)[0]
    return score if scores[best] >= 0.5 else 1.0 - score


def growth_rates(entries) -> tuple:
    """Real parts of the eigenvalues of a learned matrix, largest first.

    Any invertible linear change of the latent coordinates keeps the
    eigenvalues, so they compare fairly with the truth even when the learned
    matrix is not diagonal (true rates: group 1 -0.2 and -0.2, group 2 0.2
    and -0.2).

    Args:
        entries: ``(a11, a22)`` of a diagonal matrix or ``(a11, a12, a21, a22)``.

    Returns:
        The two rates as floats.
    """
    matrix = ode_matrices(torch.tensor([entries], dtype=torch.float64))[0]
    rates = torch.linalg.eigvals(matrix).real.sort(descending=True).values
    return tuple(rates.tolist())


# --- baselines for the held-out last visit --------------------------------
# Both take the training cohort and the held-out visits of
# :func:`helpers.split_last_visit` and return predictions shaped like
# ``heldout["values"]``; :func:`prediction_errors` scores any of them,
# skipping missing entries.


def locf_predictions(train_cohort: Cohort, heldout: dict) -> torch.Tensor:
    """Last observation carried forward, variable by variable.

    Each held-out value is predicted by the same variable's value at the
    person's latest training visit where it was observed; a variable never
    observed in a person's training visits gets the mean of that variable
    over all observed training values.

    Args:
        train_cohort: the training cohort.
        heldout: the held-out visits (``ids``, ``times``, ``values``, ``mask``).

    Returns:
        float32 ``(m, p)`` predictions.
    """
    observed = torch.cat(train_cohort.masks)
    values = torch.cat(train_cohort.xs)
    means = (values * observed).sum(0) / observed.sum(0).clamp_min(1)
    rows = []
    for i in heldout["ids"].tolist():
        x, m = train_cohort.xs[i], train_cohort.masks[i]
        if bool(m[-1].all()):  # a complete last visit: carry it as it is
            rows.append(x[-1])
            continue
        latest = torch.where(m, torch.arange(len(x))[:, None], -1).amax(0)  # (p,)
        seen = x[latest.clamp_min(0), torch.arange(x.shape[1])]
        rows.append(torch.where(latest >= 0, seen, means))
    return torch.stack(rows) if rows else torch.zeros(0, train_cohort.p)


def _person_sums(cohort: Cohort, j: int) -> tuple:
    """Sufficient statistics of variable ``j`` per person for a straight line
    in time: ``Z'Z`` ``(n, 2, 2)``, ``Z'y`` ``(n, 2)``, ``y'y`` and the
    number of observed visits ``(n,)``, float64, with ``Z = [1, t]``."""
    counts = torch.tensor([len(t) for t in cohort.ts])
    owner = torch.repeat_interleave(torch.arange(cohort.n), counts)
    keep = torch.cat(cohort.masks)[:, j]
    owner, y = owner[keep], torch.cat(cohort.xs)[keep, j].double()
    time = torch.cat(cohort.ts)[keep].double()
    z = torch.stack([torch.ones_like(time), time], -1)  # (n_obs, 2)

    def per_person(terms):  # sums of rows by owner
        sums = terms.new_zeros((cohort.n, *terms.shape[1:]))
        return sums.index_add_(0, owner, terms)

    return (per_person(z[:, :, None] * z[:, None, :]), per_person(z * y[:, None]),
            per_person(y * y), per_person(torch.ones_like(y)))  # fmt: skip


def _mixed_model_terms(raw, zz, zy, yy, counts, reml):
    """Negative (restricted) log-likelihood of the random intercept and slope
    model, the GLS fixed effects and each person's ``P = (s2 G^-1 + Z'Z)^-1``.

    ``raw`` holds ``log s2`` and the Cholesky factor ``L`` of ``G`` (log
    diagonal, off-diagonal). With ``Lambda = L / s`` (``G = s2 Lambda
    Lambda'``) and ``K = I + Lambda' Z'Z Lambda``, every person's ``V = Z G
    Z' + s2 I`` enters through 2x2 algebra: ``P = Lambda K^-1 Lambda'``,
    ``V^-1 = (I - Z P Z') / s2`` and ``log|V| = n_i log s2 + log|K|``. Only
    ``K`` (at least ``I``) is inverted, so a variance that shrinks towards 0
    (a slope that hardly varies between people) stays finite.
    """
    s2 = raw[0].exp()
    chol = torch.stack([raw[1].exp(), raw.new_zeros(()), raw[2], raw[3].exp()])
    chol = chol.reshape(2, 2)
    relative = chol / s2.sqrt()  # Lambda
    k = torch.eye(2, dtype=zz.dtype) + relative.T @ zz @ relative  # (n, 2, 2)
    p = relative @ torch.linalg.inv(k) @ relative.T  # (n, 2, 2)
    a = (zz - zz @ p @ zz) / s2  # Z'V^-1 Z per person
    b = (zy - (zz @ p @ zy[..., None])[..., 0]) / s2  # Z'V^-1 y
    c = (yy - (zy[:, None, :] @ p @ zy[..., None])[:, 0, 0]) / s2  # y'V^-1 y
    a_sum = a.sum(0)
    beta = torch.linalg.solve(a_sum, b.sum(0))
    quadratic = c.sum() - 2 * beta @ b.sum(0) + beta @ a_sum @ beta
    log_det = (counts * s2.log()).sum() + torch.logdet(k).sum()
    n_obs = counts.sum()
    objective = 0.5 * (log_det + quadratic + n_obs * math.log(2 * math.pi))
    if reml:  # the fixed effects integrated out
        objective = objective + 0.5 * torch.logdet(a_sum)
        objective = objective - math.log(2 * math.pi)  # 0.5 * 2 fixed effects
    return objective, beta, p, chol @ chol.T, s2


def fit_mixed_model(cohort: Cohort, j: int, reml: bool = True) -> dict:
    """Fit ``y = (beta0 + b0) + (beta1 + b1) t + e`` to variable ``j``.

    A linear mixed model with a random intercept and a random slope in
    time per person, ``(b0, b1) ~ N(0, G)`` with ``G`` unstructured and
    ``e ~ N(0, s2)``, fitted to the observed values of the variable by
    restricted maximum likelihood (``reml=True``, statsmodels' default) or
    maximum likelihood, with L-BFGS on the log-likelihood written with 2x2
    algebra per person.

    Args:
        cohort: the (training) cohort.
        j: the variable's column, ``0 <= j < p``.
        reml: REML (True) or ML (False).

    Returns:
        A dict with ``beta`` ``(2,)`` fixed intercept and slope, ``G``
        ``(2, 2)``, ``s2`` (residual variance), ``blups`` ``(n, 2)`` each
        person's predicted ``(b0, b1)`` from their own observed values, and
        ``objective`` (the minimised negative (restricted) log-likelihood);
        all float64.
    """
    zz, zy, yy, counts = _person_sums(cohort, j)
    start_beta = torch.linalg.solve(zz.sum(0), zy.sum(0))
    residual = (yy.sum() - start_beta @ zy.sum(0)) / counts.sum()
    # start: half the residual variance each to s2 and the intercepts, a
    # tenth of that to the slopes, no correlation
    start = [residual / 2, (residual / 2).sqrt(), (residual / 20).sqrt()]
    raw = torch.stack([start[0].log(), start[1].log(), 0 * residual, start[2].log()])
    raw = raw.detach().requires_grad_()
    optimiser = torch.optim.LBFGS(
        [raw], lr=1, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        optimiser.zero_grad()
        objective = _mixed_model_terms(raw, zz, zy, yy, counts, reml)[0]
        objective.backward()
        return objective

    optimiser.step(closure)
    with torch.no_grad():
        objective, beta, p, g, s2 = _mixed_model_terms(raw, zz, zy, yy, counts, reml)
        blups = (p @ (zy - zz @ beta)[..., None])[..., 0]  # P Z'(y - Z beta)
    return {"beta": beta, "G": g, "s2": s2, "blups": blups,
            "objective": objective.item()}  # fmt: skip


def mixed_model_predictions(
    train_cohort: Cohort, heldout: dict, reml: bool = True
) -> torch.Tensor:
    """Predict held-out visits with a linear mixed model per variable.

    For each variable, :func:`fit_mixed_model` (random intercept and slope
    in time, REML by default) is fitted to all observed training values, and
    each held-out value is predicted at its time from the fixed line plus
    the person's BLUP, that is from the person's own earlier visits shrunk
    towards the population line. Time is the cohort's (since the first
    visit); missing training values are skipped.

    Args:
        train_cohort: the training cohort.
        heldout: the held-out visits (``ids``, ``times``, ``values``, ``mask``).
        reml: REML (True) or ML (False).

    Returns:
        float32 ``(m, p)`` predictions.
    """
    ids, times = heldout["ids"], heldout["times"].double()
    design = torch.stack([torch.ones_like(times), times], -1)  # (m, 2)
    columns = []
    for j in range(train_cohort.p):
        fit = fit_mixed_model(train_cohort, j, reml)
        columns.append((design * (fit["beta"] + fit["blups"][ids])).sum(-1))
    return torch.stack(columns, -1).float().reshape(len(ids), train_cohort.p)


def prediction_errors(predictions, heldout: dict) -> dict:
    """Squared errors of predictions of the held-out visits, missing skipped.

    Args:
        predictions: ``(m, p)`` predictions.
        heldout: the held-out visits (``values`` and ``mask`` used; no
            ``mask`` means every value was observed).

    Returns:
        A dict with ``mse`` (mean over all observed entries; for a cohort
        without missing values ``((predictions - values) ** 2).mean()``),
        ``mse_per_variable`` ``(p,)`` and ``n_observed`` ``(p,)``.
    """
    predictions = torch.as_tensor(predictions).to("cpu", torch.float32)
    mask = heldout.get("mask")
    if mask is None:  # held-out visits made by hand, without a mask
        mask = torch.ones(heldout["values"].shape, dtype=torch.bool)
    squared = (predictions - heldout["values"]) ** 2
    if bool(mask.all()):
        mse = squared.mean().item()
    else:
        mse = squared[mask].mean().item()
    counts = mask.sum(0)
    per_variable = torch.where(mask, squared, 0.0).sum(0) / counts.clamp_min(1)
    return {"mse": mse, "mse_per_variable": per_variable, "n_observed": counts}
