"""ADVI for the hierarchical dose-response model: ours (torch) against PyMC.

Run from the repository root (needs PyMC: pip install -r requirements-bonus.txt):

    python benchmarks/bench_advi_dose_response.py            # every part, ~30 min
    python benchmarks/bench_advi_dose_response.py --quick    # small sizes
    python benchmarks/bench_advi_dose_response.py --part calibration  # one part

In one run, on data from ``helpers.bonus.advi_dose_response.simulate`` (seed 1):

1. our ADVI (``fit_advi``), mean-field and per-group full-rank, at full scale
   (``--groups``, default 3,000 groups, 405,000 observations) and at the
   scale of PyMC's full-rank run (``--small-groups``);
2. PyMC's own ADVI, ``pm.fit(method="advi")`` at full scale and
   ``pm.fit(method="fullrank_advi")`` at ``--small-groups`` (its family is
   one dense covariance over all 4 G + 9 coordinates, too big at full scale),
   both with Adam (learning rate ``--pymc-lr``) for ``--steps`` steps;
3. NUTS (``pm.sample``, 4 chains; ``--nuts-parameterisation``,
   ``--nuts-tune``, ``--nuts-target-accept``) on the first ``--nuts-groups``
   groups, diagnosed with ArviZ (R-hat, bulk and tail effective sample
   sizes, divergences), and both of our families on the same groups:
   posterior means and sds against NUTS's. ``--part nuts-sparse`` does the
   same on the notebook's sparse groups (120 groups of 3 doses x 2, seed
   2026, the first ``--nuts-groups``), a longer run than the notebook's;
4. calibration over ``--seeds`` simulated studies of ``--calibration-groups``
   groups, in a favourable design (9 doses x 15 replicates) and a sparse
   one (3 doses x 2 replicates): coverage of central intervals at several
   levels, and the PSIS k-hat of each fit (mean +- sd over the studies).

A fit counts as converged when the mean ELBO of its last 100 steps differs
from that of the 100 before by less than 0.01 nats per coordinate
(4 G + 9 coordinates); coverage is reported for converged fits only.

Timings: wall-clock seconds of each fit, and the CPU seconds it used (on a
loaded machine the better guide to a quiet one's wall time). PyMC compiles
its graph to C first; its row gives the compile-and-fit time of the call,
after a 10-step call
that fills the compile cache (reported separately). The final ELBO is the
mean over the last 100 steps of the one-draw estimates (PyMC: minus its
loss history; both include every normalising constant, on the same
unconstrained coordinates). Coverage: share of groups whose central 90%
interval holds the true value, per parameter (PyMC: from 1,000 draws).
"""

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.bonus import advi_dose_response as dr


