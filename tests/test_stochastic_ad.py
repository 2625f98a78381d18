"""Tests of helpers.bonus.stochastic_ad: triples against exact derivatives."""

import itertools
import math
import re
from pathlib import Path

import pytest
import torch

import build_notebooks
from helpers.bonus import stochastic_ad as st

N_SAMPLES = 40_000


def assert_unbiased(program, p, exact, n_samples=N_SAMPLES, seed=0, **kwargs):
    """The mean estimate lies within 4 standard errors of ``exact``."""
    estimates = st.derivative_estimate(program, p, n_samples, seed=seed, **kwargs)
    assert estimates.dtype == torch.float64 and estimates.shape == (n_samples,)
    standard_error = estimates.std().item() / math.sqrt(n_samples)
    mean = estimates.mean().item()
    assert abs(mean - exact) <= 4 * standard_error + 1e-9, (mean, exact,
                                                              standard_error)
    return estimates


# --- arithmetic: the derivative part is forward-mode autodiff ----------------


def smooth(p):
    return (p**2 + 3) / p * st.exp(p) - st.log(p) ** 2 + 2**p - 1 / (1 + p) + (-p)


def test_arithmetic_derivative_equals_autograd():
    p = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(
        (p**2 + 3) / p * torch.exp(p) - torch.log(p) ** 2 + 2**p - 1 / (1 + p) - p,
        p)
    estimates = st.derivative_estimate(smooth, 0.7, 5)
    torch.testing.assert_close(estimates, expected.expand(5))


def test_power_of_two_triples_and_torch_functions():
    def program(p):
        return (p + 1) ** p + torch.exp(p) * torch.log(p) + torch.tensor(2.0) * p

    p = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(
        (p + 1) ** p + torch.exp(p) * torch.log(p) + 2 * p, p)
    torch.testing.assert_close(st.derivative_estimate(program, 0.4, 3),
                               expected.expand(3))


def test_other_torch_functions_say_what_is_available():
    with pytest.raises(TypeError, match="torch.sin does not accept"):
        st.derivative_estimate(lambda p: torch.sin(p), 0.3, 4)


def test_program_that_ignores_p_has_zero_derivative():
    values, estimates = st.derivative_estimate(lambda p: 3.0, 0.5, 4,
                                               return_values=True)
    assert estimates.tolist() == [0.0] * 4 and values.tolist() == [3.0] * 4


# --- every draw against exact derivatives of E[f(X)] --------------------------


@pytest.mark.parametrize("program, p, exact", [
    # E[(X + 1)^2] = 1 + 3q for X ~ Bernoulli(q)
    (lambda p: (st.bernoulli(p) + 1) ** 2, 0.3, 3.0),
    (lambda p: (st.bernoulli(1 - p) + 1) ** 2, 0.3, -3.0),  # mirrored rule
    (lambda p: st.bernoulli(p * p), 0.6, 1.2),
    # E[X^2] = n q (1 - q) + n^2 q^2 for X ~ Binomial(n, q)
    (lambda p: st.binomial(10, p) ** 2, 0.3, 10 * (1 - 0.6) + 200 * 0.3),
    (lambda p: st.binomial(10, 1 - p) ** 2, 0.3, -(10 * (1 - 1.4) + 200 * 0.7)),
    # E[X^2] = r + r^2 for X ~ Poisson(r)
    (lambda p: st.poisson(p) ** 2, 2.5, 1 + 5.0),
    (lambda p: st.poisson(4 - p) ** 2, 1.5, -(1 + 5.0)),
    # failures before the first success: E[X^2] = 2/q^2 - 3/q + 1
    (lambda p: st.geometric(p) ** 2, 0.4, -4 / 0.4**3 + 3 / 0.4**2),
    (lambda p: st.geometric(1 - p) ** 2, 0.6, 4 / 0.4**3 - 3 / 0.4**2),
    # categories 0, 1, 2: E[X^2] = 2.5 p with probs (1 - p, p/2, p/2)
    (lambda p: st.categorical([1 - p, p / 2, p / 2]) ** 2, 0.4, 2.5),
    # both boundaries move: probs (p, 1 - 2p, p), E[X^2] = 1 + 2p
    (lambda p: st.categorical([p, 1 - 2 * p, p]) ** 2, 0.2, 2.0),
    (lambda p: (st.categorical([p, 1 - 2 * p, p]) - 1) ** 3, 0.2, 0.0),
], ids=["bernoulli", "bernoulli-mirrored", "bernoulli-p2", "binomial",
        "binomial-mirrored", "poisson", "poisson-mirrored", "geometric",
        "geometric-mirrored", "categorical", "categorical-both-ways",
        "categorical-symmetric"])
