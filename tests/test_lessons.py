"""The practicals' "your turn" cells: each check cell says "Right" for the
solution shown in the notebook, "Wrong" for typical mistakes and "Not yet" for
the stub the notebook ships with.

The cells are read from the notebook sources (``notebooks/practicals/*.py``),
so the tests exercise exactly the code a learner runs.
"""

import pathlib
import re

import pytest
import torch
from torchdiffeq import odeint

import build_notebooks
import helpers

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks" / "practicals"


def cells_of(prefix):
    """Parsed cells of the practicals source whose name starts with ``prefix``."""
    (path,) = SOURCES.glob(f"{prefix}*.py")
    return build_notebooks.parse_source(path.read_text(encoding="utf-8"), path.name)


def code_cells(prefix):
    return [cell.source for cell in cells_of(prefix) if cell.kind == "code"]


def your_turn(prefix, name):
    """``(stub, check)``: the cell defining ``name`` for the learner, and the next."""
    code = code_cells(prefix)
    (index,) = [i for i, source in enumerate(code)
                if source.startswith("# Your turn") and f"def {name}(" in source]
    assert code[index + 1].startswith("# Check"), "a check cell follows"
    return code[index], code[index + 1]


def solution(prefix, name):
    """The solution's code, from the fenced block in a collapsed markdown cell."""
    blocks = build_notebooks.hidden_solutions(cells_of(prefix), name)
    assert blocks, f"no solution for {name} in {prefix}"
    return blocks[0]


def verdict(namespace, definition, check):
    """Run a definition and the check cell; return the check's verdict."""
    exec(definition, namespace)  # noqa: S102 - notebook cells, run as in Jupyter
    exec(check, namespace)  # noqa: S102
    return namespace["verdict"]


# --- Part I: the logistic-regression score --------------------------------------


@pytest.fixture
def part1():
    """Part I's namespace up to its your-turn cell (imports and the data)."""
    code = code_cells("10_")
    stub, _ = your_turn("10_", "log_likelihood_gradient")
    namespace = {}
    for source in code[: code.index(stub)]:
        if "def f(" in source or "torch.linspace" in source:
            break  # only the imports and the data cell are needed
        exec(source, namespace)  # noqa: S102
    exec(code[code.index(stub) - 1], namespace)  # the data cell  # noqa: S102
    return namespace


LOGISTIC_WRONG = {
    "the negative log-likelihood": """\
def log_likelihood_gradient(beta, X, y):
    beta = beta.detach().clone().requires_grad_(True)
    eta = X @ beta
    loss = -(y * eta - torch.nn.functional.softplus(eta)).sum()
    return torch.autograd.grad(loss, beta)[0]
""",
    "a mean instead of a sum": """\
def log_likelihood_gradient(beta, X, y):
    beta = beta.detach().clone().requires_grad_(True)
    eta = X @ beta
    ll = (y * eta - torch.nn.functional.softplus(eta)).mean()
    return torch.autograd.grad(ll, beta)[0]
""",
    "the probabilities instead of the gradient": """\
def log_likelihood_gradient(beta, X, y):
    return torch.sigmoid(X @ beta)
""",
}


def test_logistic_check_says_not_yet_for_the_stub(part1):
    stub, check = your_turn("10_", "log_likelihood_gradient")
    assert verdict(part1, stub, check).startswith("Not yet")


def test_logistic_check_accepts_the_solution(part1):
    _, check = your_turn("10_", "log_likelihood_gradient")
    answer = verdict(part1, solution("10_", "log_likelihood_gradient"), check)
    assert answer.startswith("Right"), answer
    # the solution is autodiff of the log-likelihood: check it independently
    X, y, beta = part1["X"], part1["y"], part1["beta"]
    expected = X.T @ (y - torch.sigmoid(X @ beta))
    assert torch.allclose(part1["log_likelihood_gradient"](beta, X, y), expected)