def cpu_name() -> str:
    """The CPU model as ``lscpu`` reports it (falls back to ``platform``)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if "Model name" in line]
    return names[0] if names else "unknown"


def load() -> str:
    """The 1-minute load average, as a string."""
    return f"{os.getloadavg()[0]:.1f}"


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (g++)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def cover(lower, upper, truth) -> str:
    return " / ".join(f"{share:.2f}" for share in dr.coverage(lower, upper, truth))


CONVERGED_PER_COORDINATE = 0.01


def converged(change, n_groups) -> bool:
    """The convergence rule of the module docstring."""
    return abs(change) < CONVERGED_PER_COORDINATE * (4 * n_groups + 9)


def ours(data, truth, family, n_steps):
    start, cpu, load_before = time.perf_counter(), cpu_seconds(), load()
    params, history = dr.fit_advi(data, family, n_steps=n_steps, seed=1,
                                  progress=False)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    summary = dr.summarise(params, family)
    last, before = history[-100:].mean(), history[-200:-100].mean()
    return {"seconds": seconds, "cpu": cpu, "elbo": last, "change": last - before,
            "coverage": cover(summary["lower"], summary["upper"], truth.theta),
            "load": f"{load_before}-{load()}"}


def pymc_fit(data, truth, method, n_steps, lr):
    import pymc as pm

    model = dr.pymc_model(data)
    with model:
        start = time.perf_counter()
        pm.fit(10, method=method, obj_optimizer=pm.adam(learning_rate=lr),
               progressbar=False, random_seed=1)
        warm_up = time.perf_counter() - start
        start, cpu, load_before = time.perf_counter(), cpu_seconds(), load()
        approx = pm.fit(n_steps, method=method, obj_optimizer=pm.adam(learning_rate=lr),
                        progressbar=False, random_seed=1)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        draws = approx.sample(1000, random_seed=2).posterior["theta"].values
    summary = dr.summarise_draws(draws.reshape(-1, data.n_groups, 4))
    elbo = -np.asarray(approx.hist)
    last, before = elbo[-100:].mean(), elbo[-200:-100].mean()
    return {"seconds": seconds, "cpu": cpu, "warm_up": warm_up, "elbo": last,
            "change": last - before,
            "coverage": cover(summary["lower"], summary["upper"], truth.theta),
            "load": f"{load_before}-{load()}"}


def nuts_table(data, n_groups, n_steps, draws, tune=None, target_accept=0.9,
               parameterisation="noncentred", seed=1):
    import arviz as az
    import pymc as pm

    tune = draws if tune is None else tune
    small = dr.subset(data, range(n_groups))
    start, cpu, load_before = time.perf_counter(), cpu_seconds(), load()
    with dr.pymc_model(small, parameterisation):
        trace = pm.sample(draws=draws, tune=tune, chains=4, cores=1, random_seed=seed,
                          progressbar=False, target_accept=target_accept)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    group_level = "z" if parameterisation == "noncentred" else "theta"
    summary = az.summary(trace, var_names=[group_level, "mu", "tau", "sigma"])
    nuts = dr.summarise_draws(
        trace.posterior["theta"].values.reshape(-1, n_groups, 4))
    divergent = int(trace.sample_stats["diverging"].sum())
    print(f"\nNUTS ({parameterisation}, target_accept={target_accept}) on "
          f"{n_groups} groups ({len(small.response):,} observations), 4 chains x "
          f"{draws} draws after {tune} tuning steps, seed {seed}: {seconds:.0f} s "
          f"wall, {cpu:.0f} s CPU (compile included), load {load_before}-{load()}; "
          f"{divergent} divergences, largest R-hat {summary['r_hat'].max():.3f}, "
          f"smallest bulk ESS {summary['ess_bulk'].min():.0f}, smallest tail ESS "
          f"{summary['ess_tail'].min():.0f}.\nPer parameter, mean over groups: "
          "|ADVI mean - NUTS mean| / NUTS sd, and ADVI sd / NUTS sd.\n")
    print("| parameter | mean-field: mean diff | full-rank: mean diff "
          "| mean-field: sd ratio | full-rank: sd ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    fits = {family: dr.summarise(dr.fit_advi(small, family, n_steps=n_steps, seed=seed,
                                             progress=False)[0], family)
            for family in dr.FAMILIES}
    for k, name in enumerate(dr.PARAMETERS):
        diffs = [((fits[f]["mean"][:, k] - nuts["mean"][:, k]).abs()
                  / nuts["sd"][:, k]).mean().item() for f in dr.FAMILIES]
        ratios = [(fits[f]["sd"][:, k] / nuts["sd"][:, k]).mean().item()
                  for f in dr.FAMILIES]
        print(f"| {name} | {diffs[0]:.2f} | {diffs[1]:.2f} | {ratios[0]:.2f} "
              f"| {ratios[1]:.2f} |")


LEVELS = (0.5, 0.8, 0.9, 0.95)
DESIGNS = {"favourable (9 doses x 15)": (9, 15), "sparse (3 doses x 2)": (3, 2)}


def calibration(n_groups, n_steps, seeds):
    """Coverage at several levels and PSIS k-hat, mean +- sd over studies."""
    print(f"\nCalibration: {len(seeds)} simulated studies (seeds {seeds[0]}-"
          f"{seeds[-1]}) of {n_groups} groups, {n_steps} steps; coverage averaged "
          "over the four parameters, mean +- sd over studies (binomial se of one "
          f"study at 90%: {(0.09 / n_groups) ** 0.5:.3f}); load at start {load()}.\n")
    header = " | ".join(f"{level:.0%}" for level in LEVELS)
    print(f"| design | family | {header} | log_ic50 at 90% | log_hill at 90% "
          "| k-hat |")
    print("| --- | --- |" + " ---: |" * (len(LEVELS) + 3))
    for design, (n_doses, n_replicates) in DESIGNS.items():
        for family in dr.FAMILIES:
            shares, khats = [], []
            for seed in seeds:
                data, truth = dr.simulate(n_groups=n_groups, n_doses=n_doses,
                                          n_replicates=n_replicates, seed=seed)
                params, history = dr.fit_advi(data, family, n_steps=n_steps,
                                              seed=seed, progress=False)
                change = history[-100:].mean() - history[-200:-100].mean()
                if not converged(change, n_groups):
                    print(f"  (seed {seed}: {family} not converged, {change:+.1f})")
                row = []
                for level in LEVELS:
                    s = dr.summarise(params, family, level)
                    row.append(dr.coverage(s["lower"], s["upper"], truth.theta))
                shares.append(np.stack(row))  # (levels, 4)
                khats.append(dr.psis_khat(params, family, data, n_draws=1000,
                                          seed=seed))
            shares, khats = np.stack(shares), np.array(khats)
            pooled = shares.mean(-1)  # (studies, levels)
            at90 = shares[:, LEVELS.index(0.9)]
            cells = [f"{m:.2f} +- {s:.2f}" for m, s in
                     zip(pooled.mean(0), pooled.std(0, ddof=1))]
            cells += [f"{at90[:, k].mean():.2f} +- {at90[:, k].std(ddof=1):.2f}"
                      for k in (2, 3)]
            cells.append(f"{khats.mean():.2f} +- {khats.std(ddof=1):.2f}")
            print(f"| {design} | {family} | " + " | ".join(cells) + " |",
                  flush=True)


def main(groups, small_groups, n_steps, pymc_lr, nuts_groups, nuts_draws,
         part="all", calibration_groups=120, seeds=(11, 12, 13, 14, 15), nuts=None):
    nuts = {"tune": None, "target_accept": 0.9, "parameterisation": "noncentred",
            **(nuts or {})}
    torch.set_num_threads(1)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__} "
          f"(1 thread); load average at start {load()}")
    if part in ("all", "calibration"):
        calibration(calibration_groups, 2000, seeds)
    if part in ("all", "nuts"):
        data, _ = dr.simulate(n_groups=groups, seed=1)
        nuts_table(data, nuts_groups, 2000, nuts_draws, nuts["tune"],
                   nuts["target_accept"], nuts["parameterisation"])
    if part == "nuts-sparse":  # the notebook's sparse groups (seed 2026, 120 groups)
        data, _ = dr.simulate(n_groups=120, n_doses=3, n_replicates=2, seed=2026)
        nuts_table(data, nuts_groups, 2000, nuts_draws, nuts["tune"],
                   nuts["target_accept"], nuts["parameterisation"], seed=2026)
    if part not in ("all", "scale"):
        return
    rows = []
    for n_groups in dict.fromkeys([groups, small_groups]):
        data, truth = dr.simulate(n_groups=n_groups, seed=1)
        for family in dr.FAMILIES:
            result = ours(data, truth, family, n_steps)
            rows.append((f"ours, {family}", n_groups, len(data.response), result))
            print(f"  done: ours {family} at {n_groups} groups, "
                  f"{result['seconds']:.0f} s", flush=True)
    try:
        import pymc
    except ImportError:
        pymc = None
        print("PyMC is not installed: its rows and NUTS are skipped.")
    if pymc is not None:
        for method, n_groups in (("advi", groups), ("fullrank_advi", small_groups)):
            data, truth = dr.simulate(n_groups=n_groups, seed=1)
            result = pymc_fit(data, truth, method, n_steps, pymc_lr)
            rows.append((f"PyMC {pymc.__version__} {method}", n_groups,
                         len(data.response), result))
            print(f"  done: PyMC {method} at {n_groups} groups, "
                  f"{result['seconds']:.0f} s", flush=True)

    print(f"\n{n_steps} steps each; coverage of the 90% intervals for bottom / top / "
          "log_ic50 / log_hill; ELBO change: last 100 steps minus the 100 before.\n")
    print("| method | groups | observations | seconds | CPU seconds | load "
          "| final ELBO | ELBO change | 90% coverage |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
    for name, n_groups, n_obs, r in rows:
        extra = f" (+{r['warm_up']:.0f} s warm-up)" if "warm_up" in r else ""
        shown = (r["coverage"] if converged(r["change"], n_groups)
                 else "not converged")
        print(f"| {name} | {n_groups:,} | {n_obs:,} | {r['seconds']:.1f}{extra} "
              f"| {r['cpu']:.1f} | {r['load']} | {r['elbo']:,.0f} "
              f"| {r['change']:+,.1f} "
              f"| {shown} |")
    if pymc is not None:
        by_name = {(name.split(",")[0].split()[0], name.split()[-1], g): r["seconds"]
                   for name, g, _, r in rows}
        print()
        for pymc_method, family, n_groups in (("advi", "meanfield", groups),
                                              ("fullrank_advi", "fullrank",
                                               small_groups)):
            ratio = (by_name[("PyMC", pymc_method, n_groups)]
                     / by_name[("ours", family, n_groups)])
            print(f"PyMC {pymc_method} / ours {family} at {n_groups:,} groups: "
                  f"{ratio:.1f} times the time")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--small-groups", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--pymc-lr", type=float, default=0.02)
    parser.add_argument("--nuts-groups", type=int, default=30)
    parser.add_argument("--nuts-draws", type=int, default=500)
    parser.add_argument("--nuts-tune", type=int, default=None,
                        help="NUTS tuning steps (default: as many as draws)")
    parser.add_argument("--nuts-target-accept", type=float, default=0.9)
    parser.add_argument("--nuts-parameterisation", default="noncentred",
                        choices=("centred", "noncentred"))
    parser.add_argument("--part", choices=("all", "scale", "calibration", "nuts",
                                           "nuts-sparse"),
                        default="all")
    parser.add_argument("--calibration-groups", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=5,
                        help="simulated studies in the calibration part")
    parser.add_argument("--quick", action="store_true",
                        help="100 and 30 groups, 1000 steps, NUTS on 10 groups")
    args = parser.parse_args()
    if args.quick:
        args.groups, args.small_groups, args.steps = 100, 30, 1000
        args.nuts_groups, args.nuts_draws = 10, 300
    main(args.groups, args.small_groups, args.steps, args.pymc_lr, args.nuts_groups,
         args.nuts_draws, args.part, args.calibration_groups,
         tuple(range(11, 11 + args.seeds)),
         {"tune": args.nuts_tune, "target_accept": args.nuts_target_accept,
          "parameterisation": args.nuts_parameterisation})
