"""The practicals' newer "your turn" cells (standard errors from the inverse
Hessian, the VAE loss of one individual, the ODE-VAE objective of one
individual; the exercises' mean and sd, and best possible AUC): each check
cell says "Right" for the notebook's hidden solution, "Not yet" for the stub,
and "Wrong" or "Almost" for typical mistakes (a wrong shape, a wrong sign, a
near miss). The cells are read from the notebook sources, so the tests run
exactly the code a learner runs.
"""

import re
import statistics

import pytest
import torch
from test_lessons import SOURCES, code_cells, solution, verdict, your_turn

import build_notebooks


def namespace_before(prefix, name, skip=()):
    """Run the source's code cells before ``name``'s your-turn cell; skip any
    cell that contains one of the strings in ``skip`` (plots, training)."""
    code = code_cells(prefix)
    stub, _ = your_turn(prefix, name)
    namespace = {}
    for source in code[: code.index(stub)]:
        if any(marker in source for marker in skip):
            continue
        exec(source, namespace)  # noqa: S102 - notebook cells, run as in Jupyter
    return namespace


def checked(namespace, name, prefix, definition):
    _, check = your_turn(prefix, name)
    return verdict(dict(namespace), definition, check)


# --- Part I: standard errors from the inverse Hessian ---------------------------


@pytest.fixture(scope="module")
def standard_errors_namespace():
    # skip the slow optimiser demonstrations; the fit of the noisy data stays
    slow = ("def gradient_descent(", "def adam_fit(", "ax_loss", "def loss_on_grid(")
    return namespace_before("10_", "standard_errors", skip=slow)


STANDARD_ERRORS_WRONG = {
    "the whole covariance matrix (wrong shape)": """\
def standard_errors(nll, p_hat):
    return torch.linalg.inv(torch.autograd.functional.hessian(nll, p_hat))
""",
    "variances, no square root (near miss)": """\
def standard_errors(nll, p_hat):
    hessian = torch.autograd.functional.hessian(nll, p_hat)
    return torch.linalg.inv(hessian).diagonal()
""",
    "1 / sqrt(diag H): the inverse of the diagonal (near miss)": """\
def standard_errors(nll, p_hat):
    hessian = torch.autograd.functional.hessian(nll, p_hat)
    return 1 / hessian.diagonal().sqrt()
""",
    "the Hessian of the log-likelihood, not its negative (sign)": """\
def standard_errors(nll, p_hat):
    hessian = torch.autograd.functional.hessian(lambda p: -nll(p), p_hat)
    return torch.linalg.inv(hessian).diagonal().sqrt()
""",
}


def test_standard_errors_check_says_not_yet_for_the_stub(standard_errors_namespace):
    stub, _ = your_turn("10_", "standard_errors")
    answer = checked(standard_errors_namespace, "standard_errors", "10_", stub)
    assert answer.startswith("Not yet")


def test_standard_errors_check_accepts_the_solution(standard_errors_namespace):
    definition = solution("10_", "standard_errors")
    answer = checked(standard_errors_namespace, "standard_errors", "10_", definition)
    assert answer.startswith("Right"), answer


def test_standard_errors_check_accepts_another_correct_form(standard_errors_namespace):
    definition = """\
def standard_errors(nll, p_hat):
    h = torch.autograd.functional.hessian(nll, p_hat.float().double())
    return torch.stack([torch.linalg.inv(h)[k, k] ** 0.5 for k in range(len(h))])
"""
    answer = checked(standard_errors_namespace, "standard_errors", "10_", definition)
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", STANDARD_ERRORS_WRONG)
def test_standard_errors_check_rejects_mistakes(standard_errors_namespace, mistake):
    answer = checked(standard_errors_namespace, "standard_errors", "10_",
                     STANDARD_ERRORS_WRONG[mistake])  # fmt: skip
    assert answer.startswith("Wrong"), (mistake, answer)


