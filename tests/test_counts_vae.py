"""Tests of helpers.bonus.counts_vae and the "your turn" cells of
bonus/Counts_VAE.ipynb: likelihoods against torch.distributions and hand
computations, the shipped counts, the model, importance sampling, metrics."""

import importlib.util
import math
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch

import build_notebooks
from helpers.bonus import counts_vae as cv

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[1]
F64 = torch.float64


def random_parameters(shape, seed=0):
    """Counts with many zeros, means, dispersions, zero logits; float64."""
    generator = torch.Generator().manual_seed(seed)
    mean = torch.rand(shape, generator=generator, dtype=F64) * 6 + 0.01
    dispersion = torch.rand(shape, generator=generator, dtype=F64) * 4 + 0.05
    logits = torch.randn(shape, generator=generator, dtype=F64) * 2
    x = torch.poisson(mean, generator=generator) * torch.bernoulli(
        torch.full(shape, 0.7, dtype=F64), generator=generator)
    return x, mean, dispersion, logits


@pytest.fixture(scope="module")
def data():
    return cv.load_pbmc()


# --- likelihoods -------------------------------------------------------------------


def test_nb_equals_torch_distributions():
    x, mean, dispersion, _ = random_parameters((50, 40))
    expected = torch.distributions.NegativeBinomial(
        dispersion, probs=mean / (mean + dispersion)).log_prob(x)
    torch.testing.assert_close(cv.nb_log_prob(x, mean, dispersion), expected)
    assert (x == 0).any() and (x > 5).any()


def test_nb_with_one_dispersion_per_gene_has_torch_distributions_gradients():
    # the fast path: log-gamma terms only at positive counts, dispersion (genes,)
    x, mean, _, _ = random_parameters((60, 30), seed=3)
    generator = torch.Generator().manual_seed(4)
    for counts in (x, torch.zeros_like(x), x + 1):  # some, no and only positives
        log_dispersion = torch.randn(30, generator=generator, dtype=F64)
        grads = []
        for log_prob in (
                lambda d, c=counts: cv.nb_log_prob(c, mean, d),
                lambda d, c=counts: torch.distributions.NegativeBinomial(
                    d, probs=mean / (mean + d)).log_prob(c)):
            theta = log_dispersion.clone().requires_grad_()
            value = log_prob(theta.exp())
            assert value.shape == counts.shape
            grads.append((value, torch.autograd.grad(value.sum(), theta)[0]))
        torch.testing.assert_close(grads[0][0], grads[1][0])
        torch.testing.assert_close(grads[0][1], grads[1][1])
    poisson = cv.poisson_log_prob(torch.tensor(3.0), torch.tensor([[1.0], [2.0]]))
    torch.testing.assert_close(
        poisson, torch.distributions.Poisson(torch.tensor([[1.0], [2.0]])).log_prob(
            torch.tensor(3.0)))


def test_zinb_equals_the_mixture_from_torch_distributions():
    x, mean, dispersion, logits = random_parameters((50, 40), seed=1)
    nb = torch.distributions.NegativeBinomial(
        dispersion, probs=mean / (mean + dispersion)).log_prob(x).exp()
    pi = torch.sigmoid(logits)
    expected = torch.log(torch.where(x == 0, pi, 0.0) + (1 - pi) * nb)
    torch.testing.assert_close(cv.zinb_log_prob(x, mean, dispersion, logits),
                               expected)


