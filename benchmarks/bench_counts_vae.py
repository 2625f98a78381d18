"""The counts VAE of bonus/Counts_VAE.ipynb side by side with scvi-tools' SCVI.

Run from the repository root:

    python benchmarks/bench_counts_vae.py                  # ours and scvi-tools
    python benchmarks/bench_counts_vae.py --scvi-python /work/venv-scvi/bin/python
    python benchmarks/bench_counts_vae.py --likelihoods --jobs 8   # section 7

Both models get the shipped PBMC counts (700 cells x 765 genes), the same
stratified split (10% of each ``bulk_labels`` type held out, split seed 0),
scvi-tools' SCVI defaults (128 hidden units, 10 latent dimensions, ZINB,
one dispersion per gene, dropout 0.1, Adam 1e-3 with eps 0.01 and weight
decay 1e-6, batch 128, KL warm-up over 400 epochs) and 400 epochs, one CPU
thread, seeds 0, 1, 2. Recorded per run: seconds per epoch (whole training
call divided by epochs), held-out marginal log-likelihood per cell (1,000
importance samples; scvi-tools' ``get_marginal_ll(return_mean=False)``
averaged over cells), and the latent-space metrics of all 700 cells'
latent means against ``bulk_labels``.

scvi-tools is not a dependency of the bundle. It is used when it imports in
this Python, or from ``--scvi-python`` (a separate virtual environment);
otherwise its rows are skipped with a message. It runs in a child process
that reads the counts and split from a temporary file.

``--likelihoods`` instead compares Poisson, NB, ZINB and the Gaussian on
log counts (our model only), 5 seeds, by held-out marginal log-likelihood;
``--jobs`` runs that many fits at once (each on one thread). Our KL warm-up
always lasts all ``--epochs``.

Bars (issue 25): ours within 2 nats per cell of scvi-tools, and at least
1.5 times faster per epoch.
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCVI_WORKER = """
import json, sys, time
import numpy as np
import torch
import anndata
import scvi

torch.set_num_threads(1)
scvi.settings.num_threads = 1
scvi.settings.dl_num_workers = 0
stored = np.load(sys.argv[1])
counts, train, heldout = stored["counts"], stored["train"], stored["heldout"]
epochs, samples, seed = (int(value) for value in sys.argv[2:5])
scvi.settings.seed = seed
everyone = anndata.AnnData(counts.astype(np.float32))
train_data, heldout_data = everyone[train].copy(), everyone[heldout].copy()
scvi.model.SCVI.setup_anndata(train_data)
model = scvi.model.SCVI(train_data, n_hidden=128, n_latent=10, n_layers=1,
                        dropout_rate=0.1, gene_likelihood="zinb", dispersion="gene")
start, cpu = time.perf_counter(), time.process_time()
model.train(max_epochs=epochs, batch_size=128, train_size=1.0, accelerator="cpu",
            devices=1, enable_progress_bar=False)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
per_cell = model.get_marginal_ll(heldout_data, n_mc_samples=samples,
                                 return_mean=False)
latent = model.get_latent_representation(everyone)
np.save(sys.argv[5], latent)
print("RESULT " + json.dumps({"seconds": seconds, "cpu": cpu,
      "heldout_ll": float(np.asarray(per_cell).mean())}))
