"""Fast batched training of the VAE and the ODE-VAE (Part II, "Training").

The notebook writes the training loop for one individual to show how it works;
this module runs the same loss on mini-batches of many individuals at once,
with one ODE solve per mini-batch.
"""

import inspect
import math
import numbers
import time
from functools import partial

import pandas as pd
import torch
from tqdm.auto import tqdm

from ._checks import check_choice, check_float, check_int
from ._threads import one_thread
from .batching import make_batch
from .models import VAE
from .simulation import Cohort, grid_times

# Defaults chosen to reach the quality bar quickly (see benchmarks/README.md):
# the whole cohort in one batch, and a learning rate large enough to need only
# a few hundred Adam steps, lowered smoothly towards the end.
DEFAULT_EPOCHS = 200
DEFAULT_LR = 0.05
DEFAULT_BATCH_SIZE = 100
DEFAULT_BETAS = (0.85, 0.99)  # Adam's averaging: shorter memory than (0.9, 0.999)
TIME_GRIDS = ("per_visit", "union", "full")
ORIGINAL_SETTINGS = {
    "epochs": 25,
    "lr": 5e-4,
    "batch_size": 1,
    "shuffle": False,
    "schedule": "constant",
    "betas": (0.9, 0.999),
    # The solver path is not a setting of the original's: with one person per
    # update every choice solves the same equation, and per-visit clocks do it
    # fastest (42 s against 55 s on the union of times, the same fit).
    "time_grid": "per_visit",
}


def _check_train_args(
    model, cohort, epochs, lr, batch_size, every, time_grid, schedule, flags,
    callback, betas,
):  # fmt: skip
    if not isinstance(model, VAE):
        raise ValueError(
            f"model must be a VAE or an ODEVAE, got {type(model).__name__}"
        )
    if not isinstance(cohort, Cohort):
        raise ValueError(f"cohort must be a Cohort, got {type(cohort).__name__}")
    if cohort.p != model.p:
        raise ValueError(
            f"the cohort has p={cohort.p} variables but the model expects p={model.p}"
        )
    if hasattr(model, "q") and cohort.q != model.q:
        raise ValueError(
            f"the cohort has q={cohort.q} baseline variables but the model "
            f"expects q={model.q}"
        )
    check_int("epochs", epochs, minimum=1)
    check_float("lr", lr, minimum=0, strict=True)
    check_int("batch_size", batch_size, minimum=1)
    check_int("every", every, minimum=1)
    check_choice("time_grid", time_grid, TIME_GRIDS)
    check_choice("schedule", schedule, ("cosine", "constant"))
    for name, value in flags.items():
        if value not in (True, False):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if callback is not None and not _takes_two_arguments(callback):
        raise ValueError(
            f"callback must be a function callback(model, epoch) or None, "
            f"got {callback!r}"
        )
    if not (
        isinstance(betas, (tuple, list))
        and len(betas) == 2
        and all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas)
    ):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    # the data may have been edited in place since the cohort was built
    for i, x in enumerate(cohort.xs):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(
                f"the visits of individual {i} (cohort.xs[{i}]) contain NaN or "
                "infinite values; remove or impute them before training"
            )
    if not bool(torch.isfinite(cohort.baseline).all()):
        raise ValueError("cohort.baseline contains NaN or infinite values")


def _takes_two_arguments(function) -> bool:
    """Whether ``function(model, epoch)`` is a valid call (checked up front)."""
    if not callable(function):
        return False
    try:
        inspect.signature(function).bind(None, 0)
    except TypeError:
        return False
    except ValueError:  # no signature available (some built-ins): trust it
        pass
    return True


