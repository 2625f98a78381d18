"""How ``train`` chooses among its starting points: rules replayed on the
tuning blocks.

Run from the repository root (about 100 trainings of 400 epochs):

    python benchmarks/bench_starts.py --jobs 3

For every (data seed, weight seed) of the tuning blocks (data seeds 101-112
with weight seed = data seed; data seed 12 with weight seeds 20-39) it trains
each of the three starts ``train`` would try (the model's own weights and the
two fresh draws from ``seed``) alone for the default 400 epochs, records the
training loss per epoch and :func:`helpers.training.fit_error` at a few
epochs, and the held-out MSE at the end. It then replays selection rules on
these records: "by loss" takes the mean training loss of the ten epochs
before the cut, "by fit" the fit error at the cut; "drop 1 at e1, keep 1 at
e2" drops the worst start at epoch e1 and keeps the best of the other two at
e2. The held-out MSE of the kept start is what the rule would have given
(the real joint run draws its noise in another order, so it differs a
little). Epoch-cost counts the epochs of all starts together (one start
alone: 400).
"""

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers
from helpers.training import fit_error

CHECKPOINTS = (67, 100, 133, 200, 400)
BLOCKS = {
    "data seeds 101-112": [(d, d) for d in range(101, 113)],
    "data seed 12, weight seeds 20-39": [(12, w) for w in range(20, 40)],
}
RULES = {  # name: (criterion, [(epoch, starts kept), ...])
    "by loss at 133 (engine v2)": ("loss", [(133, 1)]),
    "by fit at 133": ("fit", [(133, 1)]),
    "by loss at 200": ("loss", [(200, 1)]),
    "by fit at 200": ("fit", [(200, 1)]),
    "by loss at 400 (final)": ("loss", [(400, 1)]),
    "by fit, drop 1 at 67, keep 1 at 200 (default)": ("fit", [(67, 2), (200, 1)]),
    "by loss, drop 1 at 67, keep 1 at 200": ("loss", [(67, 2), (200, 1)]),
}


def one_start(job):
    """Train start k of (data seed, weight seed) alone; its records."""
    data_seed, weight_seed, k = job
    torch.set_num_threads(1)
    train_cohort, heldout = helpers.split_last_visit(
        helpers.simulate_cohort(seed=data_seed)
    )
    whole = helpers.make_batch(train_cohort, range(train_cohort.n))
    model = helpers.ODEVAE(train_cohort.p, train_cohort.q, seed=weight_seed)
    draws = torch.Generator().manual_seed(weight_seed)  # as train draws them
    fresh = [int(torch.randint(2**31 - 1, (), generator=draws)) for _ in range(2)]
    if k > 0:
        model.initialise(fresh[k - 1])
    fits = {}

    def record(model, epoch):
        if epoch in CHECKPOINTS:
            fits[epoch] = fit_error(model, whole)

    history = helpers.train(model, train_cohort, seed=weight_seed, starts=1,
                            callback=record, every=1, progress=False)  # fmt: skip
    mse = helpers.evaluate(model, train_cohort, heldout)["heldout_mse"]
    return job, history["loss"].tolist(), fits, mse


def kept(records, criterion, cuts):
    """The start a rule keeps, given each start's (losses, fits, mse)."""
    alive = list(records)
    for epoch, keep in cuts:
        if criterion == "loss":
            alive.sort(key=lambda r: sum(r[0][epoch - 10 : epoch]))
        else:
            alive.sort(key=lambda r: r[1][epoch])
        alive = alive[:keep]
    return alive[0]


def epoch_cost(cuts, starts=3, epochs=400):
    cost, before = 0, 0
    for epoch, keep in cuts:
        cost, before, starts = cost + starts * (epoch - before), epoch, keep
    return cost + starts * (epochs - before)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    args = parser.parse_args()
    work = [(d, w, k) for runs in BLOCKS.values() for d, w in runs for k in range(3)]
    with ProcessPoolExecutor(args.jobs) as pool:
        records = {job: rest for job, *rest in pool.map(one_start, work)}
    header = " | ".join(BLOCKS)
    print(f"| rule | epoch-cost | {header} |")
    print("| --- | ---: |" + " ---: |" * len(BLOCKS))
    for name, (criterion, cuts) in [("best of three (oracle)", (None, []))] + list(
        RULES.items()
    ):
        cells = []
        for runs in BLOCKS.values():
            mses = []
            for d, w in runs:
                starts = [records[(d, w, k)] for k in range(3)]
                if criterion is None:
                    mses.append(min(r[2] for r in starts))
                else:
                    mses.append(kept(starts, criterion, cuts)[2])
            cells.append(
                f"{sum(m <= 0.40 for m in mses)}/{len(mses)} within 0.40, median "
                f"{statistics.median(mses):.3f}, worst {max(mses):.3f}"
            )
        cost = "-" if criterion is None else epoch_cost(cuts)
        print(f"| {name} | {cost} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