def test_zero_counts_by_hand():
    # NB(0; mean 2, theta 1) = (1 / 3)^1; ZINB with pi = 1/2: 1/2 + 1/6 = 2/3
    args = torch.tensor(0.0, dtype=F64), torch.tensor(2.0, dtype=F64)
    theta = torch.tensor(1.0, dtype=F64)
    assert cv.nb_log_prob(*args, theta).exp().item() == pytest.approx(1 / 3)
    zinb = cv.zinb_log_prob(*args, theta, torch.tensor(0.0, dtype=F64))
    assert zinb.exp().item() == pytest.approx(2 / 3)
    # theta 2, mean 1: (2/3)^2; one count: 2 * (2/3)^2 * (1/3)
    theta, mean = torch.tensor(2.0, dtype=F64), torch.tensor(1.0, dtype=F64)
    assert cv.nb_log_prob(args[0], mean, theta).exp().item() == pytest.approx(4 / 9)
    one = cv.nb_log_prob(torch.tensor(1.0, dtype=F64), mean, theta).exp()
    assert one.item() == pytest.approx(8 / 27)


def test_poisson_equals_torch_distributions():
    x, mean, _, _ = random_parameters((30, 20), seed=2)
    torch.testing.assert_close(cv.poisson_log_prob(x, mean),
                               torch.distributions.Poisson(mean).log_prob(x))


def test_discretised_gaussian_is_a_probability_of_counts():
    k = torch.arange(0, 4000, dtype=F64)[:, None]
    mean = torch.tensor([[-1.0, 0.0, 0.7, 2.5, 5.0]], dtype=F64)
    log_sd = torch.tensor([[0.0, -1.0, -0.5, 0.0, -2.0]], dtype=F64)
    log_prob = cv.discretised_gaussian_log_prob(k, mean, log_sd)
    torch.testing.assert_close(log_prob.exp().sum(0), torch.ones(5, dtype=F64))
    normal = torch.distributions.Normal(mean, log_sd.exp())
    bins = normal.cdf(torch.log(k[1:20] + 1.5)) - normal.cdf(torch.log(k[1:20] + 0.5))
    torch.testing.assert_close(log_prob[1:20].exp(), bins)
    zero = normal.cdf(torch.tensor(math.log(1.5), dtype=F64))
    torch.testing.assert_close(log_prob[0].exp(), zero[0])


def test_discretised_gaussian_has_finite_gradients_in_both_tails():
    x = torch.tensor([0.0, 1.0, 3.0, 200.0, 0.0], dtype=F64)
    mean = torch.tensor([4.0, -3.0, 8.0, 0.0, -6.0], dtype=F64, requires_grad=True)
    log_sd = torch.full((5,), -1.5, dtype=F64, requires_grad=True)
    log_prob = cv.discretised_gaussian_log_prob(x, mean, log_sd)
    assert torch.isfinite(log_prob).all()
    log_prob.sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_sd.grad).all()


def test_kl_equals_torch_distributions():
    mean = torch.randn(7, 3, dtype=F64)
    variance = torch.rand(7, 3, dtype=F64) + 0.1
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, variance.sqrt()),
        torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(cv.kl_to_standard_normal(mean, variance), expected)


# --- data ---------------------------------------------------------------------------


def test_shipped_counts_are_counts(data):
    counts = data.counts
    assert counts.shape == (700, 765) and len(data.genes) == 765
    assert torch.equal(counts, counts.round()) and counts.min() == 0
    assert counts.sum(1).min() > 0
    assert counts[counts > 0].min() == 1
    assert list(data.cells.columns) == ["barcode", "bulk_labels", "louvain",
                                        "n_counts"]
    assert data.cells["bulk_labels"].nunique() == 10
    assert data.cells["louvain"].nunique() == 11
    # the 765 genes are a subset of each cell's genes: never more than n_counts
    assert (counts.sum(1).numpy() <= data.cells["n_counts"].to_numpy()).all()


@pytest.mark.skipif(importlib.util.find_spec("scanpy") is None,
                    reason="scanpy is not installed: the shipped counts cannot be "
                    "rebuilt here (pip install scanpy to run this test)")
def test_shipped_counts_equal_the_rebuild_from_scanpy(data):
    counts, cells, genes = cv.counts_from_scanpy()
    assert np.array_equal(data.counts.numpy(), counts)
    assert genes == data.genes
    # the CSV stores float32 n_counts as float64 and labels as plain strings
    pd.testing.assert_frame_equal(data.cells, cells, check_dtype=False)


