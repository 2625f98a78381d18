"""Re-measure every number of the exercises' worked solutions.

The worked solutions in ``notebooks/practicals/40_exercises.py`` quote tables
measured with :func:`helpers.widgets.run_experiment`. This script re-runs
each of those experiments (the settings a row names, the defaults for the
rest) and prints each solution's table as markdown, ready to paste. Under
each table it lists the extra numbers the prose quotes: per run the group
AUCs and the learned growth rates (eigenvalues) of each group, and for
Solution 8 the learned matrix entries. Runs shared by several tables are
trained once; a short warm-up run comes first, so that no timing includes
start-up costs.

Run from the repository root:

    python tools/exercise_numbers.py    # 36 runs: about 3 min at load 2 (2-core CPU)

Training is chaotic: other versions of torch, or other machines, give
slightly different numbers.
"""

import inspect
import math
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.simulation import simulate_cohort
from helpers.widgets import (
    default_settings,
    growth_rates,
    resolve_settings,
    run_experiment,
)

GENTLE = {"lr": 0.02}
_results = {}


def run(**settings) -> dict:
    """``run_experiment(**settings)``, trained once per distinct setting."""
    key = repr(resolve_settings(settings))
    if key not in _results:
        result = run_experiment(**settings)
        plt.close(result.pop("figure"))
        _results[key] = result
    return _results[key]


def best_possible_auc(noise: float) -> float:
    """Best AUC any method can reach on new "trueparams" individuals.

    Only the a22 baseline variables (half of the informative ones) differ
    between the groups, each normal with sd ``sqrt(0.1**2 + noise**2)``; the
    best score (their sum) separates the groups with AUC = Phi(d' / sqrt(2)).
    """
    group_1, group_2 = default_settings()["ode_params"]
    count = inspect.signature(simulate_cohort).parameters["q_info"].default // 2
    d_prime = abs(group_2[3] - group_1[3]) * math.sqrt(count) / math.hypot(0.1, noise)
    return 0.5 * (1 + math.erf(d_prime / 2))


def rates(result, group) -> str:
    """The learned growth rates of one group, e.g. ``-0.35, -0.38``."""
    values = growth_rates(result["learned_ode_params"][group])
    return ", ".join(f"{rate:.2f}" for rate in values)


def metric(name, form="{:.3f}"):
    """A column that formats one entry of a run's result."""
    return lambda result: form.format(result[name])


COLUMNS = {
    "held-out": metric("heldout_mse"), "LOCF": metric("locf_mse"),
    "AUC": metric("group_auc"), "AUC new": metric("group_auc_new"),
    "R²": metric("latent_r2"), "loss": metric("final_loss", "{:.1f}"),
    "s": metric("seconds", "{:.1f}"), "held-out visits": metric("n_heldout", "{:d}"),
    "floor $\\sigma^2$": lambda r: f"{r['settings']['sigma_ind'] ** 2:.2f}",
    "best possible":
        lambda r: f"{best_possible_auc(r['settings']['baseline_noise']):.2f}",
    "rates group 1": lambda r: rates(r, 1), "rates group 2": lambda r: rates(r, 2),
}
SOLUTION_1 = ("held-out", "LOCF", "AUC", "AUC new", "R²", "loss", "s")


def table(title, first, rows, columns):
    """Print one solution's table and the extra numbers of its runs.

    Args:
        title: heading.
        first: header of the label column.
        rows: ``[(label, settings), ...]``.
        columns: headers, keys of ``COLUMNS``.
    """
    print(f"\n### {title}\n\n| {first} | " + " | ".join(columns) + " |")
    print("| --- " + "".join("| --- " if c.startswith("rates") else "| ---: "
                             for c in columns) + "|")
    results = {label: run(**settings) for label, settings in rows}
    for label, result in results.items():
        print(f"| {label} | " + " | ".join(COLUMNS[c](result) for c in columns) + " |")
    print("\nPer run: AUC, AUC new; learned growth rates group 1; group 2")
    for label, result in results.items():
        print(f"  {label}: {result['group_auc']:.3f}, {result['group_auc_new']:.3f}; "
              f"{rates(result, 1)}; {rates(result, 2)}")
    return results


