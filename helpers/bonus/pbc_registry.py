"""The Mayo Clinic PBC follow-up (bonus notebook ``bonus/PBC_registry.ipynb``).

Everything specific to this registry: reading ``data/pbcseq.csv`` (R's
``survival::pbcseq``, see ``data/README.md``), the choices that turn it into
a :class:`helpers.Cohort` (which labs, which are log-transformed, which
variables count as baseline, time in years), the patients' later outcomes
for the plots, the ODE-VAE's prediction of a held-out visit from the last
training visit, and the four-way comparison of the notebook and its
benchmark. The cohort itself is built by the general
:meth:`helpers.Cohort.from_frame`, the same door a learner's own table uses.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from helpers import (
    ODEVAE,
    Cohort,
    locf_predictions,
    mixed_model_predictions,
    prediction_errors,
    split_last_visit,
    train,
)

from .._utils import check_choice, check_int, data_path

PBC_CSV = "pbcseq.csv"
LABS = ("bili", "albumin", "alk.phos", "ast", "platelet", "protime", "chol")
"""The time-dependent variables: the laboratory values of every visit."""
LOG_LABS = ("bili", "alk.phos", "ast", "protime", "chol")
"""Labs with a long right tail, modelled on the log scale."""
BASELINE = ("age", "female", "treated", "ascites0", "hepato0", "spiders0", "edema0")
"""Baseline variables: age, sex, treatment arm, and the clinical signs at the
first visit (they change later, but their first value is known at the start)."""
DAYS_PER_YEAR = 365.25
OUTCOMES = {0: "censored", 1: "transplant", 2: "death"}
"""The codes of the ``status`` column: the state at the end of follow-up."""
TABLE_COLUMNS = ("method", "seed", "variable", "mse", "mae_original", "seconds")
METHODS = ("LOCF", "LMM", "ODE-VAE, first visit", "ODE-VAE, last visit")
"""The four predictions of a held-out visit, in the notebook's order."""
REFERENCE = "cohort mean"
"""A fifth row for scale: every value predicted by its variable's mean over
the training visits, the prediction that uses no information on the person."""


