"""PBC registry: the four-way prediction of every patient's held-out last visit.

Run from the repository root:

    python benchmarks/bench_pbc_registry.py             # about 1-2 minutes quiet
    python benchmarks/bench_pbc_registry.py --seeds 5 6 7 8 9 --epochs 200

Builds the cohort of ``bonus/PBC_registry.ipynb``
(``helpers/bonus/pbc_registry.py``), holds out each patient's last visit
(patients with at least two follow-ups) and predicts it by LOCF, the linear
mixed model (random intercept and slope, REML), the ODE-VAE from the first
visit and the baseline, the ODE-VAE from the last training visit, and the
cohort mean for scale. Nothing is tuned here: the ODE-VAE uses
``helpers.train``'s defaults (chosen on simulated cohorts). Prints three
markdown tables, mean +- sd over the seeds (LOCF, LMM and the mean have no
seed: sd 0): mean squared error per variable and overall on the cohort's
standardised scale (log for five labs), mean absolute error per variable in
the original units, and seconds per fit (wall) with the CPU time and load.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.bonus import pbc_registry as pbc


def load() -> str:
    """The 1-, 5- and 15-minute load averages, as text."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def markdown(frame) -> str:
    """A table of text cells as markdown (without the tabulate package)."""
    lines = ["| variable | " + " | ".join(frame.columns) + " |",
             "| --- |" + " --- |" * len(frame.columns)]
    lines += [f"| {name} | " + " | ".join(row) + " |" for name, row in
              zip(frame.index, frame.to_numpy().tolist())]  # fmt: skip
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--save", help="also write the long table to this CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load before: {load()}")
    wall, cpu = time.perf_counter(), time.process_time()
    cohort, _ = pbc.pbc_cohort()
    table, _ = pbc.compare_methods(cohort, seeds=args.seeds, epochs=args.epochs)
    if args.save:
        table.to_csv(args.save, index=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{cohort.n} patients, {sum(len(t) for t in cohort.ts)} visits, "
          f"{cohort.missing_share():.1%} of lab values missing; seeds "
          f"{args.seeds}, {args.epochs} epochs\n")
    for value, title in (("mse", "MSE, standardised scale"),
                         ("mae_original", "MAE, original units"),
                         ("seconds", "seconds per fit (wall)")):
        print(f"{title}:\n")
        print(markdown(pbc.summarise(table, value)) + "\n")
    print(f"total {wall:.0f} s wall, {cpu:.0f} s CPU; load after: {load()}")


if __name__ == "__main__":
    main()
