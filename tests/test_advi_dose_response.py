"""Tests of helpers/bonus/advi_dose_response.py and of the ADVI notebook's
"your turn" cells: the log density against an independent computation
(torch.distributions, and PyMC where installed), the ELBO against a Monte
Carlo reference, log q and k-hat, recovery on a small simulation, bad input,
and each check cell against its solution and typical mistakes."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import build_notebooks
from helpers.bonus import advi_dose_response as dr

D = torch.distributions


def small_data(n_groups=4, seed=3):
    return dr.simulate(n_groups=n_groups, n_doses=5, n_replicates=2, seed=seed)


def random_params(data, family, seed=0):
    """Variational parameters away from the starting values."""
    generator = torch.Generator().manual_seed(seed)
    params = dr.init_variational(data, family)
    with torch.no_grad():
        for value in params.values():
            value.add_(0.1 * torch.randn(value.shape, generator=generator))
    return params


def reference_log_density(theta, globals_, data):
    """The model's log joint density written with torch.distributions."""
    mu, log_tau, log_sigma = globals_[:4], globals_[4:8], globals_[8]
    tau, sigma = log_tau.exp(), log_sigma.exp()
    total = D.Normal(0.0, dr.PRIOR_MU_SD).log_prob(mu).sum()
    total += D.HalfNormal(1.0).log_prob(tau).sum() + log_tau.sum()  # + Jacobian
    total += D.HalfNormal(1.0).log_prob(sigma) + log_sigma
    total += D.Normal(mu, tau).log_prob(theta).sum()
    rows = theta[data.group]
    bottom, top, log_ic50, hill = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3].exp()
    mean = bottom + (top - bottom) / (1 + torch.exp(hill * (data.log_dose - log_ic50)))
    return total + D.Normal(mean, sigma).log_prob(data.response).sum()


def test_log_density_equals_an_independent_computation():
    data, truth = small_data()
    generator = torch.Generator().manual_seed(1)
    theta = truth.theta + 0.2 * torch.randn(3, data.n_groups, 4, generator=generator)
    globals_ = torch.randn(3, 9, generator=generator)
    got = dr.log_density(theta, globals_, data)
    for s in range(3):
        expected = reference_log_density(theta[s], globals_[s], data)
        torch.testing.assert_close(got[s], expected, rtol=1e-5, atol=1e-3)


def test_log_density_matches_pymc_on_its_unconstrained_coordinates():
    pm = pytest.importorskip("pymc")
    data, truth = small_data(n_groups=3)
    model = dr.pymc_model(data)
    logp = model.compile_logp()
    generator = torch.Generator().manual_seed(2)
    theta = (truth.theta + 0.1 * torch.randn(3, 4, generator=generator)).double()
    globals_ = torch.randn(9, generator=generator, dtype=torch.float64)
    point = {"mu": globals_[:4].numpy(), "tau_log__": globals_[4:8].numpy(),
             "sigma_log__": globals_[8].numpy(), "theta": theta.numpy()}
    expected = float(logp(point))
    got = dr.log_density(theta[None].float(), globals_[None].float(), data)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert isinstance(model, pm.Model)


