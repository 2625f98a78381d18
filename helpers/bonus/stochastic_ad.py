"""Stochastic triples: derivatives of programs that draw discrete random numbers.

Automatic differentiation sees a draw such as ``torch.bernoulli(p)`` as a
constant, so its derivative with respect to ``p`` is 0, although
``d/dp E[X] = 1``. Stochastic triples (Arya, Schauer, Schaefer and Rackauckas,
NeurIPS 2022, arXiv:2210.08572; the Julia package StochasticAD.jl) repair
this in forward mode. Beside its value, every number of the program carries

* ``delta``: its ordinary (almost-sure) derivative with respect to ``p``, and
* one *alternative*: the value it would take if one earlier draw had come
  out differently, as a ``jump`` (alternative minus value) with a ``weight``:
  the rate, per unit change of ``p``, at which that other outcome happens.

The estimate ``delta + weight * jump`` of the program's output is unbiased
for ``d/dp E[output]``. Everything is vectorised: one *lane* per sample, so
``derivative_estimate`` runs thousands of samples as tensor operations.

Introduced in ``bonus/Stochastic_AD.ipynb``, section 4, where the triple and
the Bernoulli draw are written out in full and checked against this module.

One choice differs from StochasticAD.jl: a lane holds one live alternative
for the whole run. When a draw creates a new alternative in a lane that has
one, the two are pruned at once (keep one with probability proportional to
its weight, give the survivor the sum of the weights). The Julia package
prunes later, when two numbers that carry different alternatives meet; both
are unbiased, and for programs whose draws all reach the output (the random
walk and the epidemic of the notebook) they coincide.
"""

import math
import numbers
from collections.abc import Sequence

import torch

from .._utils import check_arguments, instance_of, integer, number, one_of, one_thread

DTYPE = torch.float64

BRANCH_ADVICE = (
    "a StochasticTriple cannot be used in `if`, `while`, `and`/`or`, bool() "
    "or a comparison: stochastic triples follow one program path per sample "
    "and cannot see where a branch would send the alternative. Write the "
    "choice as arithmetic instead, e.g. `y = flag * a + (1 - flag) * b` for a "
    "0/1 draw `flag`, or run a fixed number of steps (a finished epidemic "
    "draws zeros). Read `.value` only to look at the numbers, not to decide."
)


# --- the lanes of one run ---------------------------------------------------


class Lanes:
    """What all triples of one run share: the random numbers and the alternatives.

    Attributes:
        generator: the ``torch.Generator`` every draw of the run uses.
        tag: ``(n_lanes,)`` int64, which draw made each lane's live alternative
            (0: the lane has none yet). Replaced, never changed in place.
        weight: ``(n_lanes,)`` float64 >= 0, the live alternative's weight.
        draws: how many draws the run has made so far.
    """

    def __init__(self, n_lanes: int, seed: int):
        self.generator = torch.Generator().manual_seed(seed)
        self.tag = torch.zeros(n_lanes, dtype=torch.int64)
        self.weight = torch.zeros(n_lanes, dtype=DTYPE)
        self.draws = 0

    def uniform(self) -> torch.Tensor:
        """One uniform number in [0, 1) per lane, ``(n_lanes,)``."""
        return torch.rand(len(self.tag), generator=self.generator, dtype=DTYPE)


# --- the triple ---------------------------------------------------------------


# The derivative part of each arithmetic operation, ``tangent(a, b, da, db,
# out)`` with ``out = a op b``; the value and the alternative go through the
# operation itself (see ``_binary``).
def _add_tangent(a, b, da, db, out):
    return da + db


def _sub_tangent(a, b, da, db, out):
    return da - db


def _mul_tangent(a, b, da, db, out):
    return da * b + a * db


def _div_tangent(a, b, da, db, out):
    return (da - out * db) / b


def _pow_tangent(a, b, da, db, out):
    # d(a^b) = b a^(b-1) da + a^b log(a) db; a zero delta contributes nothing
    # (also where a = 0, which would give 0 * inf).
    from_base = torch.where(da == 0, 0.0, b * a ** (b - 1) * da)
    from_exponent = torch.where(db == 0, 0.0, out * torch.log(a) * db)
    return from_base + from_exponent


