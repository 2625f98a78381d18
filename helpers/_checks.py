"""Argument checks that turn bad input into a clear ``ValueError``."""

import math
from collections.abc import Iterable

import torch


def check_int(name: str, value, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not a whole number >= minimum."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or (minimum is not None and value < minimum):
        allowed = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_float(
    name: str, value, minimum: float | None = None, strict: bool = False
) -> float:
    """Return ``value`` as a finite float, optionally bounded below."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
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