"""


def load():
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def ours(data, train, heldout, likelihood, epochs, samples, seed):
    """Train our model once; seconds, held-out log p(x) per cell, latent means."""
    from helpers.bonus import counts_vae as cv

    torch.set_num_threads(1)
    model = cv.CountsVAE(data.counts.shape[1], likelihood=likelihood, seed=seed)
    start, cpu = time.perf_counter(), time.process_time()
    cv.train(model, data.counts, train, epochs=epochs, kl_warmup=epochs, seed=seed,
             progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    heldout_ll = cv.marginal_log_likelihood(model, data.counts[heldout], samples,
                                            seed=seed).mean().item()
    return {"seconds": seconds, "cpu": cpu, "heldout_ll": heldout_ll,
            "latent": cv.latent_means(model, data.counts).numpy()}


def scvi_python(requested):
    """The interpreter that has scvi-tools, or None."""
    candidates = [requested] if requested else [sys.executable]
    for python in candidates:
        found = subprocess.run([python, "-c", "import scvi"], check=False,
                               capture_output=True)
        if found.returncode == 0:
            return python
    return None


def scvi_run(python, data, train, heldout, epochs, samples, seed):
    """Train scvi-tools' SCVI in a child process; same keys as :func:`ours`."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, latent = Path(folder) / "inputs.npz", Path(folder) / "latent.npy"
        np.savez(inputs, counts=data.counts.numpy(), train=train.numpy(),
                 heldout=heldout.numpy())
        done = subprocess.run(
            [python, "-c", SCVI_WORKER, str(inputs), str(epochs), str(samples),
             str(seed), str(latent)], check=False, capture_output=True, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        lines = [line for line in done.stdout.splitlines()
                 if line.startswith("RESULT ")]
        if done.returncode or not lines:
            raise RuntimeError(f"scvi-tools run failed:\n{done.stderr[-3000:]}")
        result = json.loads(lines[-1].removeprefix("RESULT "))
        result["latent"] = np.load(latent)
    return result


def summarise(frame, columns):
    """Markdown table: mean +- sd over seeds of each column, per method."""
    grouped = frame.groupby("method", sort=False)[columns]
    means, sds = grouped.mean(), grouped.std()
    lines = ["| method | runs | " + " | ".join(columns) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |"]
    for method in means.index:
        cells = [f"{means.loc[method, c]:.3f} +- {sds.loc[method, c]:.3f}"
                 for c in columns]
        runs = int((frame["method"] == method).sum())
        lines.append(f"| {method} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def side_by_side(args, data, train, heldout):
    from helpers.bonus import counts_vae as cv

    python = scvi_python(args.scvi_python)
    if python is None:
        print("scvi-tools is not installed here (nor at --scvi-python): its rows "
              "are skipped. Install it in a separate environment, e.g.\n"
              "  python -m venv /tmp/venv-scvi && /tmp/venv-scvi/bin/pip install "
              "torch==2.13.0 scvi-tools\nthen pass --scvi-python "
              "/tmp/venv-scvi/bin/python.\n")
    rows = []
    for seed in args.seeds:
        runs = {"ours": ours(data, train, heldout, "zinb", args.epochs,
                             args.samples, seed)}
        if python:
            runs["scvi-tools"] = scvi_run(python, data, train, heldout, args.epochs,
                                          args.samples, seed)
        for method, run in runs.items():
            metrics = cv.latent_metrics(run["latent"], data.cells["bulk_labels"],
                                        seed=seed)
            rows.append({"method": method, "seed": seed,
                         "s/epoch": run["seconds"] / args.epochs,
                         "CPU s/epoch": run["cpu"] / args.epochs,
                         "held-out log p(x)/cell": run["heldout_ll"], **metrics})
            print(f"seed {seed} {method}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in rows[-1].items() if k not in (
                    "method", "seed")) + f" (load {load()})", flush=True)
    principal = cv.pca(cv.log_normalise(data.counts), 10)
    rows.append({"method": "PCA of log-normalised counts (10 PCs)", "seed": 0,
                 **cv.latent_metrics(principal, data.cells["bulk_labels"])})
    frame = pd.DataFrame(rows)
    print()
    print(summarise(frame, ["s/epoch", "CPU s/epoch", "held-out log p(x)/cell",
                            "silhouette",
                            "ARI", "NMI", "kNN accuracy"]))
    if python:
        per = frame.groupby("method")[["s/epoch", "CPU s/epoch",
                                       "held-out log p(x)/cell"]].mean()
        gap = per.loc["scvi-tools", "held-out log p(x)/cell"] - per.loc[
            "ours", "held-out log p(x)/cell"]
        speed = per.loc["scvi-tools"] / per.loc["ours"]
        print(f"\nscvi-tools minus ours: {gap:.2f} nats per cell (bar: <= 2); "
              f"ours {speed['s/epoch']:.2f}x faster per epoch in wall time, "
              f"{speed['CPU s/epoch']:.2f}x in CPU time (bar: >= 1.5)")


def one_likelihood(job):
    likelihood, seed, epochs, samples = job
    from helpers.bonus import counts_vae as cv

    data = cv.load_pbmc()
    train, heldout = cv.stratified_split(data.cells["bulk_labels"], 0.1, seed=0)
    run = ours(data, train, heldout, likelihood, epochs, samples, seed)
    return {"method": likelihood, "seed": seed, "s/epoch": run["seconds"] / epochs,
            "held-out log p(x)/cell": run["heldout_ll"]}


def likelihoods(args):
    jobs = [(likelihood, seed, args.epochs, args.samples)
            for likelihood in args.models for seed in range(args.n_seeds)]
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for row in pool.imap(one_likelihood, jobs):  # each fit as it ends
            rows.append(row)
            print(f"{row['method']} seed {row['seed']}: held-out log p(x)/cell "
                  f"{row['held-out log p(x)/cell']:.2f}, {row['s/epoch']:.3f} "
                  f"s/epoch (load {load()})", flush=True)
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False))
    print()
    print(summarise(frame, ["held-out log p(x)/cell", "s/epoch"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--samples", type=int, default=1000,
                        help="importance samples per held-out cell")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scvi-python", default=None,
                        help="a Python that has scvi-tools installed")
    parser.add_argument("--likelihoods", action="store_true",
                        help="compare Poisson, NB, ZINB, Gaussian (5 seeds)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["poisson", "nb", "zinb",
                                                        "gaussian"],
                        help="likelihoods compared by --likelihoods")
    parser.add_argument("--n-seeds", type=int, default=5,
                        help="seeds 0..n-1 per likelihood for --likelihoods")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {load()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.epochs} "
          f"epochs, {args.samples} importance samples\n", flush=True)
    if args.likelihoods:
        likelihoods(args)
        return
    from helpers.bonus import counts_vae as cv

    data = cv.load_pbmc()
    train, heldout = cv.stratified_split(data.cells["bulk_labels"], 0.1, seed=0)
    side_by_side(args, data, train, heldout)
    print(f"\nload at end: {load()}")


if __name__ == "__main__":
    main()