def test_rebuild_inverts_log_normalisation():
    counts = np.array([[0, 3, 1, 7], [2, 0, 0, 1]])
    n_counts = np.array([40.0, 9.0])  # totals over all genes, more than these
    log_normalised = np.log1p(counts * 1e4 / n_counts[:, None]).astype(np.float32)
    assert np.array_equal(cv.rebuild_counts(log_normalised, n_counts), counts)
    with pytest.raises(ValueError, match="nearest integer"):
        cv.rebuild_counts(log_normalised + 0.3, n_counts)


@pytest.mark.parametrize("bad, message", [
    ([[1.0, -1.0]], r"counts\[0, 1\] = -1.0 is negative"),
    ([[1.0, 2.5]], r"counts\[0, 1\] = 2.5 is not a whole number"),
    ([[1.0, float("nan")]], "is not finite"),
    ([[1.0, 2.0], [0.0, 0.0]], "cell 1 of counts has library size 0"),
    ([1.0, 2.0], "2-D"),
])
def test_bad_counts_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        cv.check_counts(torch.tensor(bad))
    model = cv.CountsVAE(len(bad[0]) if isinstance(bad[0], list) else 2)
    with pytest.raises(ValueError, match=message):
        cv.marginal_log_likelihood(model, torch.tensor(bad), 2)


def test_stratified_split(data):
    labels = data.cells["bulk_labels"]
    train, heldout = cv.stratified_split(labels, 0.1, seed=3)
    assert len(train) + len(heldout) == 700
    assert not set(train.tolist()) & set(heldout.tolist())
    shares = labels.iloc[heldout.numpy()].value_counts() / labels.value_counts()
    assert shares.dropna().between(0.05, 0.16).all()
    again = cv.stratified_split(labels, 0.1, seed=3)
    assert torch.equal(again[1], heldout)
    assert not torch.equal(cv.stratified_split(labels, 0.1, seed=4)[1], heldout)
    with pytest.raises(ValueError, match="heldout_share"):
        cv.stratified_split(labels, 1.5)


# --- the model and training --------------------------------------------------------


@pytest.mark.parametrize("likelihood", cv.LIKELIHOODS)
def test_model_is_deterministic_under_seed(likelihood, data):
    counts = data.counts[:64]
    first, second = (cv.CountsVAE(765, likelihood=likelihood, seed=5).eval()
                     for _ in range(2))
    eps = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    loss = first.loss(counts, eps=eps)
    torch.testing.assert_close(loss, second.loss(counts, eps=eps))
    other = cv.CountsVAE(765, likelihood=likelihood, seed=6).eval()
    assert not torch.allclose(loss, other.loss(counts, eps=eps))


def test_loss_equals_the_elbo_written_with_torch_distributions(data):
    counts = data.counts[:32]
    model = cv.CountsVAE(765, likelihood="zinb", seed=1).eval()
    eps = torch.randn(32, 10, generator=torch.Generator().manual_seed(0))
    mean, variance = model.encode(counts)
    z = mean + variance.sqrt() * eps
    params = model.decode(z, counts.sum(1, keepdim=True))
    nb = torch.distributions.NegativeBinomial(
        params["dispersion"], probs=params["mean"] / (params["mean"]
                                                     + params["dispersion"]))
    pi = torch.sigmoid(params["zero_logits"])
    likelihood = torch.log(torch.where(counts == 0, pi, 0.0)
                           + (1 - pi) * nb.log_prob(counts).exp()).sum(1)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, variance.sqrt()),
        torch.distributions.Normal(0.0, 1.0)).sum(1)
    expected = -(likelihood - 0.3 * kl).mean()
    torch.testing.assert_close(model.loss(counts, 0.3, eps=eps), expected,
                               rtol=1e-4, atol=1e-3)
    # the decoder's means add up to each cell's library size
    torch.testing.assert_close(params["mean"].sum(1), counts.sum(1))