def test_draw_derivative_matches_exact_value(program, p, exact):
    assert_unbiased(program, p, exact)


def test_binomial_with_a_random_count():
    # N ~ Binomial(10, p), X | N ~ Binomial(N, 1/2): E[X^2] = (E N + E N^2) / 4
    def program(p):
        return st.binomial(st.binomial(10, p), 0.5) ** 2

    p = 0.3
    exact = (10 + 10 * (1 - 2 * p) + 200 * p) / 4
    assert_unbiased(program, p, exact)


def test_pruning_keeps_sums_of_many_draws_unbiased():
    # S = X_1 + ... + X_5, X_i ~ Poisson(p): E[S^2] = 5p + 25p^2
    def program(p):
        total = 0.0
        for _ in range(5):
            total = total + st.poisson(p)
        return total**2

    assert_unbiased(program, 0.8, 5 + 50 * 0.8)


def test_a_draw_that_never_reaches_the_output_does_no_harm():
    # the unused Poisson draw may win the pruning in some lanes; those lanes
    # then carry an alternative that changes nothing, and the mean is still right
    def program(p):
        st.poisson(3 * p)
        return st.binomial(6, p)

    assert_unbiased(program, 0.3, 6.0)


def test_pruning_keeps_the_new_alternative_in_proportion_to_its_weight():
    lanes = st.Lanes(200_000, seed=1)
    lanes.weight = torch.full((200_000,), 1.0, dtype=torch.float64)
    lanes.tag = torch.full((200_000,), 7)
    outcome = torch.zeros(200_000, dtype=torch.float64)
    new = st._new_alternative(lanes, outcome, outcome + 2.0,
                              torch.full_like(outcome, 3.0),
                              torch.full_like(outcome, -1.0))
    kept_new = new.tag != 7
    assert abs(kept_new.double().mean().item() - 0.75) < 0.01
    assert (lanes.weight == 4.0).all()
    assert set(new.jump[kept_new].tolist()) == {-1.0}
    assert set(new.jump[~kept_new].tolist()) == {2.0}
    # survivor weight times jump averages the sum of weight times jump
    average = (lanes.weight * new.jump).mean().item()
    assert abs(average - (1.0 * 2.0 + 3.0 * -1.0)) < 0.05


def test_a_pruned_alternative_no_longer_counts():
    def program(p):
        first = st.bernoulli(p)
        second = st.bernoulli(p)
        return first, second

    lanes_run = {}

    def capture(p):
        lanes_run["pair"] = program(p)
        return 0.0

    st.derivative_estimate(capture, 0.5, 10_000, seed=3)
    first, second = lanes_run["pair"]
    moved_first = first.alternative != first.value
    moved_second = second.alternative != second.value
    assert moved_first.any() and moved_second.any()
    assert not (moved_first & moved_second).any()  # one live alternative per lane


def test_coupling_uses_the_same_uniform():
    pair = {}

    def program(p):
        x = st.bernoulli(p)
        y = st.bernoulli(0.3 + 0.4 * x)
        n = st.binomial(5, p)
        z = st.binomial(n, 0.5)
        pair["xy"], pair["nz"] = (x, y), (n, z)
        return y + z

    # E[Y] = 0.3 + 0.4 p, E[Z] = 2.5 p
    assert_unbiased(program, 0.4, 0.4 + 2.5)
    x, y = pair["xy"]
    n, z = pair["nz"]
    up = x.alternative > x.value
    assert up.any()
    # the same u: a larger probability or count never gives a smaller draw
    assert (y.alternative[up] >= y.value[up]).all()
    assert (y.alternative[up] > y.value[up]).any()
    more = n.alternative > n.value
    assert (z.alternative[more] >= z.value[more]).all()


