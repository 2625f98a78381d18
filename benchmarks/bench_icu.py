"""Speed of the ICU increment-model fit: vectorised over hospitals vs a loop.

Run from the repository root:

    python benchmarks/bench_icu.py               # under a minute on 2 cores
    python benchmarks/bench_icu.py --subset 5    # quicker, noisier loop timing

Fits the increment model to the training days (all but the last) of the
shipped data set, ``data/icu_hospitals.csv`` (1000 hospitals, 70 days), in
two ways with the same Adam settings: all hospitals at once
(``fit_increment_model(..., vectorised=True)``, the default) and one hospital
after another through the readable loop ``increment_loss``
(``vectorised=False``), the latter on the first ``--subset`` hospitals only.
Both are timed in this one run; the table gives seconds per hospital and the
ratio, and checks that the two fits agree.
"""

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import data_path, icu


def cpu_name() -> str:
    """The CPU model as ``lscpu`` reports it (falls back to ``platform``)."""
    try:
        lines = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if "Model name" in line]
    return names[0] if names else "unknown"


def timed(function, repeats: int):
    """Fastest wall-clock time of ``repeats`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(subset: int, steps: int, repeats: int) -> None:
    arrays = icu.to_arrays(icu.load_hospitals(data_path("icu_hospitals.csv")))
    y, z, reported = arrays.y[:, :-1], arrays.z[:, :-1], arrays.reported[:, :-1]
    n_hospitals = y.shape[0]

    vectorised_seconds, fast = timed(
        lambda: icu.fit_increment_model(y, z, reported, steps=steps), repeats
    )
    loop_seconds, slow = timed(
        lambda: icu.fit_increment_model(
            y[:subset], z[:subset], reported[:subset], steps=steps, vectorised=False
        ),
        1,
    )
    agree = torch.allclose(fast[:subset], slow, rtol=1e-6, atol=1e-8, equal_nan=True)

    per_vectorised = vectorised_seconds / n_hospitals
    per_loop = loop_seconds / subset
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}, torch {torch.__version__}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"Adam steps per fit: {steps}; loop measured on {subset} hospitals\n")
    print(f"{'fit':<34}{'hospitals':>10}{'seconds':>10}{'ms / hospital':>15}")
    print(
        f"{'vectorised (all at once)':<34}{n_hospitals:>10}"
        f"{vectorised_seconds:>10.2f}{1000 * per_vectorised:>15.2f}"
    )
    print(
        f"{'loop over hospitals':<34}{subset:>10}"
        f"{loop_seconds:>10.2f}{1000 * per_loop:>15.2f}"
    )
    print(
        f"{'loop, extrapolated to all':<34}{n_hospitals:>10}"
        f"{per_loop * n_hospitals:>10.0f}{1000 * per_loop:>15.2f}"
    )
    print(f"\nvectorised is {per_loop / per_vectorised:.0f}x faster per hospital")
    print(f"fits agree (first {subset} hospitals): {agree}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    main(arguments.subset, arguments.steps, arguments.repeats)
