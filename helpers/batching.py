"""Stack the visits of many individuals so one ODE solve serves them all.

Individuals have different visit times. A mini-batch stacks all their visits
into one matrix and keeps, for every visit, which individual it belongs to and
where its time sits in the sorted union of the batch's times. One ODE solve
on that union then gives every visit its latent state by indexing
(notebook section "Training many individuals at once"). With
``per_visit=True`` the model instead runs every visit on its own clock
(:meth:`helpers.ODEVAE.solve_per_visit`): still one solve, but no
interpolation between output times, which is what makes training fast.
"""

from dataclasses import dataclass, fields

import torch

from .simulation import Cohort


@dataclass
class Batch:
    """The visits of ``B`` individuals stacked into ``N`` rows.

    Attributes:
        x: ``(N, p)`` measurements, individual after individual, visits in
            time order.
        baseline: ``(B, q)`` baseline variables.
        times: ``(T,)`` sorted distinct times at which the ODE is solved;
            ``times[0] == 0``.
        time_index: int64 ``(N,)`` position of each visit's time in ``times``.
        owner: int64 ``(N,)`` individual (0..B-1) of each visit.
        first_row: int64 ``(B,)`` row of each individual's baseline visit.
        is_follow_up: bool ``(N,)``, False for baseline visits.
        ids: int64 ``(B,)`` the individuals' indices in the cohort.
        per_visit: solve every visit on its own clock instead of the union
            of the times (same result up to the solver's tolerance).
    """

    x: torch.Tensor
    baseline: torch.Tensor
    times: torch.Tensor
    time_index: torch.Tensor
    owner: torch.Tensor
    first_row: torch.Tensor
    is_follow_up: torch.Tensor
    ids: torch.Tensor
    per_visit: bool = False

    @property
    def size(self) -> int:
        """Number of individuals ``B``."""
        return self.baseline.shape[0]

    def to(self, device=None, dtype=None) -> "Batch":
        """Move to a device; floating-point tensors also to ``dtype``."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, torch.Tensor):
                moved[f.name] = value
                continue
            cast = dtype if value.is_floating_point() else None
            moved[f.name] = value.to(device=device, dtype=cast)
        return Batch(**moved)


def make_batch(
    cohort: Cohort, ids, grid: torch.Tensor | None = None, per_visit: bool = False
) -> Batch:
    """Stack the visits of the individuals ``ids``.

    Args:
        cohort: the :class:`~helpers.Cohort`.
        ids: integer indices ``(B,)`` of the individuals (0..n-1), in the
            order to stack them (a list, range, array or int64 tensor; a
            single integer means one individual).
        grid: optional ``(T,)`` strictly increasing finite times, starting at
            0, on which to solve instead of the union of the visit times (e.g.
            the full 0.1 grid of the original workshop). Every visit time must
            be on it.
        per_visit: let the ODE-VAE solve every visit on its own clock
            (fastest; see :meth:`helpers.ODEVAE.solve_per_visit`) instead of
            on the sorted union of times. Cannot be combined with ``grid``.

    Returns:
        The :class:`Batch`.
    """
    if per_visit not in (True, False):
        raise ValueError(f"per_visit must be True or False, got {per_visit!r}")
    if per_visit and grid is not None:
        raise ValueError(
            "per_visit=True solves at the visit times themselves; it cannot be "
            "combined with a grid (pass grid=None)"
        )
    if not isinstance(cohort, Cohort):
        raise ValueError(f"cohort must be a Cohort, got {type(cohort).__name__}")
    ids = _check_ids(ids, cohort.n)
    xs = [cohort.xs[i] for i in ids.tolist()]
    ts = [cohort.ts[i] for i in ids.tolist()]
    counts = torch.tensor([len(t) for t in ts])
    all_times = torch.cat(ts)
    if grid is None:
        times, time_index = torch.unique(all_times, sorted=True, return_inverse=True)
    else:
        times = _check_grid(grid).to(all_times.dtype)
        time_index = torch.searchsorted(times, all_times).clamp(max=len(times) - 1)
        if not torch.allclose(times[time_index], all_times, atol=1e-5):
            raise ValueError("grid must contain every visit time of the batch")
    first_row = torch.cumsum(counts, 0) - counts
    is_follow_up = torch.ones(len(all_times), dtype=torch.bool)
    is_follow_up[first_row] = False
    return Batch(
        x=torch.cat(xs),
        baseline=cohort.baseline[ids],
        times=times,
        time_index=time_index,
        owner=torch.repeat_interleave(torch.arange(len(ids)), counts),
        first_row=first_row,
        is_follow_up=is_follow_up,
        ids=ids,
        per_visit=per_visit,
    )


def _check_ids(ids, n: int) -> torch.Tensor:
    """``ids`` as an int64 tensor ``(B,)`` of indices 0..n-1."""
    allowed = f"integer indices 0..{n - 1} in a list or 1-D array"
    try:
        tensor = torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"ids must be {allowed}, got {ids!r}") from None
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(f"ids must be {allowed}, got {ids!r} (dtype {tensor.dtype})")
    if tensor.dim() > 1:
        raise ValueError(
            f"ids must be {allowed}, got shape {tuple(tensor.shape)} (more than 1-D)"
        )
    tensor = tensor.to(torch.int64).reshape(-1)
    if tensor.numel() == 0 or tensor.min() < 0 or tensor.max() >= n:
        raise ValueError(f"ids must be {allowed}, got {tensor.tolist()}")
    return tensor


def _check_grid(grid) -> torch.Tensor:
    """``grid`` as a float tensor ``(T,)``: finite, strictly increasing, from 0."""
    allowed = "a 1-D tensor of finite, strictly increasing times starting at 0"
    try:
        times = torch.as_tensor(grid)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"grid must be {allowed}, got {grid!r}") from None
    if times.dtype == torch.bool or times.is_complex():
        raise ValueError(f"grid must be {allowed}, got dtype {times.dtype}")
    if times.dim() != 1 or times.numel() == 0:
        raise ValueError(f"grid must be {allowed}, got shape {tuple(times.shape)}")
    times = times.double()
    if (
        not bool(torch.isfinite(times).all())
        or times[0] != 0
        or bool((times[1:] <= times[:-1]).any())
    ):
        shown = times.tolist() if times.numel() <= 8 else f"{times[:8].tolist()}..."
        raise ValueError(f"grid must be {allowed}, got {shown}")
    return times