def _operators(operation, tangent):
    """The two methods of a binary operator, ``x op y`` and ``y op x`` (as
    ``__add__`` and ``__radd__``), for a triple ``x`` and anything ``y``."""

    def forward(self, other):
        return _binary(self, other, operation, tangent)

    def reflected(self, other):
        return _binary(other, self, operation, tangent)

    return forward, reflected


class StochasticTriple:
    """A value per lane, its derivative, and one weighted alternative.

    Attributes:
        value: ``(n_lanes,)`` (or ``(n_lanes, k)``) float64, the value per lane.
        delta: same shape, the almost-sure derivative of ``value``.
        jump: same shape, alternative minus value (0 where there is none).
        tag: ``(n_lanes,)`` int64, the draw that ``jump`` belongs to. The jump
            counts only while that draw's alternative is its lane's live one.
        lanes: the ``Lanes`` of the run.
    """

    def __init__(self, value, delta, jump, tag, lanes):
        self.value, self.delta, self.jump = value, delta, jump
        self.tag, self.lanes = tag, lanes

    # What the lanes see: a jump from a pruned alternative no longer counts.
    def _live(self) -> torch.Tensor:
        live = self.tag == self.lanes.tag
        return live.reshape(live.shape + (1,) * (self.value.dim() - 1))

    @property
    def alternative(self) -> torch.Tensor:
        """The value in the live alternative of each lane (shape of ``value``)."""
        if self.tag is self.lanes.tag:  # made since the last change: all live
            return self.value + self.jump
        return self.value + torch.where(self._live(), self.jump, 0.0)

    @property
    def weight(self) -> torch.Tensor:
        """``(n_lanes,)`` weight of this triple's alternative (0 where none)."""
        return torch.where(self.tag == self.lanes.tag, self.lanes.weight, 0.0)

    def estimate(self) -> torch.Tensor:
        """Per-lane derivative estimate ``delta + weight * jump``, ``(n_lanes,)``."""
        weight = self.lanes.weight.reshape((-1,) + (1,) * (self.value.dim() - 1))
        return self.delta + weight * (self.alternative - self.value)

    def __repr__(self):
        def first(tensor):
            return ", ".join(f"{x:.4g}" for x in tensor.flatten()[:4].tolist())

        return (f"StochasticTriple({len(self.tag)} lanes; value [{first(self.value)}"
                f", ...], delta [{first(self.delta)}, ...], alternative "
                f"[{first(self.alternative)}, ...], weight [{first(self.weight)}"
                ", ...])")

    # Arithmetic: the primal and the alternative each go through the operation.
    __add__, __radd__ = _operators(torch.add, _add_tangent)
    __sub__, __rsub__ = _operators(torch.sub, _sub_tangent)
    __mul__, __rmul__ = _operators(torch.mul, _mul_tangent)
    __truediv__, __rtruediv__ = _operators(torch.div, _div_tangent)
    __pow__, __rpow__ = _operators(torch.pow, _pow_tangent)

    def __neg__(self):
        return self * -1.0

    def __pos__(self):
        return self

    # Branching would need the alternative's path too: refuse it clearly.
    def __bool__(self):
        raise TypeError(BRANCH_ADVICE)

    def _no_comparison(self, other):
        raise TypeError(BRANCH_ADVICE)

    __lt__ = __le__ = __gt__ = __ge__ = _no_comparison
    __eq__ = __ne__ = _no_comparison
    __hash__ = object.__hash__

    def __float__(self):
        raise TypeError("float() of a StochasticTriple would drop its derivative; "
                        "use `.value` to look at the numbers. " + BRANCH_ADVICE)

    __int__ = __index__ = __float__

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """Let ``torch.exp`` and ``torch.log`` accept triples."""
        if func is torch.exp and not kwargs:
            return exp(*args)
        if func is torch.log and not kwargs:
            return log(*args)
        if args and isinstance(args[0], torch.Tensor):
            return NotImplemented  # tensor + triple: Python then tries __radd__
        name = getattr(func, "__name__", str(func))
        raise TypeError(
            f"torch.{name} does not accept a StochasticTriple. Use + - * / ** "
            "and this module's exp and log (also as torch.exp, torch.log), "
            "or write the function from them.")


