"""Stack the visits of many individuals so one ODE solve serves them all.

Individuals have different numbers of visits at different times. A mini-batch
stacks all their visits into one matrix and keeps, for every visit, its time
and the individual it belongs to. The ODE-VAE then runs every visit on its own
clock from the individual's baseline state (:meth:`helpers.ODEVAE.solve`):
one solve for the whole batch (appendix section "Many individuals in one
solve: a clock for every visit").
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
        t: ``(N,)`` time of each visit (0 for baseline visits).
        baseline: ``(B, q)`` baseline variables.
        owner: int64 ``(N,)`` individual (0..B-1) of each visit.
        first_row: int64 ``(B,)`` row of each individual's baseline visit.
        is_follow_up: bool ``(N,)``, False for baseline visits.
        ids: int64 ``(B,)`` the individuals' indices in the cohort.
        mask: bool ``(N, p)``, True where a value was observed; None when
            every value of the batch was (a simulated cohort), so that a
            complete batch runs exactly the arithmetic of the unmasked loss.
    """

    x: torch.Tensor
    t: torch.Tensor
    baseline: torch.Tensor
    owner: torch.Tensor
    first_row: torch.Tensor
    is_follow_up: torch.Tensor
    ids: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def size(self) -> int:
        """Number of individuals ``B``."""
        return self.baseline.shape[0]

    def to(self, device=None, dtype=None) -> "Batch":
        """Move to a device; floating-point tensors also to ``dtype``."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                moved[f.name] = None
                continue
            cast = dtype if value.is_floating_point() else None
            moved[f.name] = value.to(device=device, dtype=cast)
        return Batch(**moved)


def make_batch(cohort: Cohort, ids) -> Batch:
    """Stack the visits of the individuals ``ids``.

    Args:
        cohort: the :class:`~helpers.Cohort`.
        ids: integer indices ``(B,)`` of the individuals (0..n-1), in the
            order to stack them (a list, range, array or int64 tensor).

    Returns:
        The :class:`Batch`.
    """
    ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
    counts = torch.tensor([len(cohort.ts[i]) for i in ids.tolist()])
    first_row = torch.cumsum(counts, 0) - counts
    is_follow_up = torch.ones(int(counts.sum()), dtype=torch.bool)
    is_follow_up[first_row] = False
    mask = torch.cat([cohort.masks[i] for i in ids.tolist()])
    return Batch(
        x=torch.cat([cohort.xs[i] for i in ids.tolist()]),
        t=torch.cat([cohort.ts[i] for i in ids.tolist()]),
        baseline=cohort.baseline[ids],
        owner=torch.repeat_interleave(torch.arange(len(ids)), counts),
        first_row=first_row,
        is_follow_up=is_follow_up,
        ids=ids,
        mask=None if bool(mask.all()) else mask,
    )