def seed_table():
    """Solution 2: five model seeds, default and gentle side by side."""
    pairs = {seed: (run(model_seed=seed), run(model_seed=seed, **GENTLE))
             for seed in range(5)}
    print("\n### Solution 2: the initialisation seed\n")
    print("| `model_seed` | held-out | R² | loss | gentle: held-out | R² | loss |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for seed, pair in pairs.items():
        cells = [COLUMNS[c](r) for r in pair for c in ("held-out", "R²", "loss")]
        print(f"| {seed} | " + " | ".join(cells) + " |")
    print("\nPer run: AUC, AUC new; learned growth rates group 1; group 2")
    for seed, pair in pairs.items():
        for name, result in zip(("default", "gentle"), pair):
            print(f"  seed {seed} {name}: {result['group_auc']:.3f}, "
                  f"{result['group_auc_new']:.3f}; {rates(result, 1)}; "
                  f"{rates(result, 2)}")


def main():
    start = time.perf_counter()
    plt.close(run_experiment(epochs=5)["figure"])  # warm-up, not reported
    ode = default_settings()["ode_params"]
    g1, g2 = ode
    table("Solution 1: epochs and learning rate", "run", [
        ("defaults", {}), ("`epochs=50`", {"epochs": 50}),
        ("`lr=0.005`", {"lr": 0.005}), ("`lr=0.2`", {"lr": 0.2}),
        ("`epochs=25, lr=5e-4`", {"epochs": 25, "lr": 5e-4}), ("gentle", GENTLE),
    ], SOLUTION_1)
    seed_table()
    table("Solution 3: noise of the time-dependent variables", "`sigma_ind`", [
        ("0.1", {"sigma_ind": 0.1}), ("0.5 (default)", {}), ("1.0", {"sigma_ind": 1.0}),
        ("0.1, gentle", {"sigma_ind": 0.1, **GENTLE}),
    ], ("floor $\\sigma^2$", "held-out", "LOCF", "R²", "loss", "s"))
    table("Solution 4: fewer or more visits and individuals", "setting", [
        ("`n=50`", {"n": 50}), ("`n=100` (default)", {}), ("`n=300`", {"n": 300}),
        ("`maxntps=3`", {"maxntps": 3}), ("`maxntps=20`", {"maxntps": 20}),
    ], ("held-out visits", "held-out", "LOCF", "R²", "s"))
    table("Solution 5: noise of the baseline variables", "`baseline_noise`", [
        ("0 (default)", {}), ("0.5", {"baseline_noise": 0.5}),
        ("1", {"baseline_noise": 1}), ("2", {"baseline_noise": 2}),
        ("1, gentle", {"baseline_noise": 1, **GENTLE}),
        ("2, gentle", {"baseline_noise": 2, **GENTLE}),
    ], ("held-out", "AUC", "AUC new", "best possible", "R²", "loss"))
    table("Solution 6: the baseline strategy", "setting", [
        ('"trueparams" (default)', {}), ('"groupsonly"', {"baseline": "groupsonly"}),
        ('"groupsonly", gentle', {"baseline": "groupsonly", **GENTLE}),
        ('"groupsonly", `baseline_noise=1`',
         {"baseline": "groupsonly", "baseline_noise": 1}),
    ], ("held-out", "AUC", "AUC new", "R²", "loss", "s"))
    table("Solution 7: the true ODE parameters", "truth", [
        ("default", {}),
        ("group 2 $a_{22}$ = 0.05", {"ode_params": (g1, (*g2[:3], 0.05))}),
        ("group 1 $a_{11}$ = -0.4", {"ode_params": ((-0.4, *g1[1:]), g2)}),
        ("both groups as group 1", {"ode_params": (g1, g1)}),
    ], ("held-out", "LOCF", "AUC", "AUC new", "R²"))
    four = [("seed 0", {"n_ode_params": 4}),
            ("seed 1", {"n_ode_params": 4, "model_seed": 1}),
            ("seed 0, gentle", {"n_ode_params": 4, **GENTLE}),
            ("seed 1, gentle", {"n_ode_params": 4, "model_seed": 1, **GENTLE})]
    results = table("Solution 8: learning all four ODE parameters", "run", four,
                    ("held-out", "R²", "loss", "rates group 1", "rates group 2"))
    print("\n| run | group 1 $(a_{11}, a_{12}, a_{21}, a_{22})$ | group 2 |")
    print("| --- | --- | --- |")
    for label, result in results.items():
        entries = [", ".join(f"{v:.2f}" for v in values)
                   for values in result["learned_ode_params"].values()]
        print(f"| {label} | " + " | ".join(entries) + " |")
    table("Solution 8, two parameters with the same seeds", "run",
          [(label, {k: v for k, v in settings.items() if k != "n_ode_params"})
           for label, settings in four], ("held-out", "R²", "loss"))
    print(f"\n{len(_results)} runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