def test_training_is_repeatable_and_lowers_the_loss(data):
    cells = torch.arange(200)
    runs = []
    for _ in range(2):
        model = cv.CountsVAE(765, likelihood="nb", seed=2)
        runs.append(cv.train(model, data.counts, cells[:180], cells[180:], epochs=6,
                             batch_size=64, kl_warmup=6, seed=9, progress=False))
    assert runs[0][["train", "heldout"]].equals(runs[1][["train", "heldout"]])
    assert runs[0]["train"].iloc[-1] < runs[0]["train"].iloc[0]
    assert list(runs[0]["kl_weight"]) == [0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]


@pytest.mark.parametrize("name, value, message", [
    ("epochs", 0, "epochs must be an integer >= 1, got 0"),
    ("lr", -0.1, "lr must be a finite number > 0.0"),
    ("batch_size", 1.5, "batch_size must be an integer >= 2"),
])
def test_train_rejects_bad_settings(data, name, value, message):
    model = cv.CountsVAE(765)
    with pytest.raises(ValueError, match=message):
        cv.train(model, data.counts, torch.arange(10), **{name: value},
                 progress=False)


def test_model_rejects_bad_settings():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        cv.CountsVAE(10, likelihood="normal")
    with pytest.raises(ValueError, match="n_latent must be an integer >= 1"):
        cv.CountsVAE(10, n_latent=0)


def test_sampled_counts_are_counts_with_the_models_means(data):
    counts = data.counts[:100]
    model = cv.CountsVAE(765, likelihood="nb", seed=0).eval()
    simulated = torch.stack([cv.sample_counts(model, counts, seed=s)
                             for s in range(40)])
    assert torch.equal(simulated, simulated.round()) and simulated.min() >= 0
    assert torch.equal(cv.sample_counts(model, counts, seed=3), simulated[3])
    for likelihood in ("zinb", "poisson", "gaussian"):
        other = cv.CountsVAE(765, likelihood=likelihood).eval()
        draw = cv.sample_counts(other, counts)
        assert draw.shape == counts.shape and torch.equal(draw, draw.round())
    # averaged over draws of z and x, each cell's total is near its library
    totals = simulated.sum(2).mean(0)
    assert ((totals / counts.sum(1) - 1).abs() < 0.1).float().mean() > 0.9


# --- importance sampling --------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(data):
    """A briefly trained NB model with one latent dimension, and 4 cells."""
    model = cv.CountsVAE(765, n_latent=1, likelihood="nb", seed=0)
    cv.train(model, data.counts, torch.arange(300), epochs=10, kl_warmup=5,
             progress=False)
    return model, data.counts[300:304]


def test_one_sample_estimates_the_elbo(trained):
    model, counts = trained
    draws = torch.stack([cv.marginal_log_likelihood(model, counts, 1, seed=s)
                         for s in range(200)])  # (200, 4)
    with torch.no_grad():
        elbo = torch.stack([torch.stack([-model.loss(counts[i:i + 1])
                                         for _ in range(200)]).mean()
                            for i in range(len(counts))])
    spread = draws.std(0) / math.sqrt(200) + 0.05
    assert ((draws.mean(0) - elbo.double()).abs() < 4 * spread).all()


def test_importance_sampling_converges_to_the_exact_marginal(trained):
    model, counts = trained
    # one latent dimension: log p(x) = log of an integral over z, by quadrature
    grid = torch.linspace(-6, 6, 4001)[:, None]
    exact = []
    with torch.no_grad():
        for x in counts:
            params = model.decode(grid, x.sum().expand(len(grid), 1))
            log_joint = (model.log_likelihood(x.expand(len(grid), -1), params)
                         .double() - 0.5 * grid[:, 0].double() ** 2
                         - 0.5 * math.log(2 * math.pi))
            exact.append(torch.logsumexp(log_joint, 0) + math.log(12 / 4000))
    exact = torch.stack(exact)
    errors = [(cv.marginal_log_likelihood(model, counts, k, seed=1) - exact).abs()
              for k in (1, 10, 100, 1000, 5000)]
    means = [error.mean().item() for error in errors]
    assert means[0] > means[1] > means[2] > means[3] > means[4]
    assert means[3] > means[4] and errors[4].max() < 0.3


