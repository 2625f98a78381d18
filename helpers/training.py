"""Fast batched training of the VAE and the ODE-VAE (Part II, "Training").

The notebook writes the training loop for one individual to show how it works;
:func:`train` runs the same loss on mini-batches of many individuals at once,
with one ODE solve per mini-batch. It reads top to bottom: ``train`` checks
the settings once and runs ``_train``, the loop; then the small pieces the
loop calls (one epoch of one start, dropping the worse starts, the kept start
moving into the caller's model), the score that judges the starts and the
learning-rate schedule.
"""

import copy
import math
import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from ._utils import (
    check_arguments,
    integer,
    number,
    one_of,
    one_thread,
    progress_bar,
)
from .batching import make_batch
from .models import ODEVAE, VAE, check_model
from .simulation import Cohort

# Defaults chosen on data seeds 101-112 and checked on 1000-1019 and weight
# seeds 0-9 (see benchmarks/README.md): the whole cohort in one batch, a
# learning rate large enough for a few hundred Adam steps, lowered smoothly
# towards the end, and the best of a few starting points, judged by how well
# each predicts the training visits (fit_error).
DEFAULT_EPOCHS = 400
DEFAULT_LR = 0.05
DEFAULT_BATCH_SIZE = 100
DEFAULT_STARTS = 3
DEFAULT_BETAS = (0.85, 0.99)  # Adam's averaging: shorter memory than (0.9, 0.999)
HALVE_AT = 1 / 6  # share of the epochs after which the worse starts stop
CHOOSE_AT = 1 / 2  # share of the epochs after which one start is kept
# What each setting of train may be (checked once, by check_arguments)
TRAINING_RULES = {
    "epochs": integer(1),
    "lr": number(0, strict=True),
    "batch_size": integer(1),
    "starts": integer(1),
    "schedule": one_of(("cosine", "constant")),
    "every": integer(1),
    "seed": integer(0),
}
ORIGINAL_SETTINGS = {
    "epochs": 25,
    "lr": 5e-4,
    "batch_size": 1,
    "starts": 1,
    "shuffle": False,
    "schedule": "constant",
    "betas": (0.9, 0.999),
}


def train(
    model: VAE,
    cohort: Cohort,
    epochs: int = DEFAULT_EPOCHS,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    starts: int = DEFAULT_STARTS,
    seed: int = 0,
    shuffle: bool = True,
    schedule: str = "cosine",
    betas: tuple = DEFAULT_BETAS,
    callback=None,
    every: int = 5,
    progress: bool = True,
) -> pd.DataFrame:
    """Fit all parameters of a VAE or ODE-VAE with Adam.

    Each mini-batch is one call of ``model.loss`` (the sum of the
    per-individual losses), so ``batch_size=1, shuffle=False, starts=1`` is
    the original workshop's one-individual-at-a-time scheme; pass
    ``**ORIGINAL_SETTINGS`` to reproduce it.

    Some starting weights lead to a poor optimum (the two latent dimensions
    mix the true states), and its training loss is not always higher. So
    ``starts`` copies of the model, ``model``'s own weights and
    ``starts - 1`` fresh draws from ``seed``, train side by side, and are
    judged by :func:`fit_error`, how well each predicts the training visits:
    after a sixth of the epochs the worse half stop (two go on), after half
    the epochs the best is kept (weights and optimiser state copied into
    ``model``) and trains on alone. The held-out visits play no part.

    On the CPU the loop runs with one torch thread: the tensors are tiny, and
    extra threads only add overhead on a busy two-core machine such as Colab's.

    Args:
        model: a :class:`VAE` or :class:`ODEVAE` (trained in place).
        cohort: the training cohort.
        epochs: passes through the cohort.
        lr: Adam's learning rate.
        batch_size: individuals per update (their visits are stacked).
        starts: starting points tried (see above).
        seed: seed of the shuffling, the reparameterisation noise and the
            extra starting points.
        shuffle: visit individuals in a new random order every epoch.
        schedule: ``"cosine"`` raises the learning rate linearly to ``lr``
            over the first 10% of the updates, then lowers it smoothly to 5%
            of ``lr`` (:func:`warmup_cosine`); ``"constant"`` keeps it
            (original).
        betas: Adam's averaging coefficients for the gradient and its square;
            the default forgets faster than Adam's usual ``(0.9, 0.999)``,
            which the original used.
        callback: optional ``callback(model, epoch)``, called every ``every``
            epochs and after the last (e.g. to plot progress); while several
            starts train, ``model`` holds its own start.
        every: how often to call ``callback``.
        progress: show a progress bar.

    Returns:
        A DataFrame with one row per epoch of the kept run: ``epoch``,
        ``loss`` (mean loss per individual over the epoch's updates) and
        ``seconds`` (elapsed).

    Raises:
        FloatingPointError: when the loss becomes NaN or infinite.
    """
    check_model(model, cohort)
    check_arguments(TRAINING_RULES, locals())
    if callback is not None and not callable(callback):
        raise ValueError(
            f"callback must be a function callback(model, epoch), got {callback!r}"
        )
    return _train(model, cohort, epochs, lr, batch_size, starts, seed, shuffle,
                  schedule, betas, callback, every, progress)


