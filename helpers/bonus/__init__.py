"""One module per bonus notebook, each named like its notebook's source.

``helpers.bonus.icu_missing_reports`` for ``bonus/ICU_missing_reports.ipynb``
(``notebooks/icu_missing_reports.py``), and so on. The practicals never
import from here; a bonus notebook imports its own module and, where it
needs them, the practicals' core in ``helpers``.
"""