# --- metrics against closed forms (scikit-learn gives the same) -----------------------


def test_silhouette_by_hand():
    points = [[0.0], [1.0], [10.0], [11.0]]
    # a = 1 for everyone; b = 10.5 for the outer points, 9.5 for the inner ones
    expected = np.mean([(10.5 - 1) / 10.5, (9.5 - 1) / 9.5] * 2)
    assert cv.silhouette(points, ["a", "a", "b", "b"]) == pytest.approx(expected)
    # a cell alone in its label counts as 0 (scikit-learn's convention)
    lone = cv.silhouette([[0.0], [1.0], [50.0]], [0, 0, 1])
    assert lone == pytest.approx((49 / 50 + 48 / 49) / 3)


def test_ari_and_nmi_by_hand():
    # scikit-learn's documented values for these labellings: 0.5714..., 0.8
    assert cv.adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert cv.normalised_mutual_information([0, 0, 1, 1], [0, 0, 1, 2]) == (
        pytest.approx(0.8))
    assert cv.adjusted_rand_index(list("aabbc"), [2, 2, 0, 0, 1]) == 1.0
    assert cv.normalised_mutual_information(list("aabbc"), [2, 2, 0, 0, 1]) == (
        pytest.approx(1.0))


def test_clustering_and_neighbours_find_separated_groups():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(90, 3, generator=generator, dtype=F64)
    labels = np.repeat(["x", "y", "z"], 30)
    points[30:60, 0] += 12
    points[60:, 1] += 12
    clusters = cv.kmeans(points, 3, seed=1)
    assert cv.adjusted_rand_index(labels, clusters) == 1.0
    assert cv.knn_accuracy(points, labels, k=5) == 1.0
    metrics = cv.latent_metrics(points, labels)
    assert metrics["silhouette"] > 0.7 and metrics["NMI"] == 1.0


def test_pca_matches_the_eigenvectors_of_the_covariance():
    generator = torch.Generator().manual_seed(1)
    data = torch.randn(200, 4, generator=generator, dtype=F64) * torch.tensor(
        [5.0, 2.0, 1.0, 0.5], dtype=F64)
    scores = cv.pca(data, 2)
    variances = scores.var(0)
    eigenvalues = torch.linalg.eigvalsh(torch.cov(data.T)).flip(0)[:2]
    torch.testing.assert_close(variances, eigenvalues)


# --- the notebook's "your turn" cells ---------------------------------------------

SOURCE = ROOT / "notebooks" / "counts_vae.py"


def cells():
    return build_notebooks.parse_source(SOURCE.read_text(encoding="utf-8"),
                                        SOURCE.name)


def your_turn(name):
    """``(code before the stub, stub, check)`` of the cell defining ``name``."""
    code = [cell.source for cell in cells() if cell.kind == "code"]
    (index,) = [i for i, source in enumerate(code)
                if source.startswith("# Your turn") and f"def {name}(" in source]
    assert code[index + 1].startswith("# Check")
    return code[:index], code[index], code[index + 1]


def solution(name):
    blocks = build_notebooks.hidden_solutions(cells(), name)
    assert blocks, f"no solution for {name}"
    return blocks[0]


@pytest.fixture(scope="module")
def namespace_before():
    """The notebook's namespace up to the first your-turn cell (data, NB)."""
    before, _, _ = your_turn("zinb_log_prob")
    namespace = {}
    for source in before:
        if "plt.subplots" in source:
            continue  # figures are not needed here
        exec(source, namespace)  # noqa: S102 - notebook cells, run as in Jupyter
    return namespace