def test_same_seed_same_estimates_other_seed_others():
    def program(p):
        return st.binomial(8, p) * st.poisson(3 * p)

    first = st.derivative_estimate(program, 0.3, 500, seed=11)
    again = st.derivative_estimate(program, 0.3, 500, seed=11)
    other = st.derivative_estimate(program, 0.3, 500, seed=12)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_plain_draws_are_ordinary_torch_draws():
    generator = torch.Generator().manual_seed(0)
    draws = st.bernoulli(torch.full((1000,), 0.25), generator=generator)
    assert set(draws.tolist()) <= {0.0, 1.0}
    assert 150 < draws.sum() < 350
    counts = st.binomial(torch.full((5,), 4.0), 0.5)
    assert ((counts >= 0) & (counts <= 4)).all()


# --- the notebook's examples against brute force ------------------------------


def test_random_walk_exact_matches_enumeration():
    n_steps, p = 4, 3.0
    mean = derivative = 0.0
    h = 1e-6
    for steps in itertools.product((1, -1), repeat=n_steps):
        for sign, q in ((1, p + h), (-1, p - h)):
            x, prob = 0, 1.0
            for step in steps:
                up = math.exp(-x / q)
                prob *= up if step == 1 else 1 - up
                x += step
            derivative += sign * prob * x**2 / (2 * h)
            mean += prob * x**2 / 2
    exact_mean, exact_derivative = st.random_walk_exact(p, n_steps)
    assert exact_mean == pytest.approx(mean, rel=1e-8)
    assert exact_derivative == pytest.approx(derivative, rel=1e-5)


def test_random_walk_triples_and_score_function_are_unbiased():
    _, exact = st.random_walk_exact(20.0, 10)
    assert_unbiased(st.random_walk, 20.0, exact, n_samples=20_000, n_steps=10)
    for baseline in ("none", "leave-one-out"):
        estimates = st.random_walk_score(20.0, 10, 20_000, seed=2, baseline=baseline)
        error = estimates.std().item() / math.sqrt(20_000)
        assert abs(estimates.mean().item() - exact) <= 4 * error


def test_score_baselines_batch_mean_is_leave_one_out_shrunk_by_1_minus_1_over_n():
    n = 50
    plain = st.random_walk_score(20.0, 10, n, seed=4)
    batch = st.random_walk_score(20.0, 10, n, seed=4, baseline="batch mean")
    loo = st.random_walk_score(20.0, 10, n, seed=4, baseline="leave-one-out")
    # same walks; the leave-one-out estimate is the batch-mean one times n/(n-1)
    torch.testing.assert_close(loo, batch * n / (n - 1))
    # and its baseline is the mean of the other samples' X_n^2, by hand
    generator = torch.Generator().manual_seed(4)
    x = torch.zeros(n, dtype=torch.float64)
    score = torch.zeros(n, dtype=torch.float64)
    for _ in range(10):
        prob_up = torch.exp(-x / 20.0)
        up = torch.rand(n, generator=generator, dtype=torch.float64) < prob_up
        score += torch.where(up, x / 400, -prob_up * x / 400 / (1 - prob_up))
        x += torch.where(up, 1.0, -1.0)
    f = x**2
    others = torch.stack([torch.cat([f[:i], f[i + 1:]]).mean() for i in range(n)])
    torch.testing.assert_close(loo, (f - others) * score)
    torch.testing.assert_close(plain, f * score)


def test_score_baseline_is_checked():
    with pytest.raises(ValueError, match="baseline"):
        st.random_walk_score(20.0, 10, 100, baseline=True)
    with pytest.raises(ValueError, match="n_samples"):
        st.random_walk_score(20.0, 10, 1, baseline="leave-one-out")