def _parts(x):
    """``(value, delta, alternative)`` of a triple or of a plain number/tensor."""
    if isinstance(x, StochasticTriple):
        return x.value, x.delta, x.alternative
    value = torch.as_tensor(x, dtype=DTYPE)
    return value, torch.zeros_like(value), value


def _lanes_of(*args):
    """The ``Lanes`` of the first triple among ``args``, else None."""
    for arg in args:
        if isinstance(arg, StochasticTriple):
            return arg.lanes
    return None


def _result(value, delta, alternative, lanes):
    """A triple made now: its jump belongs to the lanes' live alternatives."""
    # alternative == value also where both are infinite (no jump, not NaN)
    jump = torch.where(alternative == value, 0.0, alternative - value)
    return StochasticTriple(value, delta, jump, lanes.tag, lanes)


def _binary(a, b, operation, tangent):
    """Apply ``operation`` to primal and alternative, ``tangent`` to the deltas."""
    lanes = _lanes_of(a, b)
    a_value, a_delta, a_alternative = _parts(a)
    b_value, b_delta, b_alternative = _parts(b)
    value = operation(a_value, b_value)
    delta = tangent(a_value, b_value, a_delta, b_delta, value)
    return _result(value, delta, operation(a_alternative, b_alternative), lanes)


def exp(x):
    """``exp`` of a triple (or of a plain number/tensor)."""
    if not isinstance(x, StochasticTriple):
        return torch.exp(torch.as_tensor(x, dtype=DTYPE))
    value = torch.exp(x.value)
    return _result(value, value * x.delta, torch.exp(x.alternative), x.lanes)


def log(x):
    """Natural ``log`` of a triple (or of a plain number/tensor)."""
    if not isinstance(x, StochasticTriple):
        return torch.log(torch.as_tensor(x, dtype=DTYPE))
    value = torch.log(x.value)
    return _result(value, x.delta / x.value, torch.log(x.alternative), x.lanes)


# --- draws --------------------------------------------------------------------
# Each draw turns one uniform u per lane into its outcome by the inverse CDF,
# in the primal and (same u: coupling) in the live alternative. Then it adds
# its own alternative: the outcome it would have if the parameter moved by its
# delta, with the rate of that change as weight (right-hand rule for delta > 0,
# mirrored rule for delta < 0), and prunes it against the lane's live one.


def _check_range(draw, name, value, alternative, low, high=math.inf, *,
                 above_low=False, whole=False):  # fmt: skip
    """Raise if a parameter (primal or alternative) is outside [low, high]
    (``(low, high]`` with ``above_low``) or, with ``whole``, not whole."""
    for values, where in ((value, ""), (alternative, " in an alternative path")):
        inside = (values > low if above_low else values >= low) & (values <= high)
        bad = ~inside | (whole & (values != torch.round(values)))  # and NaN
        if bad.any():
            first = values[bad].flatten()[0].item()
            allowed = ("whole numbers " if whole else "") + (
                f"in {'(' if above_low else '['}{low}, {high}]"
                if high < math.inf else f">= {low}")  # fmt: skip
            raise ValueError(
                f"{draw}: {name} must be {allowed}, got {first!r}{where} "
                f"({int(bad.sum())} of {values.numel()} values are outside)")


def _new_alternative(lanes, outcome, outcome_alternative, weight, jump):
    """Return the draw's triple after pruning its new alternative.

    Args:
        lanes: the run's ``Lanes``.
        outcome: ``(n_lanes,)`` the primal draw.
        outcome_alternative: ``(n_lanes,)`` the draw in the live alternative.
        weight: ``(n_lanes,)`` >= 0, the new alternative's weight (0: none).
        jump: ``(n_lanes,)`` its change of the outcome.
    """
    lanes.draws += 1
    total = lanes.weight + weight
    # keep the new alternative with probability weight / total
    take_new = lanes.uniform() * total < weight
    lanes.tag = torch.where(take_new, lanes.draws, lanes.tag)
    lanes.weight = total  # = survivor's weight / its selection probability
    jump = torch.where(take_new, jump, outcome_alternative - outcome)
    return StochasticTriple(outcome, torch.zeros_like(outcome), jump, lanes.tag,
                            lanes)


