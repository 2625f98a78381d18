"""Helpers for the differentiable-programming practicals.

The notebooks teach the ideas; this package holds the plumbing they import:
simulation of the cohort, the VAE and ODE-VAE models, fast batched training,
evaluation and plotting. Submodules ``helpers.icu`` (bonus notebook) and
``helpers.widgets`` (exercise explorer) are imported on demand.
"""

from pathlib import Path

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def data_path(name: str) -> Path:
    """Path of a file shipped in the repository's ``data/`` folder.

    Works in a clone and in Colab, where ``helpers/`` and ``data/`` are copied
    side by side into the working directory.

    Args:
        name: file name inside ``data/``, e.g. ``"cohort.csv"``.

    Returns:
        The absolute path ``<repository>/data/<name>``.
    """
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise ValueError(
            f"name must be a file name inside data/ such as 'cohort.csv', got {name!r}"
        )
    return _DATA_DIR / name


from .batching import Batch, make_batch  # noqa: E402
from .evaluation import Alignment, align_latent, auc, evaluate, fit_alignment  # noqa: E402
from .models import (  # noqa: E402
    ODEVAE,
    VAE,
    gaussian_log_likelihood,
    kl_to_standard_normal,
    linear_dynamics,
    lotka_volterra_dynamics,
)
from .plotting import (  # noqa: E402
    COLORS,
    plot_group,
    plot_individual,
    plot_losses,
    plot_training_panels,
    plot_truth_and_data,
)
from .simulation import (  # noqa: E402
    Cohort,
    load_cohort,
    simulate_cohort,
    split_last_visit,
    true_states,
)
from .training import ORIGINAL_SETTINGS, train  # noqa: E402

__all__ = [
    "Alignment", "Batch", "COLORS", "Cohort", "ODEVAE", "ORIGINAL_SETTINGS", "VAE",
    "align_latent", "auc", "data_path", "evaluate", "fit_alignment",
    "gaussian_log_likelihood", "kl_to_standard_normal", "linear_dynamics",
    "load_cohort", "lotka_volterra_dynamics", "make_batch", "plot_group",
    "plot_individual", "plot_losses", "plot_training_panels", "plot_truth_and_data",
    "simulate_cohort", "split_last_visit", "train", "true_states",
]
