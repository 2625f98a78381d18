"""Private utilities shared by every module: argument checks, the thread and
progress-bar habits, and where the data files live.

Checks turn a value a person typed into a clear ``ValueError``; they are
called once, in the public function a notebook calls, never again inside.
A door with several arguments declares them in a table of rules (as
scikit-learn declares parameter constraints), ``{argument: rule}`` with the
rules ``integer``, ``number``, ``one_of`` and ``instance_of`` below, and
checks the table with one call to :func:`check_arguments`.
"""

import contextlib
import functools
import math
import numbers
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm


def check_int(name: str, value, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not a whole number >= minimum.

    Python and NumPy integers are accepted; ``True``/``False``, floats and
    strings are not.
    """
    is_int = isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )
    if not is_int or (minimum is not None and value < minimum):
        allowed = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_float(
    name: str, value, minimum: float | None = None, strict: bool = False
) -> float:
    """Return ``value`` as a finite float, optionally bounded below.

    Python and NumPy numbers and one-element tensors are accepted; strings
    and ``True``/``False`` are not (``float("0.1")`` would hide a typo).
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    too_small = minimum is not None and (
        number <= minimum if strict else number < minimum
    )
    if not math.isfinite(number) or too_small:
        bound = "" if minimum is None else (" > " if strict else " >= ") + f"{minimum}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return number


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_tensor(name: str, value, shape: tuple) -> torch.Tensor:
    """Return ``value`` as a float tensor of the given shape, free of NaN.

    ``None`` in ``shape`` accepts any size in that dimension.
    """
    tensor = torch.as_tensor(value)
    if not tensor.is_floating_point():
        tensor = tensor.float()
    matches = tensor.dim() == len(shape) and all(
        want is None or have == want for have, want in zip(tensor.shape, shape)
    )
    if not matches:
        wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def check_instance(name: str, value, kind, description: str):
    """Return ``value`` if it is an instance of ``kind`` (a class or a tuple of
    classes) or, with ``kind=callable``, if it is a function; else raise a
    ``ValueError`` saying it must be ``description``."""
    fits = callable(value) if kind is callable else isinstance(value, kind)
    if not fits:
        got = repr(value) if kind is callable else type(value).__name__
        raise ValueError(f"{name} must be {description}, got {got}")
    return value


def integer(minimum: int | None = None):
    """Rule: a whole number >= ``minimum`` (see :func:`check_int`)."""
    return functools.partial(check_int, minimum=minimum)


def number(minimum: float | None = None, strict: bool = False):
    """Rule: a finite number, ``> minimum`` if strict, else ``>=`` (see
    :func:`check_float`)."""
    return functools.partial(check_float, minimum=minimum, strict=strict)


def one_of(choices: Iterable):
    """Rule: one of ``choices`` (see :func:`check_choice`)."""
    return functools.partial(check_choice, choices=tuple(choices))


def instance_of(kind, description: str):
    """Rule: an instance of ``kind``, or a function with ``kind=callable``, as
    ``description`` says in words (see :func:`check_instance`)."""
    return functools.partial(check_instance, kind=kind, description=description)


def check_arguments(rules: dict, values: dict) -> dict:
    """Check ``values[name]`` against the rule of every ``name`` in ``rules``.

    A rule is a function ``rule(name, value)`` that returns the value
    (converted, e.g. to ``int``) or raises a ``ValueError`` naming the
    argument, the value and what is allowed. Arguments are checked in the
    order of ``rules``; names in ``values`` without a rule are ignored (so a
    door may pass ``locals()``).

    Returns:
        ``{name: checked value}`` for every name in ``rules``.
    """
    return {name: rule(name, values[name]) for name, rule in rules.items()}


@contextlib.contextmanager
def one_thread(device=None):
    """Run torch single-threaded on the CPU, then restore the thread count.

    The models here are tiny: a second thread only adds overhead, and on a
    busy two-core machine (Colab's, or a shared laptop) waiting for it made
    each step 3-20 times slower. On a GPU ``device`` nothing changes.
    """
    threads = torch.get_num_threads()
    if device is None or torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def progress_bar(iterable, progress: bool = True, **options):
    """Wrap ``iterable`` in a tqdm bar, or return it as it is.

    ``progress=False`` shows no bar. Otherwise tqdm decides, so that the
    environment variable ``TQDM_DISABLE=1`` (set by the tests) still wins.
    """
    if not progress:
        return iterable
    return tqdm(iterable, **options)


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
