"""Helpers for the differentiable-programming practicals.

The notebooks teach the ideas; this package holds the plumbing they import.
The practicals' core, one module per concern, in the order the practicals
use them:

* ``simulation``: the simulated registry cohort (``Cohort``), its CSV;
* ``batching``: many individuals' irregular visits as one padded batch;
* ``models``: the VAE and the ODE-VAE, the linear ODE;
* ``training``: ``train``, one flat Adam loop over batches and starts;
* ``evaluation``: held-out error, alignment of the latent space, AUCs;
* ``plotting``: the figures of Part II;
* ``widgets``: the exercises' explorer (imported on demand).

``helpers.bonus`` holds one module per bonus notebook, named like it
(``helpers.bonus.icu_missing_reports`` for ``bonus/ICU_missing_reports.ipynb``).
``helpers._utils`` holds the private utilities: the argument checks, the
thread and progress-bar habits.

One vocabulary throughout: ``n_steps`` or ``epochs`` (passes over the data),
``lr`` (learning rate), ``seed``, ``progress`` (show a bar; ``TQDM_DISABLE=1``
still hides it); ``summarise`` turns a fit or a comparison into a table;
``elbo`` is an estimate of the evidence lower bound (higher is better) and
``negative_elbo`` a loss, its negative (with the KL term weighted by
``kl_weight``, the beta of a beta-VAE, where a model has one). Values a person types are
checked once, in the public function a notebook calls, against a table of
rules declared beside it (``check_arguments``).
"""

# The release this package belongs to; tools/release.py sets it, together with
# WORKSHOP_REF in setup_colab.py and the newest CHANGELOG.md entry.
__version__ = "1.2.1"

from ._utils import data_path
from .batching import Batch, make_batch
from .evaluation import (
    Alignment,
    align_latent,
    auc,
    evaluate,
    fit_alignment,
    fit_mixed_model,
    locf_predictions,
    mixed_model_predictions,
    prediction_errors,
)
from .models import (
    ODEVAE,
    VAE,
    gaussian_log_likelihood,
    kl_to_standard_normal,
    linear_dynamics,
    linear_solution,
)
from .plotting import (
    COLORS,
    plot_group,
    plot_individual,
    plot_losses,
    plot_training_panels,
    plot_truth_and_data,
)
from .simulation import (
    Cohort,
    load_cohort,
    simulate_cohort,
    split_last_visit,
    true_states,
)
from .training import ORIGINAL_SETTINGS, train

__all__ = [
    "COLORS",
    "ODEVAE",
    "ORIGINAL_SETTINGS",
    "VAE",
    "Alignment",
    "Batch",
    "Cohort",
    "align_latent",
    "auc",
    "data_path",
    "evaluate",
    "fit_alignment",
    "fit_mixed_model",
    "gaussian_log_likelihood",
    "kl_to_standard_normal",
    "linear_dynamics",
    "linear_solution",
    "load_cohort",
    "locf_predictions",
    "make_batch",
    "mixed_model_predictions",
    "plot_group",
    "plot_individual",
    "plot_losses",
    "plot_training_panels",
    "plot_truth_and_data",
    "prediction_errors",
    "simulate_cohort",
    "split_last_visit",
    "train",
    "true_states",
]
