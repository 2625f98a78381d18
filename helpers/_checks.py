"""Argument checks that turn bad input into a clear ``ValueError``."""

import math
import numbers
from collections.abc import Iterable

import numpy as np
import torch


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
