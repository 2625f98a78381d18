"""ODE-VAE training: speed against the original scheme and the closed-form
floor, and robustness over data seeds and starting weights.

Run from the repository root:

    python benchmarks/bench_training.py                 # speed table (minutes)
    python benchmarks/bench_training.py --skip-original # without the slow one
    python benchmarks/bench_training.py --robustness --jobs 2   # both tables
    python benchmarks/bench_training.py --skip-original --gpu   # CPU vs GPU

The speed table trains, in one run on the same data (default cohort, seed 12,
last visits held out): the defaults (the exact ``z(t) = exp(A t) z0`` of the
linear latent ODE, three starts, 400 epochs); the same with fixed-step rk4 on
every visit's own clock (steps of at most 0.5 in real time); the same with the
adaptive dopri5 solver; and the original workshop's scheme (one individual per
update, dopri5 on the full 0.1 grid, 25 epochs, Adam 5e-4).

``--robustness`` trains the defaults on 20 data seeds that played no part in
choosing them (1000-1019, weight seed = data seed, as a new user would) and
on ten weight seeds (0-9) for data seed 12, for the default cohort
("trueparams"), for ``baseline="groupsonly"`` and for ``n_ode_params=4``,
and prints one table per setting and block with the bar's verdict.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from torchdiffeq import odeint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers
from helpers.simulation import grid_times

ORIGINAL_GRID = torch.tensor(grid_times(0.0, 10.0), dtype=torch.float32)


class OriginalODEVAE(helpers.ODEVAE):
    """The original workshop's solve: dopri5 on the full 0.1 grid, shared by
    the batch (one individual per update), each visit read off the grid."""

    def smooth_means(self, batch):
        mean, logvar = self.encode(batch.x)
        params = self.ode_params(batch.baseline)
        path = odeint(
            lambda t, z: self.dynamics(t, z, params), mean[batch.first_row],
            ORIGINAL_GRID, rtol=self.rtol, atol=self.atol, method="dopri5",
        )  # fmt: skip
        on_grid = torch.round(batch.t / 0.1).long()
        return mean, logvar, path[on_grid, batch.owner]


def timed_training(train_cohort, heldout, model_class=helpers.ODEVAE,
                   method=None, **settings):  # fmt: skip
    """Train a fresh ODE-VAE; return (seconds, scores)."""
    model = model_class(train_cohort.p, train_cohort.q, method=method)
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
    rows = [
        ("default (closed form exp(At) z0, 3 starts)",
         *timed_training(train_cohort, heldout)),
        ("same with rk4 (per-visit clocks, steps <= 0.5)",
         *timed_training(train_cohort, heldout, method="rk4")),
        ("same with dopri5", *timed_training(train_cohort, heldout, method="dopri5")),
    ]  # fmt: skip
    if not skip_original:
        rows.append(
            ("original scheme (dopri5, full 0.1 grid)",
             *timed_training(train_cohort, heldout, OriginalODEVAE, "dopri5",
                             **helpers.ORIGINAL_SETTINGS))
        )  # fmt: skip
    default_seconds = rows[0][1]
    print("| setting | seconds | vs default | held-out MSE | LOCF MSE | group AUC |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds, scores in rows:
        print(
            f"| {name} | {seconds:.2f} | {seconds / default_seconds:.2f}x | "
            f"{scores['heldout_mse']:.3f} | {scores['locf_mse']:.3f} | "
            f"{scores['group_auc']:.3f} |"
        )
    print(f"\nspeed bar: default within 5 s: {default_seconds <= 5}", end="")
    print(f"; rk4 / default = {rows[1][1] / default_seconds:.2f}x", end="")
    if not skip_original:
        ratio = rows[-1][1] / default_seconds
        print(f"; original / default = {ratio:.1f}x (bar 15x): {ratio >= 15}", end="")
    print()


SETTINGS = {
    "trueparams": ({}, {}),
    "groupsonly": ({"baseline": "groupsonly"}, {}),
    "n_ode_params=4": ({}, {"n_ode_params": 4}),
}


def one_run(job):
    """Default training of one (setting, data seed, weight seed): scores."""
    name, data_seed, weight_seed = job
    torch.set_num_threads(1)
    data, model_options = SETTINGS[name]
    cohort = helpers.simulate_cohort(seed=data_seed, **data)
    train_cohort, heldout = helpers.split_last_visit(cohort)
    model = helpers.ODEVAE(
        train_cohort.p, train_cohort.q, seed=weight_seed, **model_options
    )
    start = time.perf_counter()
    helpers.train(model, train_cohort, seed=weight_seed, progress=False)
    seconds = time.perf_counter() - start
    return job, seconds, helpers.evaluate(model, train_cohort, heldout)


def robustness(jobs: int, settings=tuple(SETTINGS)):
    blocks = {
        "data seeds 1000-1019 (weight seed = data seed)":
            [(d, d) for d in range(1000, 1020)],
        "data seed 12, weight seeds 0-9": [(12, w) for w in range(10)],
    }  # fmt: skip
    work = [(name, d, w) for name in settings for runs in blocks.values()
            for d, w in runs]  # fmt: skip
    with ProcessPoolExecutor(jobs) as pool:
        results = {job: (s, scores) for job, s, scores in pool.map(one_run, work)}
    for name in settings:
        for title, runs in blocks.items():
            print(f"\n**{name}, {title}**\n")
            print("| data seed | weight seed | seconds | held-out MSE | LOCF MSE "
                  "| group AUC | latent R² |")  # fmt: skip
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            mses, ok = [], []
            for d, w in runs:
                seconds, scores = results[(name, d, w)]
                mse, locf, auc = (scores[k] for k in
                                  ("heldout_mse", "locf_mse", "group_auc"))  # fmt: skip
                mses.append(mse)
                ok.append((mse <= 0.40, mse < locf, auc >= 0.99))
                print(f"| {d} | {w} | {seconds:.1f} | {mse:.3f} | {locf:.3f} | "
                      f"{auc:.3f} | {scores['latent_r2']:.3f} |")  # fmt: skip
            print(
                f"\nwithin 0.40: {sum(o[0] for o in ok)} of {len(ok)}; median "
                f"{statistics.median(mses):.3f}; worst {max(mses):.3f}; better "
                f"than LOCF: {sum(o[1] for o in ok)} of {len(ok)}; group AUC >= "
                f"0.99: {sum(o[2] for o in ok)} of {len(ok)}"
            )


def cpu_vs_gpu(sizes=(100, 10_000), epochs=20):
    """Training on the CPU and on a CUDA GPU, side by side (one start).

    Colab may hand learners a GPU runtime; this says whether moving the model
    there pays. Prints seconds per epoch and the held-out MSE of each run.
    """
    if not torch.cuda.is_available():
        print("\nno CUDA GPU: CPU vs GPU comparison skipped")
        return
    print(f"\nGPU: {torch.cuda.get_device_name(0)}")
    print("| individuals | device | s / epoch | held-out MSE |")
    print("| ---: | --- | ---: | ---: |")
    for n in sizes:
        train_cohort, heldout = helpers.split_last_visit(
            helpers.simulate_cohort(n=n, seed=12)
        )
        for device in ("cpu", "cuda"):
            model = helpers.ODEVAE(train_cohort.p, train_cohort.q).to(device)
            helpers.train(model, train_cohort, epochs=2, starts=1, progress=False)
            model = helpers.ODEVAE(train_cohort.p, train_cohort.q).to(device)
            start = time.perf_counter()
            helpers.train(model, train_cohort, epochs=epochs, starts=1, progress=False)
            if device == "cuda":
                torch.cuda.synchronize()
            per_epoch = (time.perf_counter() - start) / epochs
            mse = helpers.evaluate(model, train_cohort, heldout)["heldout_mse"]
            print(f"| {n} | {device} | {per_epoch:.4f} | {mse:.3f} |")


def machine_reference():
    """Seconds for two fixed workloads, to compare machines and days."""
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
        f"1e5 tiny torch ops {torch_seconds:.2f} s; load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-original", action="store_true",
                        help="leave out the slow original scheme")  # fmt: skip
    parser.add_argument("--robustness", action="store_true",
                        help="the two robustness tables instead of the speed table")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS),
                        choices=list(SETTINGS), help="with --robustness")
    parser.add_argument("--jobs", type=int, default=1,
                        help="parallel training processes for --robustness")
    parser.add_argument("--gpu", action="store_true",
                        help="also compare seconds per epoch on the CPU and a GPU")
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    machine_reference()
    if args.robustness:
        robustness(args.jobs, tuple(args.settings))
    else:
        comparison(args.skip_original)
    if args.gpu:
        cpu_vs_gpu()
    machine_reference()


if __name__ == "__main__":
    main()