def train(
    model: VAE,
    cohort: Cohort,
    epochs: int = DEFAULT_EPOCHS,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    shuffle: bool = True,
    callback=None,
    every: int = 5,
    progress: bool = True,
    time_grid: str = "per_visit",
    schedule: str = "cosine",
    betas: tuple = DEFAULT_BETAS,
) -> pd.DataFrame:
    """Fit all parameters of a VAE or ODE-VAE with Adam.

    Each mini-batch is one call of ``model.loss`` (the sum of the
    per-individual losses), so ``batch_size=1, shuffle=False`` is the
    original workshop's one-individual-at-a-time scheme; pass
    ``**ORIGINAL_SETTINGS`` to reproduce it.

    On the CPU the loop runs with one torch thread (the previous setting is
    restored afterwards): the tensors are tiny, and extra threads only add
    overhead, several-fold on a busy two-core machine such as Colab's.

    Args:
        model: a :class:`VAE` or :class:`ODEVAE` (trained in place).
        cohort: the training cohort.
        epochs: passes through the cohort.
        lr: Adam's learning rate.
        batch_size: individuals per update (their visits are stacked).
        seed: seed of the shuffling and of the reparameterisation noise.
        shuffle: visit individuals in a new random order every epoch.
        callback: optional ``callback(model, epoch)``, called every ``every``
            epochs and after the last (e.g. to plot progress).
        every: how often to call ``callback``.
        progress: show a progress bar.
        time_grid: where the ODE-VAE's solver reads off the latent states:
            ``"per_visit"`` runs every visit on its own clock from 0 to its
            time, all in one solve that ends at every visit at once (fastest,
            :meth:`~helpers.ODEVAE.solve_per_visit`); ``"union"`` solves once
            on the sorted union of the batch's visit times and picks each
            visit's row (one individual per batch: exactly the original);
            ``"full"`` does that on the whole 0.1 grid, as the original did.
            All three agree up to the solver's tolerance.
        schedule: ``"cosine"`` raises the learning rate linearly to ``lr``
            over the first 10% of the updates, then lowers it smoothly to 5%
            of ``lr`` (:func:`warmup_cosine`); ``"constant"`` keeps it
            (original).
        betas: Adam's averaging coefficients for the gradient and its square;
            the default forgets faster than Adam's usual ``(0.9, 0.999)``,
            which the original used.

    Returns:
        A DataFrame with one row per epoch: ``epoch``, ``loss`` (mean loss
        per individual over the epoch's updates) and ``seconds`` (elapsed).

    Raises:
        FloatingPointError: when the loss becomes NaN or infinite.
    """
    flags = {"shuffle": shuffle, "progress": progress}
    _check_train_args(
        model, cohort, epochs, lr, batch_size, every, time_grid, schedule, flags,
        callback, betas,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    parameter = next(model.parameters())
    grid = grid_times(0.0, round(cohort.t_end, 1)) if time_grid == "full" else None
    grid = None if grid is None else torch.tensor(grid, dtype=torch.float32)
    per_visit = time_grid == "per_visit"
    batch_of = partial(make_batch, cohort, grid=grid, per_visit=per_visit)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    n_updates = epochs * math.ceil(cohort.n / batch_size)
    scheduler = None
    if schedule == "cosine":
        factor = partial(warmup_cosine, n_updates=n_updates)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    whole = None
    if batch_size >= cohort.n:  # one batch: build it once
        whole = batch_of(range(cohort.n)).to(parameter.device)

    def batches(generator):
        order = (
            torch.randperm(cohort.n, generator=generator)
            if shuffle
            else torch.arange(cohort.n)
        )
        if whole is not None:
            yield whole
            return
        for first in range(0, cohort.n, batch_size):
            ids = order[first : first + batch_size]
            yield batch_of(ids).to(parameter.device)

    with one_thread(parameter.device):
        history = _run_epochs(
            model, cohort.n, optimiser, scheduler, generator, batches, epochs, lr,
            callback, every, progress,
        )  # fmt: skip
    model.eval()
    return pd.DataFrame(history)


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


def _run_epochs(model, n, optimiser, scheduler, generator, batches, epochs, lr,
                callback, every, progress) -> list:  # fmt: skip
    """The training loop of :func:`train`; returns one dict per epoch.

    ``batches(generator)`` yields one epoch's mini-batches; ``n`` is the
    number of individuals (the loss is reported per individual).
    """
    history, start = [], time.perf_counter()
    model.train()
    # only switch the bar off explicitly, so that TQDM_DISABLE=1 (CI) still works
    bar_options = {} if progress else {"disable": True}
    for epoch in tqdm(range(1, epochs + 1), desc="training", **bar_options):
        total = 0.0
        for batch in batches(generator):
            loss = model.loss(batch, generator=generator)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"the loss became {value} in epoch {epoch} (lr={lr}): lower the "
                    f"learning rate lr (e.g. to {lr / 10:g}), or the noise or the "
                    "size of the data"
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            total += value
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "loss": total / n, "seconds": seconds})
        if callback is not None and (epoch % every == 0 or epoch == epochs):
            callback(model, epoch)
    return history
