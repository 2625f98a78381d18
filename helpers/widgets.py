"""Exercise explorer: one experiment per click (Part II, "Exercises").

``run_experiment`` runs one whole experiment - simulate a cohort, hold out
each individual's last visit, train an ODE-VAE, score it - and returns the
numbers and a figure. ``explorer`` wraps it in an ipywidgets panel with
sliders, a Run button, the figure and a table that puts each run next to the
one before, so the effect of a change is visible at a glance.

The panel uses only widgets and calls that ipywidgets 7.7 (Colab) and 8.x
share.
"""

import dataclasses
import html
import io
import math
import time

import ipywidgets as widgets
import pandas as pd
import torch
from matplotlib.figure import Figure

from ._utils import check_arguments, number
from .evaluation import evaluate, growth_rates, learned_ode_params, new_individuals_auc
from .models import ODEVAE
from .plotting import plot_group
from .simulation import (
    DEFAULT_ODE_PARAMS,
    DEFAULT_U0,
    SIMULATION_RULES,
    Cohort,
    _draw_cohort,
    split_last_visit,
)
from .training import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BETAS,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_STARTS,
    TRAINING_RULES,
    _train,
)

SIMULATION_SETTINGS = ("n", "maxntps", "sigma_ind", "baseline", "ode_params")
TRAINING_SETTINGS = ("epochs", "lr", "batch_size")
SCORES = ("heldout_mse", "locf_mse", "group_auc", "group_auc_new", "latent_r2")
METRICS = (*SCORES, "final_loss", "seconds")
ENTRY_NAMES = {2: ("a11", "a22"), 4: ("a11", "a12", "a21", "a22")}
# what simulate_cohort uses for the settings the explorer does not show
FIXED_SIMULATION = {"p": 10, "q": 50, "q_info": 10, "t_start": 1.5, "t_end": 10.0,
                    "sigma_var": 0.1, "u0": DEFAULT_U0}
# What each setting may be: the rules of simulate_cohort and train
SETTINGS_RULES = {
    **{name: SIMULATION_RULES[name] for name in SIMULATION_SETTINGS},
    **{name: TRAINING_RULES[name] for name in TRAINING_SETTINGS},
    "seed": SIMULATION_RULES["seed"],
    "baseline_noise": number(0),
    "model_seed": TRAINING_RULES["seed"],
}


@dataclasses.dataclass(frozen=True)
class ExperimentSettings:
    """Everything one exercise run depends on, checked once when built.

    The defaults are those of :func:`helpers.simulate_cohort` and
    :func:`helpers.train` (a test says so), plus no extra baseline noise and
    two learned ODE parameters.

    Attributes:
        n: individuals; maxntps: most follow-up visits; sigma_ind: noise sd
            of the time-dependent variables; baseline_noise: sd of extra
            noise on the baseline variables (:func:`add_baseline_noise`);
            baseline: "trueparams" or "groupsonly"; ode_params: true
            ``(a11, a12, a21, a22)`` of group 1 and of group 2.
        n_ode_params: 2 (learn the diagonal) or 4 (the whole matrix).
        epochs, lr, batch_size: as in :func:`helpers.train`.
        seed: seed of the data; model_seed: seed of the initial weights and
            of the training noise.
    """

    n: int = 100
    maxntps: int = 10
    sigma_ind: float = 0.5
    baseline_noise: float = 0.0
    baseline: str = "trueparams"
    ode_params: tuple = DEFAULT_ODE_PARAMS
    n_ode_params: int = 2
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 12
    model_seed: int = 0

    def __post_init__(self):
        checked = check_arguments(SETTINGS_RULES, vars(self))
        object.__setattr__(self, "ode_params", checked["ode_params"])
        if self.n_ode_params not in (2, 4):
            raise ValueError(
                "n_ode_params must be 2 (learn a11 and a22) or 4 (learn the whole "
                f"matrix), got {self.n_ode_params!r}"
            )


