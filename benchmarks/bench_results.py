"""Part II's Results, like for like: the ODE-VAE beside the baselines a
statistician would fit, as mean +- sd over data seeds no default was tuned on.

For each data seed (2000-2004; the defaults were chosen on seed 12 and
checked on 1000-1019) and each baseline strategy ("trueparams", the
notebook's default, and "groupsonly"), the cohort's last visits are held
out, the ODE-VAE is trained with the defaults (weight seed = data seed) and
the held-out visits are predicted by

* LOCF: each person's last observed visit, carried forward (uses the
  person's visits up to the last one, no model);
* LMM: a linear mixed model per variable, random intercept and slope in
  time, fitted by REML to all training visits; each held-out value is the
  fixed line plus the person's BLUP at the held-out time (uses the person's
  own earlier visits and everyone's, no baseline variables);
* the ODE-VAE: from the person's *first* visit and baseline variables only
  (the model is trained on everyone's training visits).

Run from the repository root (about a minute on a quiet two-core CPU):

    python benchmarks/bench_results.py
    python benchmarks/bench_results.py --skip-odevae   # the baselines only
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers

DATA_SEEDS = (2000, 2001, 2002, 2003, 2004)
BASELINES = ("trueparams", "groupsonly")


def scores_of(baseline: str, seed: int, odevae: bool = True) -> dict:
    """Held-out MSE of each method on one simulated cohort."""
    cohort = helpers.simulate_cohort(seed=seed, baseline=baseline)
    train_cohort, heldout = helpers.split_last_visit(cohort)
    scores = {"LOCF": helpers.prediction_errors(
        helpers.locf_predictions(train_cohort, heldout), heldout)["mse"]}
    lmm = helpers.mixed_model_predictions(train_cohort, heldout)
    scores["LMM"] = helpers.prediction_errors(lmm, heldout)["mse"]
    if odevae:
        model = helpers.ODEVAE(cohort.p, cohort.q, seed=seed)
        helpers.train(model, train_cohort, seed=seed, progress=False)
        scores["ODE-VAE"] = helpers.evaluate(model, train_cohort, heldout)[
            "heldout_mse"
        ]
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-odevae", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    table = {}
    for baseline in BASELINES:
        runs = [scores_of(baseline, seed, not args.skip_odevae)
                for seed in DATA_SEEDS]  # fmt: skip
        table[baseline] = {
            method: [run[method] for run in runs] for method in runs[0]
        }
    print(f"held-out MSE, mean +- sd over data seeds {DATA_SEEDS} "
          f"(noise floor 0.25)\n")
    print("| method | " + " | ".join(f'"{b}"' for b in BASELINES) + " |")
    print("| --- |" + " ---: |" * len(BASELINES))
    for method in table[BASELINES[0]]:
        cells = []
        for values in (table[b][method] for b in BASELINES):
            ok = [v for v in values if not math.isnan(v)]
            cell = (f"{statistics.mean(ok):.3f} +- {statistics.stdev(ok):.3f}"
                    if len(ok) > 1 else "-")  # fmt: skip
            if len(ok) < len(values):
                cell += f" ({len(values) - len(ok)} of {len(values)} failed)"
            cells.append(cell)
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