def test_the_standard_errors_match_a_finite_difference_hessian(
    standard_errors_namespace,
):
    """The reference itself: the Hessian by central differences of the gradient."""
    namespace = dict(standard_errors_namespace)
    nll, p_hat = namespace["negative_log_likelihood"], namespace["p_hat"]

    def gradient(p):
        p = p.clone().requires_grad_(True)
        return torch.autograd.grad(nll(p), p)[0]

    h = 1e-5
    columns = [(gradient(p_hat + h * e) - gradient(p_hat - h * e)) / (2 * h)
               for e in torch.eye(4, dtype=torch.float64)]  # fmt: skip
    numeric = torch.linalg.inv(torch.stack(columns, 1)).diagonal().sqrt()
    exec(solution("10_", "standard_errors"), namespace)  # noqa: S102
    assert torch.allclose(namespace["standard_errors"](nll, p_hat), numeric,
                          rtol=1e-4)  # fmt: skip
    assert gradient(p_hat).abs().max() < 1e-3  # p_hat is the maximum


# --- Part II: the VAE loss of one individual --------------------------------------


@pytest.fixture(scope="module")
def vae_namespace():
    return namespace_before("20_", "vae_loss_one", skip=("plot_truth_and_data",))


VAE_WRONG = {
    "one loss per visit, not summed (wrong shape)": """\
def vae_loss_one(model, x, eps):
    mean, logvar = encode(model, x)
    decoded_mean, decoded_logvar = decode(model, reparameterise(mean, logvar, eps))
    log_likelihood = helpers.gaussian_log_likelihood(x, decoded_mean, decoded_logvar)
    kl = helpers.kl_to_standard_normal(mean, logvar)
    return -(log_likelihood.sum(-1) - model.kl_weight * kl)
""",
    "the ELBO instead of its negative (sign)": """\
def vae_loss_one(model, x, eps):
    mean, logvar = encode(model, x)
    decoded_mean, decoded_logvar = decode(model, reparameterise(mean, logvar, eps))
    log_likelihood = helpers.gaussian_log_likelihood(
        x, decoded_mean, decoded_logvar).sum()
    kl = helpers.kl_to_standard_normal(mean, logvar).sum()
    return log_likelihood - model.kl_weight * kl - model.penalty_weight * (
        model.decoder_penalty())
""",
    "no ridge penalty (near miss)": """\
def vae_loss_one(model, x, eps):
    mean, logvar = encode(model, x)
    decoded_mean, decoded_logvar = decode(model, reparameterise(mean, logvar, eps))
    log_likelihood = helpers.gaussian_log_likelihood(
        x, decoded_mean, decoded_logvar).sum()
    kl = helpers.kl_to_standard_normal(mean, logvar).sum()
    return -(log_likelihood - model.kl_weight * kl)
""",
    "KL weight 1 instead of beta (near miss)": """\
def vae_loss_one(model, x, eps):
    mean, logvar = encode(model, x)
    decoded_mean, decoded_logvar = decode(model, reparameterise(mean, logvar, eps))
    log_likelihood = helpers.gaussian_log_likelihood(
        x, decoded_mean, decoded_logvar).sum()
    kl = helpers.kl_to_standard_normal(mean, logvar).sum()
    return -(log_likelihood - kl) + model.penalty_weight * model.decoder_penalty()
""",
    "decoding the mean, no draw of z (near miss)": """\
def vae_loss_one(model, x, eps):
    mean, logvar = encode(model, x)
    decoded_mean, decoded_logvar = decode(model, mean)
    log_likelihood = helpers.gaussian_log_likelihood(
        x, decoded_mean, decoded_logvar).sum()
    kl = helpers.kl_to_standard_normal(mean, logvar).sum()
    return -(log_likelihood - model.kl_weight * kl) + (
        model.penalty_weight * model.decoder_penalty())
""",
}