def load_pbcseq(path=None) -> pd.DataFrame:
    """Read the PBC follow-up table, one row per visit.

    Args:
        path: CSV file; default the shipped ``data/pbcseq.csv``.

    Returns:
        The table as it is in the file (columns as in R's ``?pbcseq``).
    """
    frame = pd.read_csv(data_path(PBC_CSV) if path is None else path)
    wanted = {"id", "futime", "status", "trt", "age", "sex", "day", "stage"}
    missing = sorted(wanted.union(LABS) - set(frame.columns))
    if missing:
        raise ValueError(f"the PBC table lacks the columns {missing}")
    return frame


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The PBC table in the form the cohort is built from.

    Adds ``years`` (visit time, ``day / 365.25``), ``female`` (1 for
    ``sex == "f"``), ``treated`` (1 for D-penicillamine, 0 for placebo, as
    coded in the shipped file) and ``ascites0``, ``hepato0``, ``spiders0``,
    ``edema0`` (each patient's value at the first visit, on every row).

    Args:
        frame: the table of :func:`load_pbcseq`.

    Returns:
        A new table, rows ordered by patient and visit time.
    """
    frame = frame.sort_values(["id", "day"], kind="stable").reset_index(drop=True)
    prepared = frame.assign(
        years=frame["day"] / DAYS_PER_YEAR,
        female=(frame["sex"] == "f").astype(float),
        treated=frame["trt"].astype(float),
    )
    for sign in ("ascites", "hepato", "spiders", "edema"):
        prepared[f"{sign}0"] = frame.groupby("id")[sign].transform("first")
    return prepared


def pbc_cohort(frame=None) -> tuple[Cohort, pd.DataFrame]:
    """The PBC follow-up as a cohort, and each patient's later outcome.

    Args:
        frame: the table of :func:`load_pbcseq` (default: read it).

    Returns:
        ``(cohort, outcomes)``: the :class:`helpers.Cohort` built by
        ``Cohort.from_frame`` (variables :data:`LABS`, :data:`LOG_LABS`
        log-transformed, baseline :data:`BASELINE`, all standardised, time
        in years), and a table with one row per patient in the cohort's
        order: ``id``, ``follow_up`` (years to death, transplant or the end
        of the study), ``outcome`` (``"censored"``, ``"transplant"`` or
        ``"death"``), ``event`` (death or transplant) and ``stage``
        (histologic stage 1-4 at entry).
    """
    prepared = prepare(load_pbcseq() if frame is None else frame)
    cohort = Cohort.from_frame(
        prepared, id="id", time="years", variables=list(LABS),
        baseline=list(BASELINE), log=list(LOG_LABS),
    )  # fmt: skip
    first = prepared.groupby("id").first().loc[list(cohort.columns.people)]
    outcomes = pd.DataFrame(
        {
            "id": first.index.to_numpy(),
            "follow_up": first["futime"].to_numpy() / DAYS_PER_YEAR,
            "outcome": first["status"].map(OUTCOMES).to_numpy(),
            "event": first["status"].to_numpy() > 0,
            "stage": first["stage"].to_numpy(),
        }
    )
    return cohort, outcomes


@torch.no_grad()
def odevae_predictions(model: ODEVAE, train_cohort: Cohort, heldout: dict,
                       start: str = "first") -> torch.Tensor:  # fmt: skip
    """Decoded ODE-VAE predictions of the held-out visits.

    ``start="first"``: encode each person's first visit and solve the latent
    ODE (parameters from the baseline variables) to the held-out time, as
    :func:`helpers.evaluate` does. ``start="last"``: encode the person's
    last training visit instead and solve forward over the gap to the
    held-out time; the dynamics are autonomous, so only the gap matters.
    Missing entries of an encoded visit enter as 0.0 (the standardised
    mean), as in training.

    Args:
        model: a trained :class:`helpers.ODEVAE`.
        train_cohort, heldout: from :func:`helpers.split_last_visit`.
        start: ``"first"`` or ``"last"``.

    Returns:
        float32 ``(m, p)`` predictions on the cohort's scale.
    """
    check_choice("start", start, ("first", "last"))
    ids = heldout["ids"].tolist()
    row = 0 if start == "first" else -1
    visits = torch.stack([train_cohort.xs[i][row] for i in ids])
    begins = torch.stack([train_cohort.ts[i][row] for i in ids])
    latent, _ = model.encode(visits)
    params = model.ode_params(train_cohort.baseline[ids])
    gaps = (heldout["times"] - begins).to(latent)
    return model.decode(model.solve(latent, params, gaps))[0].float().cpu()


def original_unit_errors(cohort: Cohort, predictions, heldout: dict) -> np.ndarray:
    """Mean absolute error per variable in the table's units, missing skipped.

    Args:
        cohort: the cohort (its transforms are undone).
        predictions: ``(m, p)`` predictions on the cohort's scale.
        heldout: the held-out visits.

    Returns:
        float64 ``(p,)``.
    """
    predicted = cohort.original_units(predictions)
    observed = cohort.original_units(heldout["values"])
    mask = heldout["mask"]
    errors = torch.where(mask, (predicted - observed).abs(), 0.0).sum(0)
    return (errors / mask.sum(0).clamp_min(1)).numpy()


def _mean_predictions(train_cohort: Cohort, heldout: dict) -> torch.Tensor:
    """Every held-out value predicted by its variable's training mean."""
    values, observed = torch.cat(train_cohort.xs), torch.cat(train_cohort.masks)
    means = (values * observed).sum(0) / observed.sum(0)
    return means.expand(len(heldout["ids"]), -1).clone()


def compare_methods(cohort: Cohort, seeds=(0,), epochs: int = 400,
                    progress: bool = False) -> tuple:  # fmt: skip
    """Predict every patient's held-out last visit four ways (:data:`METHODS`),
    and by the cohort mean (:data:`REFERENCE`) for scale.

    LOCF, the mixed model and the mean are fitted once (they have no seed); the
    ODE-VAE (``zdim = 2``, diagonal linear dynamics, :func:`helpers.train`'s
    defaults but ``epochs``) is trained once per seed and predicts from the
    first and from the last training visit.

    Args:
        cohort: the full cohort (its last visits are held out here).
        seeds: seeds of the ODE-VAE's weights and training.
        epochs: passes over the training cohort.
        progress: show training progress bars.

    Returns:
        ``(table, models)``: a long table with one row per method, seed (-1
        for the seedless baselines) and variable (plus ``"overall"``), with
        ``mse`` on the cohort's standardised scale, ``mae_original`` in the
        table's units (NaN for ``"overall"``: the units differ) and
        ``seconds`` (the fit's time, shared by the method's rows of one
        seed); and the trained ODE-VAEs, one per seed.
    """
    epochs = check_int("epochs", epochs, minimum=1)
    seeds = [check_int("seed", s, minimum=0) for s in seeds]
    train_cohort, heldout = split_last_visit(cohort)
    rows, models = [], []

    def record(method, seed, predictions, seconds):
        errors = prediction_errors(predictions, heldout)
        original = original_unit_errors(cohort, predictions, heldout)
        for j, name in enumerate(cohort.variables):
            rows.append((method, seed, name, errors["mse_per_variable"][j].item(),
                         original[j], seconds))  # fmt: skip
        rows.append((method, seed, "overall", errors["mse"], np.nan, seconds))

    for method, predict in (("LOCF", locf_predictions),
                            ("LMM", mixed_model_predictions),
                            (REFERENCE, _mean_predictions)):  # fmt: skip
        clock = time.perf_counter()
        predictions = predict(train_cohort, heldout)
        record(method, -1, predictions, time.perf_counter() - clock)
    for seed in seeds:
        clock = time.perf_counter()
        model = ODEVAE(cohort.p, cohort.q, seed=seed)
        train(model, train_cohort, epochs=epochs, seed=seed, progress=progress)
        seconds = time.perf_counter() - clock
        models.append(model)
        for method, start in zip(METHODS[2:], ("first", "last")):
            predictions = odevae_predictions(model, train_cohort, heldout, start)
            record(method, seed, predictions, seconds)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), models