def bernoulli(prob, generator=None):
    """Draw 1 with probability ``prob``, else 0.

    Args:
        prob: a triple, or a plain number/tensor in [0, 1].
        generator: used only when ``prob`` is plain (an ordinary torch draw).

    Returns:
        A triple ``(n_lanes,)`` of 0.0/1.0, or a plain tensor for a plain prob.
    """
    p, dp, p_alternative = _parts(prob)
    _check_range("bernoulli", "prob", p, p_alternative, 0, 1)
    lanes = _lanes_of(prob)
    if lanes is None:
        return torch.bernoulli(p, generator=generator)
    u = lanes.uniform()
    x = (u < p).to(DTYPE)
    x_alternative = (u < p_alternative).to(DTYPE)
    # delta > 0: a 0 becomes 1 with rate dp / (1 - p); delta < 0: 1 -> 0, -dp / p
    up = dp > 0
    weight = torch.where(up, dp / (1 - p), -dp / p)
    can_move = torch.where(up, x == 0, x == 1) & (dp != 0)
    weight = torch.where(can_move, weight, 0.0)
    jump = torch.where(up, 1.0, -1.0)
    return _new_alternative(lanes, x, x_alternative, weight, jump)


def _binomial_icdf(u, count, p):
    """Inverse CDF of Binomial(count, p) at u, all ``(n_lanes,)``."""
    k = torch.arange(int(count.max()) + 1, dtype=DTYPE)  # (k_max + 1,)
    count, p = count[:, None], p[:, None]
    log_pmf = (torch.lgamma(count + 1) - torch.lgamma(k + 1)
               - torch.lgamma((count - k).clamp_min(0) + 1)
               + torch.xlogy(k, p) + torch.xlogy(count - k, 1 - p))
    pmf = torch.where(k <= count, torch.exp(log_pmf), 0.0)  # (n_lanes, k_max + 1)
    below = (torch.cumsum(pmf, dim=1) <= u[:, None]).sum(dim=1)
    return torch.minimum(below.to(DTYPE), count[:, 0])


def binomial(n, prob, generator=None):
    """Draw the number of successes in ``n`` trials with probability ``prob``.

    Args:
        n: whole number(s) >= 0; a triple (e.g. an earlier draw) or plain.
        prob: a triple, or a plain number/tensor in [0, 1].
        generator: used only when both arguments are plain.

    Returns:
        A triple ``(n_lanes,)`` of counts, or a plain tensor for plain input.
    """
    count, dcount, count_alternative = _parts(n)
    p, dp, p_alternative = _parts(prob)
    _check_range("binomial", "prob", p, p_alternative, 0, 1)
    _check_range("binomial", "n", count, count_alternative, 0, whole=True)
    if (dcount != 0).any():
        raise ValueError("binomial: n must not depend continuously on p (its "
                         "derivative part is not 0); use a count, e.g. a draw")
    lanes = _lanes_of(n, prob)
    if lanes is None:
        count, p = torch.broadcast_tensors(count, p)
        return torch.binomial(count, p, generator=generator)
    shape = lanes.tag.shape
    count, count_alternative = count.expand(shape), count_alternative.expand(shape)
    p, dp = p.expand(shape), dp.expand(shape)
    p_alternative = p_alternative.expand(shape)
    u = lanes.uniform()
    x = _binomial_icdf(u, count, p)
    x_alternative = _binomial_icdf(u, count_alternative, p_alternative)
    # delta > 0: one more success, rate dp (n - x) / (1 - p); mirrored: dp x / p
    up = dp > 0
    weight = torch.where(up, dp * (count - x) / (1 - p), -dp * x / p)
    can_move = torch.where(up, x < count, x > 0) & (dp != 0)
    weight = torch.where(can_move, weight, 0.0)
    jump = torch.where(up, 1.0, -1.0)
    return _new_alternative(lanes, x, x_alternative, weight, jump)


