"""Modules of the bonus notebooks, one per notebook, named like its source."""