def default_settings() -> dict:
    """The settings ``run_experiment`` uses when none are given, as a dict
    (the fields of :class:`ExperimentSettings`)."""
    return dataclasses.asdict(ExperimentSettings())


def resolve_settings(settings: dict) -> dict:
    """Fill in defaults and check every setting.

    Args:
        settings: some of the names of :func:`default_settings`.

    Returns:
        A complete settings dict.

    Raises:
        ValueError: for an unknown name or a bad value of any setting.
    """
    allowed = [f.name for f in dataclasses.fields(ExperimentSettings)]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)}; allowed settings are "
            f"{', '.join(allowed)}"
        )
    return dataclasses.asdict(ExperimentSettings(**settings))


def add_baseline_noise(cohort: Cohort, sd: float, seed: int) -> Cohort:
    """Copy of ``cohort`` with extra ``N(0, sd)`` noise on every baseline variable.

    The simulator fixes the baseline standard deviation by strategy (0.1 for
    "trueparams", 1 for "groupsonly"); this adds independent noise on top, so
    the total standard deviation is ``sqrt(strategy_sd**2 + sd**2)``.

    Args:
        cohort: the cohort.
        sd: standard deviation of the added noise (0 returns ``cohort``).
        seed: seed of the noise (a torch generator of its own).

    Returns:
        The cohort with noisier ``baseline`` ``(n, q)``.
    """
    if sd == 0:
        return cohort
    generator = torch.Generator().manual_seed(seed)
    noise = sd * torch.randn(cohort.baseline.shape, generator=generator)
    return dataclasses.replace(cohort, baseline=cohort.baseline + noise,
                               settings=dict(cohort.settings, baseline_noise=sd))


def plot_fits(model: ODEVAE, cohort: Cohort, alignment=None, title: str = ""):
    """Fitted latent trajectories of both groups side by side.

    Uses :func:`helpers.plot_group` on a figure that pyplot does not track,
    so repeated runs never pile up open figures.

    Args:
        model: a trained :class:`helpers.ODEVAE`.
        cohort: the cohort to draw.
        alignment: latent-to-truth map (computed when omitted).
        title: figure title.

    Returns:
        A :class:`matplotlib.figure.Figure` with two axes.
    """
    figure = Figure(figsize=(10, 3.8))
    axes = figure.subplots(1, 2, sharey=True)
    for group, ax in zip((1, 2), axes):
        plot_group(model, cohort, group, ax=ax, alignment=alignment)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def simulate_experiment_cohort(settings: dict, seed: int) -> Cohort:
    """The cohort of an exercise run: :func:`helpers.simulate_cohort` with the
    run's (checked) settings and data ``seed``, plus any extra baseline noise."""
    data = {name: settings[name] for name in SIMULATION_SETTINGS}
    data |= {name: value for name, value in FIXED_SIMULATION.items() if name != "u0"}
    cohort = _draw_cohort(data, seed, settings["ode_params"], DEFAULT_U0)
    return add_baseline_noise(cohort, settings["baseline_noise"], seed)