@dataclass
class _Run:
    """One starting point: its model, Adam, learning-rate schedule and the
    mean loss per individual of each epoch so far."""

    model: VAE
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    losses: list = field(default_factory=list)


def _train(model, cohort, epochs, lr, batch_size, starts, seed, shuffle, schedule,
           betas, callback, every, progress) -> pd.DataFrame:
    """The loop of :func:`train`, for settings already checked."""
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    n_updates = epochs * math.ceil(cohort.n / batch_size)

    def new_run(candidate):  # Adam and the schedule for one starting point
        optimiser = torch.optim.Adam(candidate.parameters(), lr=lr, betas=betas)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda update: (
            warmup_cosine(update, n_updates) if schedule == "cosine" else 1.0))
        return _Run(candidate, optimiser, scheduler)

    # the starts: `model`'s own weights, then fresh draws from `seed`
    own = new_run(model)
    runs = [own]
    for _ in range(starts - 1):
        candidate = copy.deepcopy(model)
        candidate.initialise(int(torch.randint(2**31 - 1, (), generator=generator)))
        runs.append(new_run(candidate))
    halve_at, choose_at = (max(1, round(share * epochs)) for share in
                           (HALVE_AT, CHOOSE_AT))  # fmt: skip
    whole = make_batch(cohort, range(cohort.n)).to(device)
    model.train()
    start, seconds = time.perf_counter(), []
    with one_thread(device):
        for epoch in progress_bar(range(1, epochs + 1), progress, desc="training"):
            # this epoch's mini-batches, in a new random order if `shuffle`
            if batch_size >= cohort.n:
                batches = [whole]
            else:
                order = torch.arange(cohort.n)
                if shuffle:
                    order = torch.randperm(cohort.n, generator=generator)
                batches = [
                    make_batch(cohort, order[first : first + batch_size]).to(device)
                    for first in range(0, cohort.n, batch_size)
                ]
            for run in runs:  # every start still in the race takes the same steps
                total = _one_epoch(run, batches, generator, epoch, lr)
                run.losses.append(total / cohort.n)
            if len(runs) > 1 and epoch in (halve_at, choose_at):
                keep = 1 if epoch == choose_at else max(2, math.ceil(len(runs) / 2))
                runs = _prune(runs, keep, whole)
            if len(runs) == 1 and runs[0] is not own:
                runs = [_adopt(runs[0], own)]
            seconds.append(time.perf_counter() - start)
            if callback is not None and (epoch % every == 0 or epoch == epochs):
                callback(model, epoch)
    model.eval()
    return pd.DataFrame(
        {"epoch": range(1, epochs + 1), "loss": runs[0].losses, "seconds": seconds}
    )


def _one_epoch(run: _Run, batches: list, generator, epoch: int, lr: float) -> float:
    """One Adam step per mini-batch for one start; returns the summed loss."""
    total = 0.0
    for batch in batches:
        loss = run.model.loss(batch, generator=generator)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the loss became {value} in epoch {epoch} (lr={lr}): "
                f"lower the learning rate lr (e.g. to {lr / 10:g}), or "
                "the noise or the size of the data"
            )
        run.optimiser.zero_grad()
        loss.backward()
        run.optimiser.step()
        run.scheduler.step()
        total += value
    return total


def _prune(runs: list, keep: int, whole) -> list:
    """The ``keep`` starts that predict the training visits best (fit_error)."""
    return sorted(runs, key=lambda run: fit_error(run.model, whole))[:keep]


def _adopt(best: _Run, own: _Run) -> _Run:
    """Move the kept start into the caller's model: weights, Adam, schedule."""
    own.model.load_state_dict(best.model.state_dict())
    own.optimiser.load_state_dict(best.optimiser.state_dict())
    own.scheduler.load_state_dict(best.scheduler.state_dict())
    own.losses = best.losses
    return own


def fit_error(model: VAE, batch) -> float:
    """Mean squared error of the decoded latent means at a batch's follow-up
    visits, without noise.

    For an :class:`ODEVAE` the latent means are solved from each individual's
    first visit, so this is :func:`helpers.evaluate`'s held-out error computed
    on training visits; for a :class:`VAE` they are each visit's own encoding.
    Missing entries (``batch.mask``) are skipped.
    """
    with torch.no_grad():
        if isinstance(model, ODEVAE):
            latent = model.smooth_means(batch)[2]
        else:
            latent = model.encode(batch.x)[0]
        squared = (model.decode(latent)[0] - batch.x) ** 2
    if batch.mask is not None:  # missing entries play no part
        follow_up = batch.is_follow_up
        return squared[follow_up][batch.mask[follow_up]].mean().item()
    return squared.mean(-1)[batch.is_follow_up].mean().item()


def warmup_cosine(
    update: int, n_updates: int, warmup: float = 0.1, final: float = 0.05
) -> float:
    """Learning-rate factor of the ``"cosine"`` schedule at a given update.

    Rises linearly over the first ``warmup`` share of the updates (large
    early steps from some starting weights otherwise saturate the tanh
    layers for good), then falls along a half cosine to ``final``.
    """
    ramp = max(1, round(warmup * n_updates))
    if update < ramp:
        return (update + 1) / ramp
    progress = (update - ramp) / max(1, n_updates - ramp)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