def test_vae_loss_check_says_not_yet_for_the_stub(vae_namespace):
    stub, _ = your_turn("20_", "vae_loss_one")
    assert checked(vae_namespace, "vae_loss_one", "20_", stub).startswith("Not yet")


def test_vae_loss_check_accepts_the_solution_and_helpers_own(vae_namespace):
    answer = checked(vae_namespace, "vae_loss_one", "20_",
                     solution("20_", "vae_loss_one"))  # fmt: skip
    assert answer.startswith("Right"), answer
    other_form = """\
def vae_loss_one(model, x, eps):
    mean, logvar = model.encode(x)
    return (model.negative_elbo(x, mean, logvar, eps=eps)
            + model.penalty_weight * model.decoder_penalty())
"""
    answer = checked(vae_namespace, "vae_loss_one", "20_", other_form)
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", VAE_WRONG)
def test_vae_loss_check_rejects_mistakes(vae_namespace, mistake):
    answer = checked(vae_namespace, "vae_loss_one", "20_", VAE_WRONG[mistake])
    assert answer.startswith(("Wrong", "Almost")), (mistake, answer)


def test_the_vae_solution_is_the_negative_elbo_by_hand(vae_namespace):
    """Against a loss written from torch.distributions, term by term."""
    namespace = dict(vae_namespace)
    exec(solution("20_", "vae_loss_one"), namespace)  # noqa: S102
    model, x, eps = namespace["vae"], namespace["x"], namespace["eps"]
    mean, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    z = mean + std * eps
    decoded_mean, decoded_logvar = model.decode(z)
    likelihood = torch.distributions.Normal(
        decoded_mean, torch.exp(0.5 * decoded_logvar)
    )
    posterior = torch.distributions.Normal(mean, std)
    prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(std))
    kl = torch.distributions.kl_divergence(posterior, prior).sum()
    penalty = sum((w**2).sum() for m in (model.decoder, model.decoder_mean,
                                         model.decoder_logvar)
                  for w in m.parameters())  # fmt: skip
    by_hand = -(likelihood.log_prob(x).sum() - 0.5 * kl) + 0.01 * penalty
    assert torch.allclose(namespace["vae_loss_one"](model, x, eps), by_hand, rtol=1e-5)


# --- Part II: the ODE-VAE objective of one individual -----------------------------


@pytest.fixture(scope="module")
def odevae_namespace():
    return namespace_before("30_", "odevae_loss_one")


ODEVAE_WRONG = {
    "one number per visit (wrong shape)": """\
def odevae_loss_one(model, x, t, baseline, eps):
    mean, logvar, smooth_mean = latent_means_one(model, x, t, baseline)
    return ((smooth_mean - mean) ** 2).sum(-1)
""",
    "consistency term subtracted (sign)": """\
def odevae_loss_one(model, x, t, baseline, eps):
    mean, logvar, smooth_mean = latent_means_one(model, x, t, baseline)
    loss = model.negative_elbo(x, smooth_mean, logvar, eps=eps)
    loss = loss + model.penalty_weight * model.decoder_penalty()
    return loss - model.consistency_weight * consistency_term(smooth_mean, mean)
""",
    "the ELBO at the encoder's means, not the ODE path (near miss)": """\
def odevae_loss_one(model, x, t, baseline, eps):
    mean, logvar, smooth_mean = latent_means_one(model, x, t, baseline)
    loss = model.negative_elbo(x, mean, logvar, eps=eps)
    loss = loss + model.penalty_weight * model.decoder_penalty()
    return loss + model.consistency_weight * consistency_term(smooth_mean, mean)
""",
    "no consistency term (near miss)": """\
def odevae_loss_one(model, x, t, baseline, eps):
    mean, logvar, smooth_mean = latent_means_one(model, x, t, baseline)
    loss = model.negative_elbo(x, smooth_mean, logvar, eps=eps)
    return loss + model.penalty_weight * model.decoder_penalty()
""",
}