def run_experiment(**settings) -> dict:
    """Simulate, train and evaluate one ODE-VAE (notebook section "Exercises").

    Args:
        **settings: any of the names below; the rest take the defaults of
            :func:`default_settings`.
            ``n``: individuals; ``maxntps``: most follow-up visits;
            ``sigma_ind``: noise sd of the time-dependent variables;
            ``baseline_noise``: sd of extra noise added to the baseline
            variables (see :func:`add_baseline_noise`); ``baseline``:
            "trueparams" or "groupsonly"; ``ode_params``: true
            ``(a11, a12, a21, a22)`` of group 1 and of group 2;
            ``n_ode_params``: 2 (learn the diagonal) or 4 (the whole matrix);
            ``epochs``, ``lr``, ``batch_size``: as in :func:`helpers.train`;
            ``seed``: seed of the data; ``model_seed``: seed of the initial
            weights and of the training noise.

    Returns:
        The dict of :func:`helpers.evaluate` (``heldout_mse``, ``locf_mse``,
        ``group_auc``, ``latent_r2``, ...) plus ``group_auc_new`` (see
        :func:`new_individuals_auc`; the fresh cohort uses data seed
        ``seed + 1``), ``learned_ode_params`` (see
        :func:`learned_ode_params`), ``final_loss`` (training loss per
        individual in the last epoch), ``seconds`` (training time),
        ``history`` (the loss per epoch), ``settings`` (all settings used)
        and ``figure`` (fitted trajectories per group, two axes).

    Raises:
        ValueError: for an unknown setting name or a bad value.
        FloatingPointError: when training diverges.
    """
    settings = resolve_settings(settings)
    train_cohort, heldout = split_last_visit(
        simulate_experiment_cohort(settings, settings["seed"]))
    if len(heldout["ids"]) == 0:
        raise ValueError(
            f"maxntps={settings['maxntps']} leaves nobody with two follow-up "
            "visits, so no last visit can be held out; use maxntps >= 2"
        )
    model = ODEVAE(train_cohort.p, train_cohort.q,
                   n_ode_params=settings["n_ode_params"], seed=settings["model_seed"])
    start = time.perf_counter()
    history = _train(model, train_cohort, settings["epochs"], settings["lr"],
                     settings["batch_size"], DEFAULT_STARTS, settings["model_seed"],
                     shuffle=True, schedule="cosine", betas=DEFAULT_BETAS,
                     callback=None, every=5, progress=False)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, train_cohort, heldout)
    alignment = metrics.pop("alignment")
    fresh = simulate_experiment_cohort(settings, settings["seed"] + 1)
    metrics["group_auc_new"] = new_individuals_auc(model, train_cohort, fresh)
    if not all(math.isfinite(metrics[name]) for name in SCORES):
        raise FloatingPointError(
            f"training ended with non-finite scores {metrics}; lower the learning "
            f"rate lr (now {settings['lr']})"
        )
    title = (f"held-out MSE {metrics['heldout_mse']:.3f} (LOCF "
             f"{metrics['locf_mse']:.3f}), group AUC {metrics['group_auc']:.2f}, "
             f"latent R² {metrics['latent_r2']:.2f}")
    return {
        **metrics,
        "learned_ode_params": learned_ode_params(model, train_cohort, alignment),
        "final_loss": float(history["loss"].iloc[-1]),
        "seconds": seconds,
        "history": history,
        "settings": settings,
        "figure": plot_fits(model, train_cohort, alignment, title),
    }


def metrics_frame(results: dict) -> pd.DataFrame:
    """Table of the scores of several runs, one column per run.

    Args:
        results: ``{label: result of run_experiment}``.

    Returns:
        A float DataFrame: rows ``heldout_mse``, ``locf_mse``, ``group_auc``,
        ``group_auc_new``, ``latent_r2``, ``final_loss``, ``seconds``, the
        learned ODE parameters per group (``g1 a11`` ...; NaN where a run did
        not learn that entry) and their :func:`growth_rates` (``g1 rate 1``,
        ``g1 rate 2``, ...).
    """
    columns = {}
    for label, result in results.items():
        column = {name: float(result[name]) for name in METRICS}
        for group, values in result["learned_ode_params"].items():
            names = ENTRY_NAMES[len(values)]
            column.update({f"g{group} {n}": float(v) for n, v in zip(names, values)})
            rates = growth_rates(values)
            column.update({f"g{group} rate {k + 1}": r for k, r in enumerate(rates)})
        columns[label] = column
    rows = list(METRICS) + [f"g{g} {n}" for g in (1, 2)
                            for n in ENTRY_NAMES[4] + ("rate 1", "rate 2")]
    return pd.DataFrame(columns, index=rows, dtype="float64").dropna(how="all")


def changed_settings(before: dict, after: dict) -> dict:
    """``{name: (old, new)}`` for each setting that differs between two runs."""
    return {name: (before[name], after[name]) for name in after
            if before.get(name) != after[name]}


