"""Speed of ODE-VAE training: batched vs the original scheme vs the closed-form floor.

Run from the repository root:

    python benchmarks/bench_training.py            # everything (about 2-3 minutes)
    python benchmarks/bench_training.py --skip-original

Prints three tables: (1) time to train with the default settings (every
visit on its own clock), with one solve on the union of the visit times, with
the original one-at-a-time scheme (batch size 1, full 0.1 grid, dopri5, 25
epochs) and with the closed-form solution ``z(t) = exp(A t) z0`` instead of
the ODE solver, all measured in this one run on the same data, with held-out
errors, and whether the speed bar is met; (2) the default on three data seeds
(the quality bar); (3) seconds per epoch for growing cohorts.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers


def timed_training(train_cohort, heldout, method="dopri5", **settings):
    """Train a fresh ODE-VAE; return (seconds, scores)."""
    model = helpers.ODEVAE(train_cohort.p, train_cohort.q, method=method)
    start = time.perf_counter()
    helpers.train(model, train_cohort, progress=False, **settings)
    seconds = time.perf_counter() - start
    return seconds, helpers.evaluate(model, train_cohort, heldout)


def comparison(skip_original: bool):
    train_cohort, heldout = helpers.split_last_visit(helpers.simulate_cohort(seed=12))
    helpers.train(  # warm-up: the first calls into torch pay one-time costs
        helpers.ODEVAE(train_cohort.p, train_cohort.q), train_cohort, epochs=3,
        progress=False,
    )  # fmt: skip
    rows = [("default (per-visit clocks)", *timed_training(train_cohort, heldout))]
    rows.append(
        (
            "union of visit times",
            *timed_training(train_cohort, heldout, time_grid="union"),
        )
    )
    rows.append(
        (
            "closed-form floor",
            *timed_training(train_cohort, heldout, method="closed_form"),
        )
    )
    if not skip_original:
        original = dict(helpers.ORIGINAL_SETTINGS, time_grid="full")
        rows.append(
            ("original scheme", *timed_training(train_cohort, heldout, **original))
        )
    default_seconds = rows[0][1]
    print(
        f"{'setting':<28}{'seconds':>9}{'vs default':>12}"
        f"{'heldout MSE':>13}{'LOCF MSE':>10}{'group AUC':>11}"
    )
    for name, seconds, scores in rows:
        print(
            f"{name:<28}{seconds:>9.2f}{seconds / default_seconds:>11.2f}x"
            f"{scores['heldout_mse']:>13.3f}{scores['locf_mse']:>10.3f}"
            f"{scores['group_auc']:>11.3f}"
        )
    print(f"speed bar: default within 5 s: {default_seconds <= 5}", end="")
    if not skip_original:
        ratio = rows[-1][1] / default_seconds
        print(f"; original / default = {ratio:.1f}x (bar 15x): {ratio >= 15}", end="")
    print()


def quality_bar(data_seeds=(12, 1, 2)):
    """Default training on three data seeds: time and held-out scores."""
    print(
        f"\n{'data seed':>10}{'seconds':>9}{'heldout MSE':>13}{'LOCF MSE':>10}"
        f"{'group AUC':>11}"
    )
    for seed in data_seeds:
        cohort = helpers.simulate_cohort(seed=seed)
        seconds, scores = timed_training(*helpers.split_last_visit(cohort))
        print(
            f"{seed:>10}{seconds:>9.2f}{scores['heldout_mse']:>13.3f}"
            f"{scores['locf_mse']:>10.3f}{scores['group_auc']:>11.3f}"
        )


def seed_robustness(seeds=(0, 1, 2, 3, 2022, 42)):
    """Default training from several starting weights (data seed 12)."""
    train_cohort, heldout = helpers.split_last_visit(helpers.simulate_cohort(seed=12))
    print(f"\n{'weights seed':>13}{'heldout MSE':>13}{'latent R2':>11}")
    for seed in seeds:
        model = helpers.ODEVAE(train_cohort.p, train_cohort.q, seed=seed)
        helpers.train(model, train_cohort, seed=seed, progress=False)
        scores = helpers.evaluate(model, train_cohort, heldout)
        print(f"{seed:>13}{scores['heldout_mse']:>13.3f}{scores['latent_r2']:>11.3f}")


def scaling(sizes=(100, 1_000, 10_000), epochs=2):
    print(f"\n{'individuals':>12}{'updates/epoch':>15}{'s/epoch':>10}{'ms/indiv.':>11}")
    for n in sizes:
        cohort = helpers.simulate_cohort(n=n, seed=1)
        model = helpers.ODEVAE(cohort.p, cohort.q)
        helpers.train(model, cohort, epochs=1, progress=False)  # warm-up
        start = time.perf_counter()
        helpers.train(model, cohort, epochs=epochs, progress=False)
        per_epoch = (time.perf_counter() - start) / epochs
        updates = -(-n // 100)
        print(f"{n:>12}{updates:>15}{per_epoch:>10.3f}{1e3 * per_epoch / n:>11.3f}")


def cpu_vs_gpu(sizes=(100, 10_000), epochs=20):
    """Default training on the CPU and on a CUDA GPU, side by side.

    Colab may hand learners a GPU runtime; this says whether moving the model
    there pays. Prints seconds per epoch and the held-out MSE of each run.
    """
    if not torch.cuda.is_available():
        print("\nno CUDA GPU: CPU vs GPU comparison skipped")
        return
    print(f"\nGPU: {torch.cuda.get_device_name(0)}")
    print(f"{'individuals':>12}{'device':>8}{'s/epoch':>10}{'heldout MSE':>13}")
    for n in sizes:
        train_cohort, heldout = helpers.split_last_visit(
            helpers.simulate_cohort(n=n, seed=12)
        )
        for device in ("cpu", "cuda"):
            model = helpers.ODEVAE(train_cohort.p, train_cohort.q).to(device)
            helpers.train(model, train_cohort, epochs=2, progress=False)  # warm-up
            model = helpers.ODEVAE(train_cohort.p, train_cohort.q).to(device)
            start = time.perf_counter()
            helpers.train(model, train_cohort, epochs=epochs, progress=False)
            if device == "cuda":
                torch.cuda.synchronize()
            per_epoch = (time.perf_counter() - start) / epochs
            mse = helpers.evaluate(model, train_cohort, heldout)["heldout_mse"]
            print(f"{n:>12}{device:>8}{per_epoch:>10.4f}{mse:>13.3f}")


def machine_reference():
    """Seconds for two fixed workloads, to compare machines and days.

    The shared machine's speed drifts from day to day by a factor of two or
    three; these reference times move with it, so a table taken on a slow day
    can be told apart from a regression in the code.
    """
    start = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    python_seconds = time.perf_counter() - start
    x = torch.ones(2)
    start = time.perf_counter()
    for _ in range(50_000):  # tiny tensor ops: overhead-bound, like training
        x = x * 1.0 + 0.0
    torch_seconds = time.perf_counter() - start
    print(
        f"machine reference: 5e6 Python additions {python_seconds:.2f} s, "
        f"1e5 tiny torch ops {torch_seconds:.2f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-original",
        action="store_true",
        help="leave out the slow original scheme (about 1-2 minutes)",
    )
    parser.add_argument(
        "--seeds",
        action="store_true",
        help="also train from six starting weights (about 1 minute)",
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="also compare seconds per epoch on the CPU and a CUDA GPU",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads"
    )
    machine_reference()
    comparison(args.skip_original)
    quality_bar()
    scaling()
    if args.seeds:
        seed_robustness()
    if args.gpu:
        cpu_vs_gpu()


if __name__ == "__main__":
    main()