def verdict(namespace, definition, check):
    namespace = dict(namespace)
    exec(definition, namespace)  # noqa: S102
    exec(check, namespace)  # noqa: S102
    return namespace["verdict"]


ZINB_WRONG = {
    "wrong shape (summed over genes)": """\
def zinb_log_prob(x, mean, dispersion, zero_logits):
    return cv.zinb_log_prob(x, mean, dispersion, zero_logits).sum(1)
""",
    "wrong sign (pi and 1 - pi swapped)": """\
def zinb_log_prob(x, mean, dispersion, zero_logits):
    return cv.zinb_log_prob(x, mean, dispersion, -zero_logits)
""",
    "near miss (no 1 - pi on the zero branch)": """\
def zinb_log_prob(x, mean, dispersion, zero_logits):
    nb = nb_log_prob(x, mean, dispersion)
    pi = torch.sigmoid(zero_logits)
    return torch.where(x == 0, torch.log(pi + nb.exp()), torch.log(1 - pi) + nb)
""",
    "a list, not a tensor": """\
def zinb_log_prob(x, mean, dispersion, zero_logits):
    return [0.0]
""",
}

ZINB_RIGHT = """\
def zinb_log_prob(x, mean, dispersion, zero_logits):
    pi = torch.sigmoid(zero_logits)
    nb = nb_log_prob(x, mean, dispersion).exp()
    return torch.log(torch.where(x == 0, pi + (1 - pi) * nb, (1 - pi) * nb))
"""


def test_zinb_check_says_not_yet_for_the_stub(namespace_before):
    _, stub, check = your_turn("zinb_log_prob")
    assert verdict(namespace_before, stub, check).startswith("Not yet")


@pytest.mark.parametrize("answer", ["solution", "another way"])
def test_zinb_check_accepts_right_answers(namespace_before, answer):
    _, _, check = your_turn("zinb_log_prob")
    code = solution("zinb_log_prob") if answer == "solution" else ZINB_RIGHT
    result = verdict(namespace_before, code, check)
    assert result.startswith("Right"), result


@pytest.mark.parametrize("mistake", ZINB_WRONG)
def test_zinb_check_rejects_mistakes(namespace_before, mistake):
    _, _, check = your_turn("zinb_log_prob")
    result = verdict(namespace_before, ZINB_WRONG[mistake], check)
    assert result.startswith("Wrong"), (mistake, result)


LIBRARY_WRONG = {
    "wrong shape (one number per cell)": """\
def expected_counts(shares, counts):
    return counts.sum(1) * shares.sum(1)
""",
    "library over genes, not cells (counts.sum(0))": """\
def expected_counts(shares, counts):
    return counts.sum(0) * shares
""",
    "near miss: the log library, as scvi-tools stores it": """\
def expected_counts(shares, counts):
    return counts.sum(1, keepdim=True).log() * shares
""",
    "a NumPy array": """\
def expected_counts(shares, counts):
    return (counts.sum(1, keepdim=True) * shares).numpy()
""",
}

LIBRARY_RIGHT = """\
def expected_counts(shares, counts):
    return torch.einsum("c,cg->cg", counts.sum(dim=1), shares)
"""


def test_library_check_says_not_yet_for_the_stub(namespace_before):
    _, stub, check = your_turn("expected_counts")
    assert verdict(namespace_before, stub, check).startswith("Not yet")


@pytest.mark.parametrize("answer", ["solution", "another way"])
def test_library_check_accepts_right_answers(namespace_before, answer):
    _, _, check = your_turn("expected_counts")
    code = solution("expected_counts") if answer == "solution" else LIBRARY_RIGHT
    result = verdict(namespace_before, code, check)
    assert result.startswith("Right"), result


@pytest.mark.parametrize("mistake", LIBRARY_WRONG)
def test_library_check_rejects_mistakes(namespace_before, mistake):
    _, _, check = your_turn("expected_counts")
    result = verdict(namespace_before, LIBRARY_WRONG[mistake], check)
    assert result.startswith("Wrong"), (mistake, result)