def _slider(kind, value, low, high, step, description, **extra):
    low, high = min(low, value), max(high, value)  # never clip a starting value
    return kind(value=value, min=low, max=high, step=step, description=description,
                continuous_update=False, style={"description_width": "initial"},
                **extra)


def _dropdown(options, value, description):
    if value not in [v for _, v in options]:
        options = sorted(options + [(str(value), value)], key=lambda o: o[1])
    return widgets.Dropdown(options=options, value=value, description=description,
                            style={"description_width": "initial"})


def _make_controls(settings: dict) -> dict:
    """One widget per setting (the ODE parameters: one slider per diagonal entry)."""
    matrices = settings["ode_params"]
    float_slider = widgets.FloatSlider
    controls = {
        "n": _slider(widgets.IntSlider, settings["n"], 10, 500, 10, "individuals n"),
        "maxntps": _slider(widgets.IntSlider, settings["maxntps"], 1, 20, 1,
                           "max. follow-ups"),
        "sigma_ind": _slider(float_slider, settings["sigma_ind"], 0.0, 2.0, 0.05,
                             "noise sigma_ind"),
        "baseline_noise": _slider(float_slider, settings["baseline_noise"], 0.0, 2.0,
                                  0.05, "extra baseline noise"),
        "baseline": _dropdown([("trueparams", "trueparams"),
                               ("groupsonly", "groupsonly")],
                              settings["baseline"], "baseline strategy"),
    }
    for group in (1, 2):
        for name, index in (("a11", 0), ("a22", 3)):
            controls[f"g{group}_{name}"] = _slider(
                float_slider, matrices[group - 1][index], -0.5, 0.5, 0.05,
                f"group {group} true {name}", readout_format=".2f")
    controls.update(
        n_ode_params=_dropdown([("2 (a11, a22)", 2), ("4 (full matrix)", 4)],
                               settings["n_ode_params"], "learned ODE params"),
        epochs=_slider(widgets.IntSlider, settings["epochs"], 10, 500, 10, "epochs"),
        lr=_dropdown([(f"{v:g}", v) for v in (1e-3, 5e-3, 0.01, 0.02, 0.05, 0.1,
                                               0.2, 0.5)],
                     settings["lr"], "learning rate"),
        batch_size=_dropdown([(str(v), v) for v in (5, 10, 25, 50, 100)],
                             settings["batch_size"], "batch size"),
        seed=_slider(widgets.IntSlider, settings["seed"], 0, 100, 1, "data seed"),
        model_seed=_slider(widgets.IntSlider, settings["model_seed"], 0, 100, 1,
                           "model seed"),
    )
    return controls


