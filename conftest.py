"""Repository-wide pytest set-up, loaded before any test or notebook runs.

The settings go into the environment so that the notebook kernels that nbval
starts inherit them too: figures render off-screen (no display on CI) and
tqdm progress bars, whose output varies from run to run, are switched off
(tqdm 4.66+ reads ``TQDM_*`` variables as defaults).
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")