def _poisson_icdf(u, rate):
    """Inverse CDF of Poisson(rate) at u, both ``(n_lanes,)``."""
    x, cdf = torch.zeros_like(u), torch.zeros_like(u)
    largest = float(rate.max())
    for k in range(int(largest + 12 * math.sqrt(largest) + 40)):
        cdf = cdf + torch.exp(-rate + torch.xlogy(k, rate) - math.lgamma(k + 1))
        below = cdf <= u
        if not below.any():
            break
        x = x + below
    return x


def poisson(rate, generator=None):
    """Draw a Poisson count with mean ``rate``.

    Args:
        rate: a triple, or a plain number/tensor >= 0.
        generator: used only when ``rate`` is plain.

    Returns:
        A triple ``(n_lanes,)`` of counts, or a plain tensor for a plain rate.
    """
    r, dr, r_alternative = _parts(rate)
    _check_range("poisson", "rate", r, r_alternative, 0)
    lanes = _lanes_of(rate)
    if lanes is None:
        return torch.poisson(r, generator=generator)
    u = lanes.uniform()
    x = _poisson_icdf(u, r)
    x_alternative = _poisson_icdf(u, r_alternative)
    # delta > 0: one more event, rate dr; mirrored: one fewer, rate -dr x / r
    up = dr > 0
    weight = torch.where(up, dr, -dr * x / r)
    can_move = (up | (x > 0)) & (dr != 0)
    weight = torch.where(can_move, weight, 0.0)
    jump = torch.where(up, 1.0, -1.0)
    return _new_alternative(lanes, x, x_alternative, weight, jump)


def geometric(prob, generator=None):
    """Draw the number of failures before the first success (as torch's Geometric).

    Args:
        prob: success probability, a triple or plain number/tensor in (0, 1].
        generator: used only when ``prob`` is plain.

    Returns:
        A triple ``(n_lanes,)`` of counts, or a plain tensor for a plain prob.
    """
    p, dp, p_alternative = _parts(prob)
    # with prob 0 no success ever comes
    _check_range("geometric", "prob", p, p_alternative, 0, 1, above_low=True)
    lanes = _lanes_of(prob)
    if lanes is None:
        u = torch.rand(p.shape, generator=generator, dtype=DTYPE)
        return torch.floor(torch.log1p(-u) / torch.log1p(-p)).clamp_min(0)
    u = lanes.uniform()
    x = torch.floor(torch.log1p(-u) / torch.log1p(-p)).clamp_min(0)
    x_alternative = torch.floor(torch.log1p(-u) / torch.log1p(-p_alternative))
    x_alternative = x_alternative.clamp_min(0)
    # delta > 0: one failure fewer, rate dp x / (p (1 - p)); mirrored: one
    # more, rate -dp (x + 1) / p
    up = dp > 0
    weight = torch.where(up, dp * x / (p * (1 - p)), -dp * (x + 1) / p)
    can_move = torch.where(up, x > 0, True) & (dp != 0)
    weight = torch.where(can_move, weight, 0.0)
    jump = torch.where(up, -1.0, 1.0)
    return _new_alternative(lanes, x, x_alternative, weight, jump)