@pytest.mark.parametrize("mistake", LOGISTIC_WRONG)
def test_logistic_check_rejects_wrong_answers(part1, mistake):
    _, check = your_turn("10_", "log_likelihood_gradient")
    answer = verdict(part1, LOGISTIC_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


# --- Part II: predicting a held-out visit by hand -------------------------------


@pytest.fixture(scope="module")
def part2():
    """Part II's ODE-VAE section up to an (untrained) model and ``ode_params``."""
    namespace = {}
    for source in code_cells("30_")[:2]:  # imports + data, the parameter network
        exec(source, namespace)  # noqa: S102
    namespace["odeint"] = odeint  # imported by the your-turn cell
    return namespace


PREDICT_WRONG = {
    "no ODE solve (the baseline visit, decoded)": """\
def predict_visit(model, x0, baseline, t):
    return model.decode(model.encode(x0)[0])[0]
""",
    "rates with the wrong sign": """\
def predict_visit(model, x0, baseline, t):
    z0 = model.encode(x0)[0]
    rates = ode_params(model, baseline[None])[0]
    path = odeint(lambda s, z: -rates * z, z0, torch.tensor([0.0, t]))
    return model.decode(path[-1])[0]
""",
    "the decoded log-variance instead of the mean": """\
def predict_visit(model, x0, baseline, t):
    z0 = model.encode(x0)[0]
    rates = ode_params(model, baseline[None])[0]
    path = odeint(lambda s, z: rates * z, z0, torch.tensor([0.0, t]))
    return model.decode(path[-1])[1]
""",
}


def test_predict_check_says_not_yet_for_the_stub(part2):
    stub, check = your_turn("30_", "predict_visit")
    assert verdict(dict(part2), stub, check).startswith("Not yet")


@pytest.mark.parametrize("epochs", [0, 40])
def test_predict_check_accepts_the_solution(part2, epochs):
    namespace = dict(part2)
    if epochs:  # a partly trained model as well as the untrained one
        model = helpers.ODEVAE(namespace["cohort"].p, namespace["cohort"].q, seed=3)
        helpers.train(model, namespace["train_cohort"], epochs=epochs, progress=False)
        namespace["model"] = model
    _, check = your_turn("30_", "predict_visit")
    answer = verdict(namespace, solution("30_", "predict_visit"), check)
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", PREDICT_WRONG)
def test_predict_check_rejects_wrong_answers(part2, mistake):
    _, check = your_turn("30_", "predict_visit")
    answer = verdict(dict(part2), PREDICT_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


# --- Exercise 2: the full-matrix right-hand side --------------------------------

FULL_MATRIX_WRONG = {
    "A transposed": """\
def full_matrix(t, z, params):
    return (params.reshape(-1, 2, 2).transpose(1, 2) @ z.unsqueeze(-1)).squeeze(-1)
""",
    "the diagonal only": """\
def full_matrix(t, z, params):
    return params[:, [0, 3]] * z
""",
    "a wrong shape": """\
def full_matrix(t, z, params):
    return params.reshape(-1, 2, 2) @ z.unsqueeze(-1)
""",
}


def exercise_namespace():
    return {"torch": torch, "helpers": helpers}


def test_full_matrix_check_says_not_yet_for_the_stub():
    stub, check = your_turn("40_", "full_matrix")
    assert verdict(exercise_namespace(), stub, check).startswith("Not yet")


def test_full_matrix_check_accepts_the_solution_and_it_trains():
    _, check = your_turn("40_", "full_matrix")
    namespace = exercise_namespace()
    answer = verdict(namespace, solution("40_", "full_matrix"), check)
    assert answer.startswith("Right"), answer
    # the learner's model has the same loss as the helpers' four-parameter one
    cohort = helpers.load_cohort().subset(range(10))
    batch = helpers.make_batch(cohort, range(10))
    eps = torch.zeros(len(batch.x), 2)
    theirs = helpers.ODEVAE(cohort.p, cohort.q, n_ode_params=4, seed=1)
    ours = helpers.ODEVAE(cohort.p, cohort.q, n_ode_params=4, seed=1,
                          dynamics=namespace["full_matrix"])
    assert torch.allclose(ours.loss(batch, eps=eps), theirs.loss(batch, eps=eps))
    history = helpers.train(ours, cohort, epochs=3, progress=False)
    assert torch.isfinite(torch.tensor(history["loss"].to_numpy())).all()


@pytest.mark.parametrize("mistake", FULL_MATRIX_WRONG)
def test_full_matrix_check_rejects_wrong_answers(mistake):
    _, check = your_turn("40_", "full_matrix")
    answer = verdict(exercise_namespace(), FULL_MATRIX_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)


def test_the_training_cell_waits_for_a_right_answer():
    code = code_cells("40_")
    stub, check = your_turn("40_", "full_matrix")
    training = code[code.index(check) + 1]
    assert training.lstrip("# \n").startswith("Trains") or "verdict" in training
    namespace = exercise_namespace()
    verdict(namespace, stub, check)
    exec(training, namespace)  # noqa: S102 - must not train, nor fail
    assert "four" not in namespace


def test_every_your_turn_cell_is_tested_here():
    names = set()
    for path in SOURCES.glob("*.py"):
        for cell in build_notebooks.parse_source(path.read_text("utf-8"), path.name):
            if cell.kind == "code" and cell.source.startswith("# Your turn"):
                names.update(re.findall(r"^def (\w+)\(", cell.source, re.MULTILINE))
    # the newer cells are tested in test_lessons_v3.py
    assert {"log_likelihood_gradient", "predict_visit", "full_matrix"} <= names


def lesson_functions(prefix, names):
    """The notebook's own definitions of ``names``, executed on their own."""
    import ast

    namespace = {"torch": torch}
    for source in code_cells(prefix):
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                exec(ast.unparse(node), namespace)  # noqa: S102
    assert set(names) <= set(namespace), "every lesson function is in the notebook"
    return namespace


def test_the_notebooks_networks_equal_the_helpers_on_other_sizes():
    lesson = lesson_functions("20_", ("encode", "decode"))
    lesson.update(lesson_functions("30_", ("ode_params",)))
    generator = torch.Generator().manual_seed(5)
    model = helpers.ODEVAE(p=6, q=7, seed=11)
    with torch.no_grad():  # move every parameter off its initial value
        for weights in model.parameters():
            weights.add_(0.3 * torch.randn(weights.shape, generator=generator))
    x = torch.randn(9, 6, generator=generator)
    z = torch.randn(9, 2, generator=generator)
    baseline = torch.randn(9, 7, generator=generator)
    pairs = [(lesson["encode"](model, x), model.encode(x)),
             (lesson["decode"](model, z), model.decode(z)),
             ((lesson["ode_params"](model, baseline),), (model.ode_params(baseline),))]
    for ours, theirs in pairs:
        for a, b in zip(ours, theirs, strict=True):
            assert torch.allclose(a, b, atol=1e-6)
