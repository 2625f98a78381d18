"""Where the shipped data files live."""

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
