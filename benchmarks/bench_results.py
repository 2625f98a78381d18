"""Part II's Results, like for like: the ODE-VAE beside the baselines a
statistician would fit, as mean +- sd over data seeds no default was tuned on.

For each data seed (2000-2004; the defaults were chosen on seed 12 and
checked on 1000-1019) and each baseline strategy ("trueparams", the
notebook's default, and "groupsonly"), the cohort's last visits are held
out, the ODE-VAE is trained with the defaults (weight seed = data seed) and
the held-out visits are predicted by

* LOCF: each person's last observed visit, carried forward (uses the
  person's visits up to the last one, no model);
* the ODE-VAE: from the person's *first* visit and baseline variables only.

Run from the repository root (about a minute on a quiet two-core CPU):

    python benchmarks/bench_results.py
"""

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers

DATA_SEEDS = (2000, 2001, 2002, 2003, 2004)
BASELINES = ("trueparams", "groupsonly")


def scores_of(baseline: str, seed: int) -> dict:
    """Held-out MSE of each method on one simulated cohort."""
    cohort = helpers.simulate_cohort(seed=seed, baseline=baseline)
    train_cohort, heldout = helpers.split_last_visit(cohort)
    model = helpers.ODEVAE(cohort.p, cohort.q, seed=seed)
    helpers.train(model, train_cohort, seed=seed, progress=False)
    scores = helpers.evaluate(model, train_cohort, heldout)
    return {"LOCF": scores["locf_mse"], "ODE-VAE": scores["heldout_mse"]}


def main():
    torch.set_num_threads(1)
    start = time.perf_counter()
    table = {}
    for baseline in BASELINES:
        runs = [scores_of(baseline, seed) for seed in DATA_SEEDS]
        table[baseline] = {
            method: [run[method] for run in runs] for method in runs[0]
        }
    print(f"held-out MSE, mean +- sd over data seeds {DATA_SEEDS} "
          f"(noise floor 0.25)\n")
    print("| method | " + " | ".join(f'"{b}"' for b in BASELINES) + " |")
    print("| --- |" + " ---: |" * len(BASELINES))
    for method in table[BASELINES[0]]:
        cells = [
            f"{statistics.mean(v):.3f} +- {statistics.stdev(v):.3f}"
            for v in (table[b][method] for b in BASELINES)
        ]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