def test_mini_batches_average_to_the_full_log_density():
    data, truth = small_data()
    theta, globals_ = truth.theta[None], torch.zeros(1, 9)
    full = dr.log_density(theta, globals_, data)
    order = torch.randperm(len(data.response), generator=torch.Generator()
                           .manual_seed(0))
    chunks = order.reshape(4, -1)  # 40 rows in 4 equal batches
    batched = torch.stack([dr.log_density(theta, globals_, data, batch)
                           for batch in chunks])
    torch.testing.assert_close(batched.mean(0), full, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("family", dr.FAMILIES)
def test_entropy_is_the_gaussian_closed_form(family):
    data, _ = small_data(n_groups=3)
    params = random_params(data, family)
    _, _, entropy = dr.draw(params, family, 1)
    expected = D.MultivariateNormal(
        torch.zeros(9), scale_tril=dr.cholesky(params["global_scale"], family)
    ).entropy()
    for factor in dr.cholesky(params["scale"], family):
        expected = expected + D.MultivariateNormal(
            torch.zeros(4), scale_tril=factor).entropy()
    torch.testing.assert_close(entropy, expected)


@pytest.mark.parametrize("family", dr.FAMILIES)
def test_elbo_agrees_with_a_monte_carlo_reference(family):
    """The ELBO from 4,000 reparameterised draws vs an independent estimate:
    draws from torch.distributions' Gaussian, the reference density, and its
    closed-form entropy; they agree within four Monte Carlo standard errors."""
    data, _ = small_data(n_groups=2)
    params = random_params(data, family)
    with torch.no_grad():
        got = dr.elbo(params, data, family, n_samples=4000,
                      generator=torch.Generator().manual_seed(5))
        factor = dr.cholesky(params["scale"], family)
        group_q = D.MultivariateNormal(params["loc"], scale_tril=factor)
        global_q = D.MultivariateNormal(params["global_loc"], scale_tril=dr.cholesky(
            params["global_scale"], family))
        torch.manual_seed(6)
        values = torch.stack([
            reference_log_density(group_q.sample(), global_q.sample(), data)
            for _ in range(4000)])
        reference = (values.mean() + group_q.entropy().sum() + global_q.entropy())
    standard_error = values.std() / math.sqrt(4000)
    assert abs(got - reference) < 4 * math.sqrt(2) * standard_error


def test_cholesky_of_the_mean_field_family_is_diagonal():
    raw = torch.randn(5, 4, 4)
    factor = dr.cholesky(raw, "meanfield")
    assert torch.equal(factor, torch.diag_embed(factor.diagonal(dim1=-2, dim2=-1)))
    full = dr.cholesky(raw, "fullrank")
    assert torch.equal(full.triu(1), torch.zeros(5, 4, 4))
    assert (full.diagonal(dim1=-2, dim2=-1) > 0).all()


def test_summaries_read_standard_deviations_off_the_covariance():
    data, _ = small_data(n_groups=3)
    params = random_params(data, "fullrank")
    summary = dr.summarise(params, "fullrank", level=0.9)
    factor = dr.cholesky(params["scale"], "fullrank")
    covariance = factor @ factor.transpose(-1, -2)
    sd = covariance.diagonal(dim1=-2, dim2=-1).sqrt()
    torch.testing.assert_close(summary["sd"], sd)
    torch.testing.assert_close(summary["upper"] - summary["mean"], 1.6448536 * sd)
    lower = torch.zeros(2, 4)
    upper = torch.tensor([[1.0, 1, 1, 1], [1, 1, -1, -1]])
    truth = torch.full((2, 4), 0.5)
    np.testing.assert_allclose(dr.coverage(lower, upper, truth), [1, 1, 0.5, 0.5])


def test_simulation_has_the_stated_sizes_and_is_seeded():
    data, truth = dr.simulate(n_groups=7, n_doses=3, n_replicates=2, seed=4)
    assert data.response.shape == (42,) and data.n_groups == 7
    assert torch.equal(torch.bincount(data.group), torch.full((7,), 6))
    assert truth.theta.shape == (7, 4)
    again, _ = dr.simulate(n_groups=7, n_doses=3, n_replicates=2, seed=4)
    assert torch.equal(data.response, again.response)
    other, _ = dr.simulate(n_groups=7, n_doses=3, n_replicates=2, seed=5)
    assert not torch.equal(data.response, other.response)


def test_subset_keeps_and_renumbers_the_chosen_groups():
    data, _ = small_data(n_groups=5)
    part = dr.subset(data, [3, 1])
    assert part.n_groups == 2
    torch.testing.assert_close(part.response[part.group == 0],
                               data.response[data.group == 3])
    torch.testing.assert_close(part.response[part.group == 1],
                               data.response[data.group == 1])


def test_fits_repeat_under_a_seed_and_mini_batches_run():
    data, _ = small_data(n_groups=5)
    _, first = dr.fit_advi(data, "meanfield", n_steps=20, progress=False, seed=1)
    _, second = dr.fit_advi(data, "meanfield", n_steps=20, progress=False, seed=1)
    np.testing.assert_array_equal(first, second)
    _, batched = dr.fit_advi(data, "fullrank", n_steps=20, batch_size=16,
                             progress=False)
    assert np.isfinite(batched).all()


def test_full_rank_advi_recovers_a_small_simulation():
    data, truth = dr.simulate(n_groups=60, seed=11)
    params, history = dr.fit_advi(data, "fullrank", n_steps=1500, progress=False,
                                  seed=12)
    assert history[-100:].mean() > history[:100].mean()
    summary = dr.summarise(params, "fullrank")
    # Population means within 3 posterior standard deviations of the truth.
    error = (summary["global_mean"][:4] - truth.mu).abs()
    assert (error < 3 * summary["global_sd"][:4] + 0.02).all(), error
    # Residual noise and population scales close to the truth.
    assert summary["global_mean"][8].exp().item() == pytest.approx(
        truth.sigma, rel=0.05)
    tau = summary["global_mean"][4:8].exp()
    torch.testing.assert_close(tau, truth.tau, rtol=0.35, atol=0.0)
    # 90% intervals hold the true group parameters for most groups.
    assert (dr.coverage(summary["lower"], summary["upper"], truth.theta) >= 0.7).all()


# --- bad input -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinite_responses_are_refused(bad):
    response = torch.tensor([0.1, bad, 0.3])
    with pytest.raises(ValueError, match="response contains NaN or infinite"):
        dr.make_data([0.0, 1.0, 2.0], response, [0, 0, 1])
    with pytest.raises(ValueError, match="log_dose contains NaN or infinite"):
        dr.make_data(response, [0.1, 0.2, 0.3], [0, 0, 1])


@pytest.mark.parametrize(("group", "n_groups", "index"), [
    ([0, 1, 2], 2, "2"), ([0, -1, 1], 2, "-1"), ([0, 5, 1], None, None)])
def test_group_index_out_of_range_is_refused(group, n_groups, index):
    if index is None:  # n_groups from the data: every index is in range
        assert dr.make_data([0.0, 1, 2], [0.1, 0.2, 0.3], group).n_groups == 6
        return
    with pytest.raises(ValueError, match=f"group index {index} is out of range"):
        dr.make_data([0.0, 1, 2], [0.1, 0.2, 0.3], group, n_groups=n_groups)


def test_group_must_be_whole_numbers_one_per_observation():
    with pytest.raises(ValueError, match="group must hold 3 whole numbers"):
        dr.make_data([0.0, 1, 2], [0.1, 0.2, 0.3], [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="group must hold 3 whole numbers"):
        dr.make_data([0.0, 1, 2], [0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="response must have shape"):
        dr.make_data([0.0, 1, 2], [0.1, 0.2], [0, 1, 1])


@pytest.mark.parametrize("argument", ["n_groups", "n_doses", "n_replicates"])
@pytest.mark.parametrize("value", [0, -3])
def test_simulation_sizes_below_one_are_refused(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be an integer >= 1, "
                                         f"got {value}"):
        dr.simulate(**{argument: value})


def test_empty_data_and_zero_groups_are_refused():
    with pytest.raises(ValueError, match="at least 1 observation"):
        dr.make_data([], [], [])
    with pytest.raises(ValueError, match="n_groups must be an integer >= 1, got 0"):
        dr.make_data([0.0], [0.1], [0], n_groups=0)


@pytest.mark.parametrize(("keyword", "value", "message"), [
    ("n_steps", 0, "n_steps must be an integer >= 1, got 0"),
    ("n_samples", 0, "n_samples must be an integer >= 1, got 0"),
    ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
    ("lr", 0.0, "lr must be a finite number > 0.0"),
    ("family", "diagonal", "family must be one of"),
])
def test_fit_settings_are_checked(keyword, value, message):
    data, _ = small_data()
    with pytest.raises(ValueError, match=message):
        dr.fit_advi(data, **{keyword: value}, progress=False)


# --- log q, k-hat and the non-centred PyMC model --------------------------------


@pytest.mark.parametrize("family", dr.FAMILIES)
def test_log_q_equals_torch_distributions(family):
    data, _ = small_data(n_groups=3)
    params = random_params(data, family)
    with torch.no_grad():
        theta, globals_, _ = dr.draw(params, family, 5,
                                     torch.Generator().manual_seed(3))
        got = dr.log_q(params, family, theta, globals_)
        groups = D.MultivariateNormal(
            params["loc"], scale_tril=dr.cholesky(params["scale"], family))
        global_q = D.MultivariateNormal(
            params["global_loc"],
            scale_tril=dr.cholesky(params["global_scale"], family))
        expected = groups.log_prob(theta).sum(-1) + global_q.log_prob(globals_)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def test_khat_is_small_when_q_is_the_posterior_and_large_when_it_is_not():
    """Tiny model with one group whose posterior is nearly Gaussian: q at a
    fitted ADVI solution gives a moderate k-hat; q shrunk 5-fold (far too
    narrow) gives a k-hat above 0.7, as Yao et al. (2018) describe."""
    pytest.importorskip("arviz")
    data, _ = dr.simulate(n_groups=2, n_doses=9, n_replicates=15, seed=4)
    params, _ = dr.fit_advi(data, "fullrank", n_steps=1500, seed=1,
                            progress=False)
    good = dr.psis_khat(params, "fullrank", data, n_draws=2000, seed=2)
    narrow = {name: value.clone() for name, value in params.items()}
    for name in ("scale", "global_scale"):
        diagonal = narrow[name].diagonal(dim1=-2, dim2=-1)
        diagonal -= math.log(5.0)  # a view: every sd divided by 5
    bad = dr.psis_khat(narrow, "fullrank", data, n_draws=2000, seed=2)
    assert bad > 0.7
    assert good < bad
    again = dr.psis_khat(params, "fullrank", data, n_draws=2000, seed=2)
    assert again == good


def test_noncentred_pymc_model_has_the_same_posterior_density():
    """theta = mu + tau z: the non-centred log density equals the centred one
    plus the log Jacobian sum(log tau) per group (dtheta/dz = tau)."""
    pytest.importorskip("pymc")
    data, truth = small_data(n_groups=3)
    centred = dr.pymc_model(data).compile_logp()
    noncentred = dr.pymc_model(data, "noncentred").compile_logp()
    mu, log_tau = np.array([0.1, 0.9, 0.2, -0.1]), np.array([-2.0, -1.5, 0.1, -1.0])
    theta = truth.theta.double().numpy()
    z = (theta - mu) / np.exp(log_tau)
    common = {"mu": mu, "tau_log__": log_tau, "sigma_log__": np.log(0.1)}
    got = float(noncentred({**common, "z": z}))
    expected = float(centred({**common, "theta": theta})) + 3 * log_tau.sum()
    assert got == pytest.approx(expected, rel=1e-9)


def test_pymc_parameterisation_is_checked():
    data, _ = small_data()
    with pytest.raises(ValueError, match="parameterisation must be one of"):
        dr.pymc_model(data, "non-centered")


# --- the notebook's "your turn" cells -------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks" / "advi_dose_response.py"


def notebook_code():
    cells = build_notebooks.parse_source(SOURCE.read_text("utf-8"), SOURCE.name)
    return [cell.source for cell in cells if cell.kind == "code"], cells


def your_turn(name):
    """``(namespace, stub, check, solution)`` of the cell defining ``name``;
    the namespace holds every code cell before the stub, run in order."""
    code, cells = notebook_code()
    (index,) = [i for i, source in enumerate(code)
                if source.startswith("# Your turn") and f"def {name}(" in source]
    assert code[index + 1].startswith("# Check")
    namespace = {}
    for source in code[:index]:
        exec(source, namespace)  # noqa: S102 - notebook cells, run as in Jupyter
    blocks = build_notebooks.hidden_solutions(cells, name)
    assert len(blocks) == 1, f"one hidden solution for {name}"
    return namespace, code[index], code[index + 1], blocks[0]


def verdict(namespace, definition, check):
    exec(definition, namespace)  # noqa: S102
    exec(check, namespace)  # noqa: S102
    return namespace["verdict"]


@pytest.fixture(scope="module")
def entropy_cells():
    plt = pytest.importorskip("matplotlib.pyplot")
    cells = your_turn("meanfield_entropy")
    plt.close("all")
    return cells


ENTROPY_WRONG = {
    "wrong shape (no sum)": """\
def meanfield_entropy(log_sd):
    return log_sd + 0.5 * (1 + math.log(2 * math.pi))
""",
    "wrong sign": """\
def meanfield_entropy(log_sd):
    return (-log_sd + 0.5 * (1 + math.log(2 * math.pi))).sum()
""",
    "near miss: the constant without its 1/2": """\
def meanfield_entropy(log_sd):
    return (log_sd + 0.5 * math.log(2 * math.pi)).sum()
""",
    "wrong type: a string": """\
def meanfield_entropy(log_sd):
    return "entropy"
""",
}


def test_entropy_check_says_not_yet_for_the_stub(entropy_cells):
    namespace, stub, check, _ = entropy_cells
    assert verdict(dict(namespace), stub, check).startswith("Not yet")


def test_entropy_check_accepts_the_solution_and_other_correct_forms(entropy_cells):
    namespace, _, check, solution = entropy_cells
    answer = verdict(dict(namespace), solution, check)
    assert answer.startswith("Right"), answer
    others = [
        """\
def meanfield_entropy(log_sd):
    d = log_sd.numel()
    return float(log_sd.sum() + d / 2 * (1 + np.log(2 * np.pi)))
""",
        """\
def meanfield_entropy(log_sd):
    normal = torch.distributions.Normal(torch.zeros_like(log_sd), log_sd.exp())
    return normal.entropy().sum().reshape(1)
""",
    ]
    for other in others:
        answer = verdict(dict(namespace), other, check)
        assert answer.startswith("Right"), answer
    # the solution itself is the closed form: against torch.distributions
    solved = dict(namespace)
    exec(solution, solved)  # noqa: S102
    log_sd = torch.randn(7, dtype=torch.float64)
    torch.testing.assert_close(
        solved["meanfield_entropy"](log_sd),
        D.Normal(0.0, log_sd.exp()).entropy().sum())


@pytest.mark.parametrize("mistake", ENTROPY_WRONG)
def test_entropy_check_says_wrong_for_typical_mistakes(entropy_cells, mistake):
    namespace, _, check, _ = entropy_cells
    answer = verdict(dict(namespace), ENTROPY_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)
    if mistake == "wrong sign":
        assert "sign" in answer


@pytest.fixture(scope="module")
def step_cells():
    plt = pytest.importorskip("matplotlib.pyplot")
    cells = your_turn("elbo_step")
    plt.close("all")
    return cells


STEP_WRONG = {
    "wrong sign: minimises the ELBO": """\
def elbo_step(params, optimiser, generator):
    optimiser.zero_grad()
    loss = elbo(params, data, "fullrank", 1, generator)
    loss.backward()
    optimiser.step()
    return loss.item()
""",
    "near miss: no zero_grad": """\
def elbo_step(params, optimiser, generator):
    loss = -elbo(params, data, "fullrank", 1, generator)
    loss.backward()
    optimiser.step()
    return -loss.item()
""",
    "returns the loss, not the ELBO": """\
def elbo_step(params, optimiser, generator):
    optimiser.zero_grad()
    loss = -elbo(params, data, "fullrank", 1, generator)
    loss.backward()
    optimiser.step()
    return loss.item()
""",
    "wrong type: returns the parameters": """\
def elbo_step(params, optimiser, generator):
    optimiser.zero_grad()
    loss = -elbo(params, data, "fullrank", 1, generator)
    loss.backward()
    optimiser.step()
    return params
""",
    "no step taken": """\
def elbo_step(params, optimiser, generator):
    return elbo(params, data, "fullrank", 1, generator).item()
""",
}


def test_step_check_says_not_yet_for_the_stub(step_cells):
    namespace, stub, check, _ = step_cells
    assert verdict(dict(namespace), stub, check).startswith("Not yet")


def test_step_check_accepts_the_solution_and_other_correct_forms(step_cells):
    namespace, _, check, solution = step_cells
    answer = verdict(dict(namespace), solution, check)
    assert answer.startswith("Right"), answer
    other = """\
def elbo_step(params, optimiser, generator):
    for value in params.values():
        value.grad = None
    estimate = elbo(params, data, "fullrank", 1, generator)
    (-estimate).backward()
    optimiser.step()
    return estimate.detach()
"""
    answer = verdict(dict(namespace), other, check)
    assert answer.startswith("Right"), answer


@pytest.mark.parametrize("mistake", STEP_WRONG)
def test_step_check_says_wrong_for_typical_mistakes(step_cells, mistake):
    namespace, _, check, _ = step_cells
    answer = verdict(dict(namespace), STEP_WRONG[mistake], check)
    assert answer.startswith("Wrong"), (mistake, answer)
    expected_hint = {"wrong sign: minimises the ELBO": "sign",
                     "near miss: no zero_grad": "zero_grad",
                     "returns the loss, not the ELBO": "returned"}
    if mistake in expected_hint:
        assert expected_hint[mistake] in answer, answer


def test_the_by_hand_loop_waits_for_a_right_step(step_cells):
    namespace, stub, check, solution = step_cells
    code, _ = notebook_code()
    loop = code[code.index(check) + 1]
    assert loop.startswith("# Runs your elbo_step")
    waiting = dict(namespace)
    verdict(waiting, stub, check)
    exec(loop, waiting)  # noqa: S102 - must not run the stub
    assert "by_hand" not in waiting
    solved = dict(namespace)
    verdict(solved, solution, check)
    exec(loop, solved)  # noqa: S102
    assert len(solved["by_hand"]) == 100
    assert np.mean(solved["by_hand"][-10:]) > np.mean(solved["by_hand"][:10])