def test_odevae_loss_check_says_not_yet_for_the_stub(odevae_namespace):
    stub, _ = your_turn("30_", "odevae_loss_one")
    answer = checked(odevae_namespace, "odevae_loss_one", "30_", stub)
    assert answer.startswith("Not yet")


def test_odevae_loss_check_accepts_the_solution(odevae_namespace):
    answer = checked(odevae_namespace, "odevae_loss_one", "30_",
                     solution("30_", "odevae_loss_one"))  # fmt: skip
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", ODEVAE_WRONG)
def test_odevae_loss_check_rejects_mistakes(odevae_namespace, mistake):
    answer = checked(odevae_namespace, "odevae_loss_one", "30_", ODEVAE_WRONG[mistake])
    assert answer.startswith(("Wrong", "Almost")), (mistake, answer)


def test_the_odevae_path_is_the_exact_solution(odevae_namespace):
    """latent_means_one's path is exp(a t) z0 per latent dimension."""
    namespace = dict(odevae_namespace)
    model, x, t, baseline = (namespace[k] for k in ("model", "x", "t", "baseline"))
    mean, _, smooth = namespace["latent_means_one"](model, x, t, baseline)
    rates = model.ode_params(baseline[None])[0]
    exact = mean[0] * torch.exp(t[:, None] * rates)
    assert torch.allclose(smooth, exact, rtol=1e-5, atol=1e-6)


# --- Exercise 1: mean and sample sd ----------------------------------------------

MEAN_SD_WRONG = {
    "the values back, not two numbers (wrong shape)": """\
def mean_sd(values):
    return values
""",
    "sd dividing by n (near miss)": """\
def mean_sd(values):
    values = torch.tensor(values)
    return values.mean(), values.std(correction=0)
""",
    "the variance, not the sd (near miss)": """\
def mean_sd(values):
    values = torch.tensor(values)
    return values.mean(), values.var()
""",
    "the mean with the wrong sign (sign)": """\
def mean_sd(values):
    values = torch.tensor(values)
    return -values.mean(), values.std()
""",
    "a failing function (a TypeError)": """\
def mean_sd(values):
    return sum(values) / len(values) + "sd"
""",
}


def exercise_check(name):
    _, check = your_turn("40_", name)
    return check


def test_mean_sd_check_says_not_yet_for_the_stub():
    stub, check = your_turn("40_", "mean_sd")
    assert verdict({"torch": torch}, stub, check).startswith("Not yet")


def test_mean_sd_check_accepts_the_solution_and_other_forms():
    check = exercise_check("mean_sd")
    namespace = {"torch": torch}
    answer = verdict(namespace, solution("40_", "mean_sd"), check)
    assert answer.startswith("Right"), answer
    values = [0.31, 0.29, 0.41, 0.35, 0.30]
    mean, sd = namespace["mean_sd"](values)
    assert abs(float(mean) - statistics.mean(values)) < 1e-12
    assert abs(float(sd) - statistics.stdev(values)) < 1e-12
    by_statistics = """\
import statistics
def mean_sd(values):
    return [statistics.mean(values), statistics.stdev(values)]
"""
    answer = verdict({"torch": torch}, by_statistics, check)
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", MEAN_SD_WRONG)
def test_mean_sd_check_rejects_mistakes(mistake):
    answer = verdict({"torch": torch}, MEAN_SD_WRONG[mistake],
                     exercise_check("mean_sd"))  # fmt: skip
    assert answer.startswith(("Wrong", "Almost")), (mistake, answer)


# --- Exercise 3: the best possible AUC --------------------------------------------