def categorical(probs: Sequence, generator=None):
    """Draw a category 0, ..., k - 1 with the given probabilities.

    The outcome moves to a neighbouring category when a boundary of the
    cumulative probabilities crosses its uniform number (inverse CDF), so
    order the categories so that neighbours are similar.

    Args:
        probs: a list of k >= 2 probabilities (triples or plain numbers) that
            sum to 1 in every lane.
        generator: used only when no probability is a triple.

    Returns:
        A triple ``(n_lanes,)`` of category indices, or a plain tensor.
    """
    is_list = isinstance(probs, Sequence) and not isinstance(
        probs, (str, StochasticTriple))
    if not is_list or len(probs) < 2:
        got = f"{len(probs)} entries" if is_list else type(probs).__name__
        raise ValueError(f"categorical: probs must be a list of k >= 2 "
                         f"probabilities, got {got}")
    lanes = _lanes_of(*probs)
    parts = [_parts(q) for q in probs]
    shape = lanes.tag.shape if lanes is not None else torch.broadcast_shapes(
        *(value.shape for value, _, _ in parts))
    value, delta, alternative = (
        torch.stack([part[i].expand(shape) for part in parts], dim=-1)
        for i in range(3))  # each (n_lanes, k)
    _check_range("categorical", "probs", value, alternative, 0, 1)
    for sums in (value.sum(-1), alternative.sum(-1)):
        if ((sums - 1).abs() > 1e-6).any():
            raise ValueError(f"categorical: probs must sum to 1, got sums such as "
                             f"{sums[(sums - 1).abs() > 1e-6][0].item()!r}")
    if lanes is None:
        u = torch.rand(shape, generator=generator, dtype=DTYPE)
        return _categorical_icdf(u, value)
    u = lanes.uniform()
    x = _categorical_icdf(u, value)
    x_alternative = _categorical_icdf(u, alternative)
    # The boundary above category x moves down (rate -dF[x] / p_x): x -> x + 1;
    # the boundary below moves up (rate dF[x - 1] / p_x): x -> x - 1.
    index = x.long()[:, None]
    k = value.shape[-1]
    boundary_delta = torch.cumsum(delta, dim=-1)  # dF, (n_lanes, k)
    p_x = value.gather(-1, index)[:, 0]
    above = boundary_delta.gather(-1, index)[:, 0]
    below = boundary_delta.gather(-1, (index - 1).clamp_min(0))[:, 0]
    weight_up = torch.where((x < k - 1) & (above < 0), -above / p_x, 0.0)
    weight_down = torch.where((x > 0) & (below > 0), below / p_x, 0.0)
    # two candidates: keep one with probability proportional to its weight
    total = weight_up + weight_down
    go_up = lanes.uniform() * total < weight_up
    jump = torch.where(go_up, 1.0, -1.0)
    return _new_alternative(lanes, x, x_alternative, total, jump)


def _categorical_icdf(u, probs):
    """Inverse CDF of categories with ``probs`` ``(..., k)`` at u ``(...)``."""
    below = (torch.cumsum(probs, dim=-1) <= u[..., None]).sum(dim=-1)
    return below.clamp_max(probs.shape[-1] - 1).to(DTYPE)


# --- the estimator ------------------------------------------------------------


# What the arguments of derivative_estimate may be (in the order it reads them)
ESTIMATE_RULES = {
    "program": instance_of(callable, "a function of p"),
    "p": number(),
    "n_samples": integer(1),
    "seed": integer(0),
}


def derivative_estimate(program, p, n_samples, seed=0, return_values=False,
                        **kwargs):
    """Run ``program(p_triple, **kwargs)`` once for all samples.

    Args:
        program: a function of the parameter (and ``kwargs``) that returns a
            number per sample: a triple, or a plain number if it does not
            depend on the parameter.
        p: the parameter value at which to differentiate.
        n_samples: the number of lanes (independent samples).
        seed: seeds the run's ``torch.Generator``.
        return_values: also return the program's values per sample.
        **kwargs: passed on to ``program``.

    Returns:
        ``(n_samples,)`` float64 per-sample estimates whose mean estimates
        ``d/dp E[program(p)]``; with ``return_values`` a pair
        ``(values, estimates)``.
    """
    program, p, n_samples, seed = check_arguments(ESTIMATE_RULES, locals()).values()
    lanes = Lanes(n_samples, seed)
    p_triple = StochasticTriple(
        torch.full((n_samples,), p, dtype=DTYPE), torch.ones(n_samples, dtype=DTYPE),
        torch.zeros(n_samples, dtype=DTYPE), lanes.tag, lanes)
    with one_thread():
        output = program(p_triple, **kwargs)  # the learner's code, unwrapped
    if isinstance(output, StochasticTriple):
        if output.value.shape != (n_samples,):
            raise ValueError(
                f"program must return one number per sample, shape "
                f"({n_samples},), got a triple of shape {tuple(output.value.shape)}")
        values, estimates = output.value, output.estimate()
    elif _is_constant(output, n_samples):
        values = torch.as_tensor(output, dtype=DTYPE).expand(n_samples).clone()
        estimates = torch.zeros(n_samples, dtype=DTYPE)
    else:
        raise ValueError(
            f"program must return a number or a StochasticTriple (one value per "
            f"sample), got {type(output).__name__}"
            + (": did it forget to `return`?" if output is None else ""))
    return (values, estimates) if return_values else estimates