def summarise(table: pd.DataFrame, value: str = "mse") -> pd.DataFrame:
    """Mean +- sd over seeds of one column of :func:`compare_methods`.

    Args:
        table: the long table of :func:`compare_methods`.
        value: ``"mse"``, ``"mae_original"`` or ``"seconds"``.

    Returns:
        Text cells ``"mean +- sd"``: one row per variable (in the cohort's
        order, ``overall`` last), one column per method.
    """
    check_choice("value", value, ("mse", "mae_original", "seconds"))
    if value == "mae_original":  # no overall error across different units
        table = table[table["variable"] != "overall"]
    groups = table.groupby(["variable", "method"], sort=False)[value]
    stats = groups.agg(["mean", "std"]).fillna({"std": 0.0})  # one value: sd 0
    text = stats.apply(lambda r: f"{r['mean']:.3g} +- {r['std']:.2g}", axis=1)
    order = [m for m in (*METHODS, REFERENCE) if m in set(table["method"])]
    return text.unstack("method")[order]


def plot_patients(cohort: Cohort, heldout: dict, predictions: dict, people,
                  variables=("bili", "albumin")):  # fmt: skip
    """A few patients' visits with each method's prediction of the held-out one.

    Args:
        cohort: the full cohort (its visits are drawn, in original units).
        heldout: the held-out visits of :func:`helpers.split_last_visit`.
        predictions: ``{method: (m, p) predictions on the cohort's scale}``.
        people: positions in ``heldout["ids"]`` of the patients to draw.
        variables: names of the variables to draw, one row of panels each.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    columns = [cohort.variables.index(name) for name in variables]
    size = (3.2 * len(people), 2.6 * len(columns))
    figure, axes = plt.subplots(len(columns), len(people), squeeze=False,
                                figsize=size)  # fmt: skip
    markers = dict(zip(predictions, "sDv^<>"))
    for col, k in enumerate(people):
        i = int(heldout["ids"][k])
        values = cohort.original_units(cohort.xs[i])
        for row, j in enumerate(columns):
            ax, seen = axes[row, col], cohort.masks[i][:, j]
            ax.plot(cohort.ts[i][seen][:-1], values[seen, j][:-1], "o-", color="0.4",
                    label="training visits")  # fmt: skip
            if heldout["mask"][k, j]:
                ax.plot(heldout["times"][k], values[-1, j], "*", color="k",
                        markersize=12, label="held-out visit")  # fmt: skip
            for method, predicted in predictions.items():
                value = cohort.original_units(predicted[k])[j]
                ax.plot(heldout["times"][k], value, markers[method],
                        alpha=0.8, label=method)  # fmt: skip
            ax.set_title(f"patient {cohort.columns.people[i]}: {variables[row]}")
            ax.set_xlabel("years since the first visit")
    axes[0, -1].legend(fontsize=7, loc="best")
    figure.tight_layout()
    return figure


@torch.no_grad()
def plot_latent_and_rates(model: ODEVAE, cohort: Cohort, outcomes: pd.DataFrame):
    """Left: each patient's encoded first visit, coloured by later death or
    transplant. Right: the learned rates against histologic stage.

    Args:
        model: a trained :class:`helpers.ODEVAE` with linear dynamics.
        cohort: the cohort.
        outcomes: the table of :func:`pbc_cohort`.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    latent = model.encode(cohort.first_visits())[0].cpu().numpy()
    rates = model.ode_params(cohort.baseline).cpu().numpy()
    event = outcomes["event"].to_numpy()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    legend = (("alive, no transplant", "tab:blue"),
              ("later death or transplant", "tab:red"))  # fmt: skip
    for flag, (label, colour) in zip((False, True), legend):
        chosen = event == flag
        left.scatter(latent[chosen, 0], latent[chosen, 1], s=12, c=colour,
                     alpha=0.7, label=label)  # fmt: skip
    left.set_xlabel("latent dimension 1 (first visit)")
    left.set_ylabel("latent dimension 2 (first visit)")
    left.legend(fontsize=8)
    stages = sorted(outcomes["stage"].unique())
    for k in range(rates.shape[1]):
        groups = [rates[outcomes["stage"].to_numpy() == s, k] for s in stages]
        positions = [s + (k - 0.5) * 0.3 for s in stages]
        right.boxplot(groups, positions=positions, widths=0.25,
                      patch_artist=True, boxprops={"facecolor": f"C{k}"},
                      medianprops={"color": "k"}, manage_ticks=False)  # fmt: skip
        right.plot([], [], "s", color=f"C{k}", label=f"learned rate a{k + 1}{k + 1}")
    right.set_xticks(stages)
    right.set_xlabel("histologic stage at entry")
    right.set_ylabel("learned rate (per year)")
    right.axhline(0.0, color="0.6", linewidth=0.8)
    right.legend(fontsize=8)
    figure.tight_layout()
    return figure
