"""Re-measure the numbers the exercises' hidden solutions quote.

The solutions in ``notebooks/practicals/40_exercises.py`` quote two kinds of
number:

* Solution 3: the best possible AUC on new individuals, a closed form
  (printed at once, no training);
* Solutions 1 and 4: held-out MSE of the ODE-VAE and of LOCF as mean +- sd
  over data seeds 2000-2004, with ``"trueparams"`` and ``"groupsonly"``
  covariates. They are quoted from ``benchmarks/bench_results.py``; with
  ``--train`` this script reruns them through ``run_experiment`` (the
  learner's route, ten runs, about a minute on a quiet two-core CPU) so the
  two routes can be compared.

Run from the repository root:

    python tools/exercise_numbers.py            # closed forms only
    python tools/exercise_numbers.py --train    # and the ten runs
"""

import argparse
import inspect
import math
import statistics
import sys
from pathlib import Path

import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.simulation import simulate_cohort
from helpers.widgets import default_settings, run_experiment

DATA_SEEDS = (2000, 2001, 2002, 2003, 2004)


def best_possible_auc(noise: float, baseline: str = "trueparams") -> float:
    """Best AUC any method can reach on new individuals.

    ``"trueparams"``: only the a22 baseline variables (half of the
    informative ones) differ between the groups, each normal with sd
    ``sqrt(0.1**2 + noise**2)``. ``"groupsonly"``: all informative variables
    have means -1 and +1 and sd ``sqrt(1 + noise**2)``. The best score (their
    sum) separates the groups with AUC = Phi(d' / sqrt(2)).
    """
    informative = inspect.signature(simulate_cohort).parameters["q_info"].default
    if baseline == "trueparams":
        group_1, group_2 = default_settings()["ode_params"]
        difference, count = abs(group_2[3] - group_1[3]), informative // 2
        sd = math.hypot(0.1, noise)
    else:
        difference, count, sd = 2.0, informative, math.hypot(1.0, noise)
    d_prime = difference * math.sqrt(count) / sd
    return 0.5 * (1 + math.erf(d_prime / 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="rerun the ten runs")
    args = parser.parse_args()
    print("Solution 3: best possible AUC on new individuals")
    for baseline in ("trueparams", "groupsonly"):
        bounds = [f"{best_possible_auc(noise, baseline):.2f}"
                  for noise in (0.0, 0.5, 1.0, 2.0)]  # fmt: skip
        print(f"  {baseline}, baseline_noise 0, 0.5, 1, 2: {', '.join(bounds)}")
    if not args.train:
        return
    print(f"\nSolutions 1 and 4: mean +- sd over data seeds {DATA_SEEDS}")
    for baseline in ("trueparams", "groupsonly"):
        runs = []
        for seed in DATA_SEEDS:
            result = run_experiment(seed=seed, model_seed=seed, baseline=baseline)
            plt.close(result.pop("figure"))
            runs.append(result)
        for score in ("heldout_mse", "locf_mse"):
            values = [run[score] for run in runs]
            print(f"  {baseline} {score}: {statistics.mean(values):.2f} +- "
                  f"{statistics.stdev(values):.2f}")


if __name__ == "__main__":
    main()
