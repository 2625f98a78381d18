"""Helpers for the differentiable-programming practicals.

The notebooks teach the ideas; this package holds the plumbing they import:
simulation of the cohort, the VAE and ODE-VAE models, fast batched training,
evaluation and plotting. Submodules ``helpers.icu_data`` and
``helpers.icu_models`` (bonus notebook) and ``helpers.widgets`` (exercise
explorer) are imported on demand.
"""

# The release this package belongs to; tools/release.py sets it, together with
# WORKSHOP_REF in setup_colab.py and the newest CHANGELOG.md entry.
__version__ = "1.0.0"

from ._paths import data_path
from .batching import Batch, make_batch
from .evaluation import Alignment, align_latent, auc, evaluate, fit_alignment
from .models import (
    ODEVAE,
    VAE,
    gaussian_log_likelihood,
    kl_to_standard_normal,
    linear_dynamics,
    lotka_volterra_dynamics,
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
    "gaussian_log_likelihood",
    "kl_to_standard_normal",
    "linear_dynamics",
    "load_cohort",
    "lotka_volterra_dynamics",
    "make_batch",
    "plot_group",
    "plot_individual",
    "plot_losses",
    "plot_training_panels",
    "plot_truth_and_data",
    "simulate_cohort",
    "split_last_visit",
    "train",
    "true_states",
]