def test_reed_frost_final_size_distribution():
    pi = 0.3
    two = st.reed_frost_final_size(pi, 2, 1)
    none, one = (1 - pi) ** 2, 2 * pi * (1 - pi) ** 2
    torch.testing.assert_close(
        two, torch.tensor([none, one, 1 - none - one], dtype=torch.float64))
    # S0 = 19: sums to 1, its mean is reed_frost_exact's, and it is bimodal
    probabilities = st.reed_frost_final_size(0.08, 19, 1)
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (probabilities >= 0).all()
    mean = (probabilities * torch.arange(20)).sum().item()
    assert mean == pytest.approx(st.reed_frost_exact(0.08, 19, 1)[0], rel=1e-12)
    # against 20,000 simulated epidemics (a plain numpy-free chain binomial)
    generator = torch.Generator().manual_seed(5)
    s = torch.full((20_000,), 19.0, dtype=torch.float64)
    i = torch.ones(20_000, dtype=torch.float64)
    for _ in range(19):
        new = torch.binomial(s, 1 - (1 - 0.08) ** i, generator=generator)
        s, i = s - new, new
    frequencies = torch.bincount((19 - s).long(), minlength=20).double() / 20_000
    se = (probabilities * (1 - probabilities) / 20_000).sqrt()
    assert ((frequencies - probabilities).abs() <= 4.5 * se + 1e-4).all()


def test_reed_frost_exact_small_cases():
    pi = 0.3
    # one susceptible, one infective: final size ~ Bernoulli(pi)
    assert st.reed_frost_exact(pi, 1, 1) == pytest.approx((pi, 1.0))
    # two susceptibles: none infected (1 - pi)^2; exactly one 2 pi (1 - pi)^2
    pi_t = torch.tensor(pi, dtype=torch.float64, requires_grad=True)
    none, one = (1 - pi_t) ** 2, 2 * pi_t * (1 - pi_t) ** 2
    mean = one + 2 * (1 - none - one)
    (derivative,) = torch.autograd.grad(mean, pi_t)
    assert st.reed_frost_exact(pi, 2, 1) == pytest.approx(
        (mean.item(), derivative.item()))
    # three susceptibles, two infectives: against finite differences
    h = 1e-6
    plus, minus = st.reed_frost_exact(pi + h, 3, 2), st.reed_frost_exact(pi - h, 3, 2)
    assert st.reed_frost_exact(pi, 3, 2)[1] == pytest.approx(
        (plus[0] - minus[0]) / (2 * h), rel=1e-6)


def test_reed_frost_triples_are_unbiased():
    _, exact = st.reed_frost_exact(0.12, 9, 1)
    assert_unbiased(st.reed_frost, 0.12, exact, n_samples=20_000,
                    susceptible=9, infected=1)


# --- errors --------------------------------------------------------------------


@pytest.mark.parametrize("program, p, message", [
    (lambda p: st.bernoulli(p), 1.5, "bernoulli: prob must be in \\[0, 1\\]"),
    (lambda p: st.binomial(4, p - 1), 0.5, "binomial: prob"),
    (lambda p: st.binomial(-3, p), 0.5, "binomial: n must be whole numbers >= 0"),
    (lambda p: st.binomial(2.5, p), 0.5, "binomial: n must be whole"),
    (lambda p: st.binomial(p * 10, 0.5), 0.5, "must not depend continuously"),
    (lambda p: st.poisson(-p), 0.5, "poisson: rate must be >= 0"),
    (lambda p: st.geometric(p - 0.5), 0.5, "geometric: prob must be in \\(0, 1\\]"),
    (lambda p: st.categorical([p, p]), 0.3, "categorical: probs must sum to 1"),
    (lambda p: st.categorical(p), 0.3, "categorical: probs must be a list"),
    # 0 in every lane at p = 0.001 (seed 0), but 1 in an alternative: 1.1
    (lambda p: st.bernoulli(st.bernoulli(p) / 2 + 0.6), 0.001, "in an alternative"),
    (lambda p: None, 0.5, "did it forget to `return`"),
    (lambda p: "done", 0.5, "got str"),
    (lambda p: st.categorical([1 - p, p]) * torch.ones(3, 1), 0.5, "shape"),
])
def test_bad_input_raises_a_clear_value_error(program, p, message):
    with pytest.raises(ValueError, match=message):
        st.derivative_estimate(program, p, 100)