DATA_CONTROLS = ("n", "maxntps", "sigma_ind", "baseline_noise", "baseline",
                 "g1_a11", "g1_a22", "g2_a11", "g2_a22", "seed")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class Explorer(widgets.VBox):
    """The exercise panel returned by :func:`explorer`.

    The figure is a PNG in an ``Image`` widget and the table is an ``HTML``
    widget: both render in every front end that renders widgets (JupyterLab
    with ipywidgets 8, the classic Notebook and Colab with ipywidgets 7.7),
    whereas an ``Output`` widget fails to load in Notebook 6.5 with 7.7.1.

    Attributes:
        controls: ``{name: widget}``, one per setting (ODE parameters as
            ``g1_a11``, ``g1_a22``, ``g2_a11``, ``g2_a22``).
        run_button: starts :meth:`run`; disabled while a run trains.
        status: one line saying what happens now or happened last (with a
            moving progress bar while a run trains).
        metrics_html: the scores of the last run next to the run before.
        figure: the figure of the last run, a PNG (hidden until the first run).
        results: every successful run's result, oldest first.
    """

    def __init__(self, **settings):
        self._base = resolve_settings(settings)
        self.controls = _make_controls(self._base)
        self.run_button = widgets.Button(description="Run", button_style="primary",
                                         tooltip="simulate, train and evaluate")
        self.status = widgets.HTML(value="Choose settings and press Run.")
        self.metrics_html = widgets.HTML(value="")
        self.figure = widgets.Image(format="png", layout=widgets.Layout(
            display="none", max_width="100%"))
        self.results = []
        self._busy = False
        self.run_button.on_click(self.run)
        data = [self.controls[name] for name in DATA_CONTROLS]
        model = [w for name, w in self.controls.items() if name not in DATA_CONTROLS]
        columns = widgets.HBox([widgets.VBox([widgets.Label("Data")] + data),
                                widgets.VBox([widgets.Label("Model and training")]
                                             + model)])
        action = widgets.HBox([self.run_button, self.status])
        super().__init__(children=[columns, action, self.metrics_html, self.figure])

    def current_settings(self) -> dict:
        """The settings the controls show, ready for :func:`run_experiment`."""
        values = {name: w.value for name, w in self.controls.items()}
        matrices = [list(row) for row in self._base["ode_params"]]
        for group in (1, 2):
            matrices[group - 1][0] = values.pop(f"g{group}_a11")
            matrices[group - 1][3] = values.pop(f"g{group}_a22")
        return dict(values, ode_params=tuple(tuple(row) for row in matrices))

    def run(self, _button=None):
        """Run one experiment with the current settings and show the outcome.

        While it trains, the Run button is disabled and the status line shows
        a moving progress bar; a click that arrives meanwhile starts nothing.
        Errors (bad settings, a diverging run) become a message in the panel.

        Returns:
            The result of :func:`run_experiment`, or None after an error or
            when a run is already under way.
        """
        if self._busy:
            return None
        self._busy = True
        self.run_button.disabled = True
        settings = self.current_settings()
        # <progress> without a value is the browser's own "busy" bar: it moves
        # although the kernel is occupied with training and sends no updates
        self.status.value = (f"<progress></progress> Running: {settings['epochs']} "
                             f"epochs on {settings['n']} individuals ...")
        result, message = None, None
        try:
            result = run_experiment(**settings)
        except (ValueError, FloatingPointError) as error:
            message = str(error)
        except Exception as error:  # noqa: BLE001 - a widget callback must not raise
            message = f"unexpected {type(error).__name__}: {error}"
        finally:
            if message is not None:
                self._fail(message)
            elif result is not None:
                self._succeed(result)
            self._busy = False
            self.run_button.disabled = False
        return result

    def _fail(self, message: str) -> None:
        """Show the message; hide the last figure and table, which are stale."""
        self.status.value = ("<b style='color:#b00020'>Could not run:</b> "
                             + html.escape(message))
        self.metrics_html.value = ""
        self.figure.layout.display = "none"

    def _succeed(self, result: dict) -> None:
        previous = self.results[-1] if self.results else None
        self.results.append(result)
        runs = {"this run": result}
        if previous is not None:
            runs["previous run"] = previous
        table = metrics_frame(runs).to_html(float_format="{:.3f}".format, na_rep="-")
        changes = ""
        if previous is not None:
            diff = changed_settings(previous["settings"], result["settings"])
            listed = ", ".join(f"{name} {old} -> {new}"
                               for name, (old, new) in diff.items())
            listed = html.escape(listed or "nothing (same settings)")
            changes = f"<p>Changed: {listed}</p>"
        self.metrics_html.value = table + changes
        self.figure.value = _png(result["figure"])
        self.figure.layout.display = None
        self.status.value = (
            f"Done (run {len(self.results)}): trained in {result['seconds']:.1f} s; "
            f"held-out MSE {result['heldout_mse']:.3f} vs {result['locf_mse']:.3f} "
            "for carrying the last visit forward.")


def explorer(**settings) -> Explorer:
    """Build the exercise panel (notebook section "Exercises").

    Args:
        **settings: starting values of the controls (names as in
            :func:`default_settings`); the rest take the defaults.

    Returns:
        An :class:`Explorer` (an ``ipywidgets.VBox``): display it, move the
        sliders, press Run.
    """
    return Explorer(**settings)