def _is_constant(output, n_samples):
    """Whether ``output`` is a plain number or a tensor of shape () or (n,)."""
    if isinstance(output, numbers.Real) and not isinstance(output, bool):
        return True
    return isinstance(output, torch.Tensor) and output.shape in (
        (), (1,), (n_samples,))


# --- the notebook's examples ----------------------------------------------------


def random_walk(p, n_steps):
    """StochasticAD.jl's tutorial walk: ``X_n^2`` after ``n_steps`` steps.

    X starts at 0 and steps +1 with probability ``exp(-X / p)``, else -1.
    Notebook section 5.
    """
    x = 0.0
    for _ in range(n_steps):
        step = bernoulli(exp(-x / p))
        x = x + 2 * step - 1
    return x**2


def random_walk_exact(p, n_steps):
    """Exact ``E[X_n^2]`` and its derivative, through the transition matrix.

    The walk lives on 0, ..., n_steps; autodiff goes through the matrix power.

    Returns:
        ``(mean, derivative)``, two floats.
    """
    p = torch.tensor(float(p), dtype=DTYPE, requires_grad=True)
    states = torch.arange(n_steps + 1, dtype=DTYPE)
    up = torch.exp(-states / p)  # (n_steps + 1,), probability of +1
    # transition[i, j] = P(j | i): +1 with prob up[i], -1 with 1 - up[i]
    transition = (torch.diag(up[:-1], 1) + torch.diag(1 - up[1:], -1))
    start = torch.zeros(n_steps + 1, dtype=DTYPE)
    start[0] = 1.0
    final = start @ torch.linalg.matrix_power(transition, n_steps)
    mean = (final * states**2).sum()
    (derivative,) = torch.autograd.grad(mean, p)
    return mean.item(), derivative.item()


BASELINES = ("none", "batch mean", "leave-one-out")
"""Baselines of :func:`random_walk_score`."""
# What the arguments of random_walk_score may be (in the order it reads them)
SCORE_RULES = {"baseline": one_of(BASELINES), "n_samples": integer(2)}


def random_walk_score(p, n_steps, n_samples, seed=0, baseline="none"):
    """Score-function (REINFORCE) estimates for the random walk, ``(n_samples,)``.

    Each sample's ``X_n^2``, minus a baseline, times the sum of the steps'
    ``d/dp log P(step)``. Notebook section 2. ``baseline``:

    * ``"none"``: unbiased;
    * ``"batch mean"``: the mean of all ``n_samples`` values of ``X_n^2``,
      sample i's own included, so its mean is ``(1 - 1/n_samples)`` times
      the derivative (biased, by 0.01% at 10,000 samples);
    * ``"leave-one-out"``: the mean of the other samples' ``X_n^2``;
      unbiased, and exactly ``n / (n - 1)`` times the batch-mean version.
    """
    baseline, n_samples = check_arguments(SCORE_RULES, locals()).values()
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(n_samples, dtype=DTYPE)
    score = torch.zeros(n_samples, dtype=DTYPE)
    for _ in range(n_steps):
        prob_up = torch.exp(-x / p)
        up = torch.rand(n_samples, generator=generator, dtype=DTYPE) < prob_up
        # d/dp log(prob_up) = x / p^2, d/dp log(1 - prob_up) = -dprob_up / (1 - prob_up)
        dprob_up = prob_up * x / p**2
        score = score + torch.where(up, x / p**2, -dprob_up / (1 - prob_up))
        x = x + torch.where(up, 1.0, -1.0)
    f = x**2
    if baseline == "batch mean":
        f = f - f.mean()
    elif baseline == "leave-one-out":
        f = f - (f.sum() - f) / (n_samples - 1)
    return f * score