@pytest.mark.parametrize("kwargs, message", [
    ({"p": "0.3", "n_samples": 10}, "p must be a number"),
    ({"p": 0.3, "n_samples": 0}, "n_samples must be an integer >= 1"),
    ({"p": 0.3, "n_samples": 10, "seed": -1}, "seed must be an integer >= 0"),
    ({"p": float("nan"), "n_samples": 10}, "p must be a finite number"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        st.derivative_estimate(lambda p: p, **kwargs)


def test_program_must_be_callable():
    with pytest.raises(ValueError, match="program must be a function"):
        st.derivative_estimate(0.3, 0.3, 10)


@pytest.mark.parametrize("branch", [
    lambda x: 1 if x else 0,
    lambda x: x > 0,
    lambda x: x == 1,
    lambda x: float(x),
    lambda x: [0, 1][x],
])
def test_branching_on_a_triple_says_what_to_do(branch):
    def program(p):
        return branch(st.bernoulli(p))

    with pytest.raises(TypeError, match="Write the choice as arithmetic"):
        st.derivative_estimate(program, 0.5, 10)


def test_learners_own_error_surfaces_unchanged():
    def my_program(p):
        x = st.poisson(p)
        return x / undefined_rate  # noqa: F821  (the learner's typo)

    with pytest.raises(NameError, match="undefined_rate") as info:
        st.derivative_estimate(my_program, 1.0, 10)
    assert info.traceback[-1].name == "my_program"


# --- the notebook's "your turn" cells ------------------------------------------
# Each check cell must say "Right" for the notebook's hidden solution, "Wrong"
# for typical mistakes (wrong shape or type, wrong sign, a near miss) and
# "Not yet" for the stub the notebook ships with.

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "stochastic_ad.py"


def notebook_cells():
    return build_notebooks.parse_source(NOTEBOOK.read_text("utf-8"), NOTEBOOK.name)


def code_cells():
    return [cell.source for cell in notebook_cells() if cell.kind == "code"]


def your_turn(name):
    """``(stub, check)``: the cell defining ``name`` for the learner, and the next."""
    code = code_cells()
    (index,) = [i for i, source in enumerate(code)
                if source.startswith("# Your turn") and f"def {name}(" in source]
    assert code[index + 1].startswith("# Check"), "a check cell follows"
    return code[index], code[index + 1]


def solution(name):
    """The solution's code, from the fenced block in a collapsed markdown cell."""
    blocks = build_notebooks.hidden_solutions(notebook_cells(), name)
    assert blocks, f"no solution for {name}"
    return blocks[0]


def namespace_with(*markers):
    """The notebook's imports cell and the code cells containing ``markers``."""
    namespace = {}
    for source in code_cells():
        if "SEED = " in source or any(marker in source for marker in markers):
            exec(source, namespace)  # noqa: S102 - notebook cells, as in Jupyter
    return namespace


def verdict(namespace, definition, check):
    exec(definition, namespace)  # noqa: S102
    exec(check, namespace)  # noqa: S102
    return namespace["verdict"]


def test_every_your_turn_cell_is_tested_here():
    names = set()
    for source in code_cells():
        if source.startswith("# Your turn"):
            names.update(re.findall(r"^def (\w+)\(", source, re.MULTILINE))
    assert names == {"dual_exp", "geometric_alternative"}


DUAL_EXP_WRONG = {
    "a tuple instead of a Dual": """\
def dual_exp(x):
    return torch.exp(x.value), torch.exp(x.value) * x.delta
""",
    "one number instead of one per input": """\
def dual_exp(x):
    return Dual(torch.exp(x.value).sum(), (torch.exp(x.value) * x.delta).sum())
""",
    "wrong sign": """\
def dual_exp(x):
    return Dual(torch.exp(x.value), -torch.exp(x.value) * x.delta)
""",
    "no chain rule": """\
def dual_exp(x):
    return Dual(torch.exp(x.value), torch.exp(x.value))
""",
}


@pytest.fixture(scope="module")
def dual_namespace():
    return namespace_with("class Dual:")


def test_dual_exp_check_says_not_yet_for_the_stub(dual_namespace):
    stub, check = your_turn("dual_exp")
    assert verdict(dict(dual_namespace), stub, check).startswith("Not yet")


def test_dual_exp_check_accepts_the_solution_and_other_spellings(dual_namespace):
    _, check = your_turn("dual_exp")
    namespace = dict(dual_namespace)
    assert verdict(namespace, solution("dual_exp"), check).startswith("Right")
    # the solution is forward-mode autodiff: compare with reverse mode
    at = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    Dual, dual_exp = namespace["Dual"], namespace["dual_exp"]
    forward = dual_exp(Dual(2 * at.detach(), torch.full((2,), 2.0,
                                                        dtype=torch.float64)))
    (reverse,) = torch.autograd.grad(torch.exp(2 * at).sum(), at)
    torch.testing.assert_close(forward.delta, reverse)
    other = """\
def dual_exp(x):
    return Dual(x.value.exp(), x.delta * math.e ** x.value)
"""
    assert verdict(dict(dual_namespace), other, check).startswith("Right")


@pytest.mark.parametrize("mistake", DUAL_EXP_WRONG)
def test_dual_exp_check_rejects_wrong_answers(dual_namespace, mistake):
    _, check = your_turn("dual_exp")
    answer = verdict(dict(dual_namespace), DUAL_EXP_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


def test_the_notebooks_dual_numbers_follow_the_product_rule(dual_namespace):
    Dual = dual_namespace["Dual"]
    at = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    out = 3 * Dual(at.detach(), 1.0) * Dual(at.detach(), 1.0) + Dual(at.detach(), 1.0)
    (reverse,) = torch.autograd.grad((3 * at * at + at).sum(), at)
    torch.testing.assert_close(out.delta, reverse)


GEOMETRIC_WRONG = {
    "the mean of the draws instead of one pair per draw": """\
def geometric_alternative(x, p):
    return torch.tensor([-1.0, -1.0]), (x / (p * (1 - p))).mean()
""",
    "wrong sign (X grows with p)": """\
def geometric_alternative(x, p):
    return torch.where(x > 0, 1.0, 0.0), x / (p * (1 - p))
""",
    "near miss: forgot 1 - p": """\
def geometric_alternative(x, p):
    return -torch.ones_like(x), x / p
""",
    "a negative weight": """\
def geometric_alternative(x, p):
    return torch.ones_like(x), -x / (p * (1 - p))
""",
    "not a pair": """\
def geometric_alternative(x, p):
    return -x / (p * (1 - p))
""",
}


@pytest.fixture(scope="module")
def geometric_namespace():
    return namespace_with()


def test_geometric_check_says_not_yet_for_the_stub(geometric_namespace):
    stub, check = your_turn("geometric_alternative")
    assert verdict(dict(geometric_namespace), stub, check).startswith("Not yet")


def test_geometric_check_accepts_the_solution_and_other_spellings(
        geometric_namespace):
    _, check = your_turn("geometric_alternative")
    namespace = dict(geometric_namespace)
    answer = verdict(namespace, solution("geometric_alternative"), check)
    assert answer.startswith("Right"), answer
    # the rule is unbiased: mean of jump * weight is d/dp E[X] = -1 / p^2
    p = 0.3
    draws = torch.distributions.Geometric(probs=p).sample(
        (200_000,)).double()  # failures before the first success, as ours
    jump, weight = namespace["geometric_alternative"](draws, p)
    estimates = jump * weight
    error = estimates.std().item() / math.sqrt(len(draws))
    assert abs(estimates.mean().item() + 1 / p**2) <= 4 * error
    other = """\
def geometric_alternative(x, p):
    return -1, x / p / (1 - p)
"""
    assert verdict(dict(geometric_namespace), other, check).startswith("Right")


@pytest.mark.parametrize("mistake", GEOMETRIC_WRONG)
def test_geometric_check_rejects_wrong_answers(geometric_namespace, mistake):
    _, check = your_turn("geometric_alternative")
    answer = verdict(dict(geometric_namespace), GEOMETRIC_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


def test_the_notebooks_score_function_equals_the_helpers():
    namespace = namespace_with()
    for source in code_cells():
        if source.startswith("def score_function("):
            exec(source.split("\n\n\nfor baseline")[0], namespace)  # noqa: S102
    for baseline in st.BASELINES:
        torch.testing.assert_close(
            namespace["score_function"](30.0, 15, 40, 3, baseline),
            st.random_walk_score(30.0, 15, 40, seed=3, baseline=baseline))