AUC_WRONG = {
    "one AUC per variable (wrong shape)": """\
def best_possible_auc(delta, sd):
    return torch.distributions.Normal(0.0, 1.0).cdf(delta / sd / 2**0.5)
""",
    "no sqrt(2) (near miss)": """\
def best_possible_auc(delta, sd):
    return torch.distributions.Normal(0.0, 1.0).cdf(delta.norm() / sd)
""",
    "the sum of the differences, not their norm (near miss)": """\
def best_possible_auc(delta, sd):
    return torch.distributions.Normal(0.0, 1.0).cdf(delta.sum() / sd / 2**0.5)
""",
    "Phi of minus the distance (sign)": """\
def best_possible_auc(delta, sd):
    return torch.distributions.Normal(0.0, 1.0).cdf(-delta.norm() / sd / 2**0.5)
""",
    "a string (wrong type)": """\
def best_possible_auc(delta, sd):
    return "0.98"
""",
}


def test_auc_check_says_not_yet_for_the_stub():
    stub, check = your_turn("40_", "best_possible_auc")
    assert verdict({"torch": torch}, stub, check).startswith("Not yet")


def test_auc_check_accepts_the_solution_and_another_form():
    check = exercise_check("best_possible_auc")
    namespace = {"torch": torch}
    answer = verdict(namespace, solution("40_", "best_possible_auc"), check)
    assert answer.startswith("Right"), answer
    other_form = """\
import math
def best_possible_auc(delta, sd):
    distance = math.sqrt(sum(float(d) ** 2 for d in delta)) / sd
    return 0.5 * (1 + math.erf(distance / 2))
"""
    answer = verdict({"torch": torch}, other_form, check)
    assert answer.startswith("Right"), answer


def test_the_best_possible_auc_is_the_auc_of_the_optimal_score():
    """Monte Carlo: the AUC of the sum of the differing variables is the chance
    that it is larger for a draw from group 2 than for one from group 1."""
    namespace = {"torch": torch}
    exec(solution("40_", "best_possible_auc"), namespace)  # noqa: S102
    generator = torch.Generator().manual_seed(0)
    delta, sd, pairs = torch.full((5,), 0.4, dtype=torch.float64), 1.0, 200_000

    def sums(shift):
        draws = torch.randn(pairs, 5, generator=generator, dtype=torch.float64)
        return (shift + sd * draws).sum(1)

    empirical = (sums(delta) > sums(0.0)).double().mean()
    bound = float(namespace["best_possible_auc"](delta, sd))
    assert abs(bound - float(empirical)) < 0.005, (bound, float(empirical))


@pytest.mark.parametrize("mistake", AUC_WRONG)
def test_auc_check_rejects_mistakes(mistake):
    answer = verdict({"torch": torch}, AUC_WRONG[mistake],
                     exercise_check("best_possible_auc"))  # fmt: skip
    assert answer.startswith(("Wrong", "Almost")), (mistake, answer)


def test_the_exercise_cells_wait_for_a_right_answer_and_train_nothing():
    """Under nbval the stubs stay: the cells after the checks must not train."""
    code = code_cells("40_")
    stub, check = your_turn("40_", "best_possible_auc")
    namespace = {"torch": torch}
    verdict(namespace, stub, check)
    exec(code[code.index(check) + 1], namespace)  # noqa: S102 - prints a hint
    assert "trueparams_delta" not in namespace
    for cell in code:
        if cell.startswith("# Your turn") and "def " not in cell:
            assert "run_experiment(" not in cell  # the learner writes the runs


# --- all of them ------------------------------------------------------------------


def test_every_your_turn_cell_is_tested_in_one_of_the_lesson_test_files():
    names = set()
    for path in SOURCES.glob("*.py"):
        for cell in build_notebooks.parse_source(path.read_text("utf-8"), path.name):
            if cell.kind == "code" and cell.source.startswith("# Your turn"):
                names.update(re.findall(r"^def (\w+)\(", cell.source, re.MULTILINE))
    assert names == {"log_likelihood_gradient", "predict_visit", "full_matrix",
                     "standard_errors", "vae_loss_one", "odevae_loss_one",
                     "mean_sd", "best_possible_auc"}