def reed_frost(pi, susceptible, infected):
    """Final size of a Reed-Frost epidemic (chain binomial). Notebook section 6.

    Each generation, every susceptible escapes each infective with
    probability ``1 - pi``: new infections ~ Binomial(S, 1 - (1 - pi)^I).
    Runs ``susceptible`` generations, enough for any epidemic to end (a
    finished one draws zeros). Returns the number of the initially
    susceptible who were infected.
    """
    s, i = susceptible, infected
    for _ in range(susceptible):
        new = binomial(s, 1 - (1 - pi) ** i)
        s, i = s - new, new
    return susceptible - s


def reed_frost_final_size(pi, susceptible, infected):
    """Exact distribution of the Reed-Frost final size, by dynamic programming.

    Notebook section 6. ``state[s, i]`` is the probability of ``s``
    susceptibles and ``i`` new infectives; each generation moves it to
    ``(s - k, k)`` with Binomial(s, 1 - (1 - pi)^i) weights. After
    ``susceptible`` generations every epidemic has ended.

    Args:
        pi: a float, or a float64 tensor of any shape (several values at
            once; autodiff goes through).
        susceptible, infected: the initial numbers ``S0``, ``I0``.

    Returns:
        float64 tensor ``(*pi.shape, susceptible + 1)``: ``P(final size = k)``
        for k = 0..S0.
    """
    pi = torch.as_tensor(pi, dtype=DTYPE)
    batch = pi.shape
    pi = pi.reshape(-1, 1, 1, 1)  # (m, 1, 1, 1)
    size, width = susceptible + 1, max(susceptible + 1, infected + 1)
    s = torch.arange(size, dtype=DTYPE)[:, None, None]  # (size, 1, 1)
    i = torch.arange(width, dtype=DTYPE)[None, :, None]  # (1, width, 1)
    k = torch.arange(size, dtype=DTYPE)[None, None, :]  # (1, 1, size)
    possible = k <= s  # k new infections among s susceptibles
    log_choose = torch.where(possible, torch.lgamma(s + 1) - torch.lgamma(k + 1)
                             - torch.lgamma((s - k).clamp(min=0) + 1), 0.0)
    q = 1 - (1 - pi) ** i  # (m, 1, width, 1): infection probability given i
    # pmf[m, s, i, k] = P(k new | s, i); 0 ** 0 = 1 keeps q = 0 or 1 exact
    pmf = torch.where(possible, log_choose.exp() * q**k
                      * (1 - q) ** (s - k).clamp(min=0), 0.0)
    # (s, k) moves to (s - k, k): its index in the flattened (size, width) state
    target = ((s - k).clamp(min=0) * width + k).reshape(-1).long()  # (size * size,)
    state = torch.zeros(pi.shape[0], size * width, dtype=DTYPE)
    state[:, susceptible * width + infected] = 1.0
    for _ in range(susceptible):
        mass = torch.einsum("msi,msik->msk", state.reshape(-1, size, width), pmf)
        state = torch.zeros_like(state).index_add(1, target, mass.reshape(-1, size**2))
    by_susceptible = state.reshape(-1, size, width).sum(dim=2)  # (m, size)
    return by_susceptible.flip(1).reshape(*batch, size)  # final size = S0 - s


def reed_frost_exact(pi, susceptible, infected):
    """Exact expected final size and its derivative in ``pi``.

    The mean of :func:`reed_frost_final_size`, differentiated by autodiff.

    Returns:
        ``(mean, derivative)``, two floats.
    """
    pi = torch.tensor(float(pi), dtype=DTYPE, requires_grad=True)
    probabilities = reed_frost_final_size(pi, susceptible, infected)
    mean = (probabilities * torch.arange(susceptible + 1, dtype=DTYPE)).sum()
    (derivative,) = torch.autograd.grad(mean, pi)
    return mean.item(), derivative.item()
