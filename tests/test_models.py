"""Model architecture, loss terms and the ODE solve against exact answers."""

import math

import pytest
import torch

import helpers
from helpers import ODEVAE, VAE, make_batch


@pytest.fixture(scope="module")
def cohort():
    return helpers.simulate_cohort(n=12, seed=3)


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_original():
    assert count(VAE(10)) == 408
    model = ODEVAE(10, 50)
    assert count(model) == 3064
    params = (model.param_hidden, model.param_out, model.param_scale, model.param_shift)
    assert (
        sum(count(m) if hasattr(m, "parameters") else m.numel() for m in params) == 2656
    )


def test_glorot_uniform_weights_and_zero_biases():
    model = ODEVAE(10, 50, seed=1)
    for layer in (model.encoder, model.decoder_mean, model.param_hidden):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.8 * bound  # uniform, not shrunk
        assert torch.count_nonzero(layer.bias) == 0
    assert torch.equal(model.logvar_scale, torch.ones(2))
    assert torch.equal(model.param_shift, torch.zeros(2))


def test_same_seed_same_weights():
    a, b, c = ODEVAE(10, 50, seed=4), ODEVAE(10, 50, seed=4), ODEVAE(10, 50, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.encoder.weight, c.encoder.weight)


def test_log_variance_is_capped_at_zero_before_scale_and_shift():
    model = VAE(4)
    _, logvar = model.encode(torch.randn(50, 4) * 10)
    assert bool((logvar <= 0).all())


def test_ode_parameters_are_bounded_by_the_sigmoid():
    model = ODEVAE(10, 50)
    params = model.ode_params(torch.randn(30, 50) * 100)
    assert params.shape == (30, 2) and bool((params.abs() < 0.5).all())


def test_likelihood_and_kl_against_closed_forms():
    x, mean, logvar = (
        torch.tensor([1.0]),
        torch.tensor([0.5]),
        torch.tensor([math.log(4)]),
    )
    expected = -0.5 * math.log(2 * math.pi * 4) - (0.5**2) / (2 * 4)
    assert helpers.gaussian_log_likelihood(x, mean, logvar).item() == pytest.approx(
        expected
    )
    # KL(N(1, 2^2) || N(0, 1)) = log(1/2) + (4 + 1) / 2 - 1/2
    kl = helpers.kl_to_standard_normal(
        torch.tensor([[1.0]]), torch.tensor([[math.log(4)]])
    )
    assert kl.item() == pytest.approx(math.log(0.5) + 2.5 - 0.5)


def test_solver_matches_the_closed_form_solution():
    model = ODEVAE(10, 50, n_ode_params=4, rtol=1e-9, atol=1e-11)
    z0 = torch.tensor([[1.0, -2.0], [0.5, 0.3]], dtype=torch.float64)
    params = torch.tensor(
        [[-0.3, 0.1, 0.2, 0.25], [0.2, 0.0, 0.0, -0.4]], dtype=torch.float64
    )
    times = torch.linspace(0, 10, 21, dtype=torch.float64)
    model.double()
    numeric = model.solve(z0, params, times)
    model.method = "closed_form"
    exact = model.solve(z0, params, times)
    assert numeric.shape == (21, 2, 2)
    assert torch.allclose(numeric, exact, rtol=1e-7, atol=1e-9)
    for i in range(2):
        reference = helpers.true_states(params[i], z0[i], times)
        assert torch.allclose(exact[:, i], reference, atol=1e-10)


def test_diagonal_closed_form_is_elementwise_exponential():
    model = ODEVAE(10, 50, method="closed_form")
    z0, params = torch.tensor([[2.0, 1.0]]), torch.tensor([[-0.2, 0.2]])
    out = model.solve(z0, params, torch.tensor([0.0, 10.0]))[-1, 0]
    assert torch.allclose(out, torch.tensor([2 * math.exp(-2), math.exp(2)]), rtol=1e-5)


def test_lotka_volterra_conserves_its_invariant():
    model = ODEVAE(
        10,
        50,
        n_ode_params=4,
        dynamics=helpers.lotka_volterra_dynamics,
        rtol=1e-9,
        atol=1e-11,
    ).double()
    alpha, beta, delta, gamma = 1.0, 0.5, 0.4, 0.8
    params = torch.tensor([[alpha, beta, delta, gamma]], dtype=torch.float64)
    path = model.solve(
        torch.tensor([[2.0, 1.0]], dtype=torch.float64),
        params,
        torch.linspace(0, 10, 50, dtype=torch.float64),
    )[:, 0]
    prey, predator = path.unbind(-1)
    invariant = (
        delta * prey - gamma * prey.log() + beta * predator - alpha * predator.log()
    )
    assert invariant.max() - invariant.min() < 1e-6
    assert prey.max() - prey.min() > 0.5  # it really oscillates


def test_gradients_through_the_ode_solve_match_finite_differences():
    model = ODEVAE(4, 3, rtol=1e-10, atol=1e-12).double()
    times = torch.tensor([0.0, 0.7, 1.9, 3.0], dtype=torch.float64)

    def solution(z0, params):
        return model.solve(z0, params, times)

    z0 = torch.tensor(
        [[1.0, -0.5], [0.3, 0.8]], dtype=torch.float64, requires_grad=True
    )
    params = torch.tensor(
        [[-0.3, 0.2], [0.1, -0.4]], dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(solution, (z0, params), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("n_ode_params", [2, 4])
def test_each_visit_on_its_own_clock_matches_the_closed_form(n_ode_params):
    model = ODEVAE(10, 50, n_ode_params=n_ode_params, rtol=1e-9, atol=1e-11)
    model.double()
    rows = torch.Generator().manual_seed(3)
    z0 = torch.randn(7, 2, generator=rows, dtype=torch.float64)
    params = 0.4 * torch.randn(7, n_ode_params, generator=rows, dtype=torch.float64)
    times = torch.tensor([0.0, 0.3, 1.0, 2.5, 2.5, 7.9, 10.0], dtype=torch.float64)
    numeric = model.solve_per_visit(z0, params, times)
    assert numeric.shape == (7, 2)
    assert torch.equal(numeric[0], z0[0])  # a time-0 row does not move
    for k in range(7):
        matrix = params[k] if n_ode_params == 4 else torch.diag(params[k])
        exact = helpers.true_states(matrix, z0[k], times[k : k + 1])[0]
        assert torch.allclose(numeric[k], exact, rtol=1e-7, atol=1e-9)
    model.method = "closed_form"
    assert torch.allclose(
        model.solve_per_visit(z0, params, times), numeric, rtol=1e-7, atol=1e-9
    )


def test_gradients_through_the_per_visit_solve_match_finite_differences():
    model = ODEVAE(4, 3, rtol=1e-10, atol=1e-12).double()
    times = torch.tensor([0.0, 0.7, 1.9, 3.0], dtype=torch.float64)
    z0 = torch.tensor(
        [[1.0, -0.5], [0.3, 0.8], [0.3, 0.8], [-1.0, 0.2]],
        dtype=torch.float64,
        requires_grad=True,
    )
    params = torch.tensor(
        [[-0.3, 0.2], [0.1, -0.4], [0.1, -0.4], [0.25, 0.05]],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(
        lambda z, a: model.solve_per_visit(z, a, times), (z0, params), eps=1e-6,
        atol=1e-5,
    )  # fmt: skip


def test_per_visit_clocks_and_the_union_of_times_give_the_same_loss(cohort):
    model = ODEVAE(cohort.p, cohort.q, rtol=1e-8, atol=1e-10)
    ids = [4, 0, 7, 2, 9]
    union, per_visit = make_batch(cohort, ids), make_batch(cohort, ids, per_visit=True)
    eps = torch.randn(union.x.shape[0], 2, generator=torch.Generator().manual_seed(2))
    on_union = model.loss(union, eps=eps)
    on_clocks = model.loss(per_visit, eps=eps)
    assert on_clocks.item() == pytest.approx(on_union.item(), rel=1e-5)
    # ... and the same gradient
    grads = []
    for batch in (union, per_visit):
        model.zero_grad()
        model.loss(batch, eps=eps).backward()
        grads.append(model.param_out.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_per_visit_batches_keep_their_flag_and_refuse_a_grid(cohort):
    batch = make_batch(cohort, [0, 1], per_visit=True).to(dtype=torch.float64)
    assert batch.per_visit is True and batch.x.dtype == torch.float64
    assert make_batch(cohort, [0, 1]).per_visit is False
    with pytest.raises(ValueError, match="cannot be combined with a grid"):
        make_batch(cohort, [0], grid=torch.linspace(0, 10, 101), per_visit=True)
    with pytest.raises(ValueError, match="per_visit must be True or False"):
        make_batch(cohort, [0], per_visit="yes")


def test_gradient_of_the_whole_loss_matches_finite_differences(cohort):
    model = ODEVAE(cohort.p, cohort.q, rtol=1e-10, atol=1e-12).double()
    batch = make_batch(cohort, [0, 1, 2]).to(dtype=torch.float64)
    eps = torch.randn(
        batch.x.shape[0],
        2,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    weight = model.param_out.weight

    def loss_of(w):
        with torch.no_grad():
            weight.copy_(w)
        return model.loss(batch, eps=eps)

    w0 = weight.detach().clone()
    model.zero_grad()
    model.loss(batch, eps=eps).backward()
    analytic = weight.grad[1, 3].item()
    step = torch.zeros_like(w0)
    step[1, 3] = 1e-5
    numeric = (loss_of(w0 + step).item() - loss_of(w0 - step).item()) / 2e-5
    assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("kind", ["vae", "odevae"])
def test_batched_loss_is_the_sum_of_individual_losses(cohort, kind):
    model = VAE(cohort.p) if kind == "vae" else ODEVAE(cohort.p, cohort.q)
    ids = [4, 0, 7, 2, 9]
    batch = make_batch(cohort, ids)
    eps = torch.randn(batch.x.shape[0], 2, generator=torch.Generator().manual_seed(1))
    sizes = [len(cohort.ts[i]) for i in ids]
    pieces = torch.split(eps, sizes)
    single = sum(
        model.loss(make_batch(cohort, [i]), eps=e) for i, e in zip(ids, pieces)
    )
    assert model.loss(batch, eps=eps).item() == pytest.approx(single.item(), rel=1e-5)


def test_full_grid_and_visit_times_give_the_same_loss(cohort):
    model = ODEVAE(cohort.p, cohort.q)
    grid = torch.linspace(0, 10, 101)
    eps = torch.randn(sum(len(t) for t in cohort.ts[:6]), 2)
    on_visits = model.loss(make_batch(cohort, range(6)), eps=eps)
    on_grid = model.loss(make_batch(cohort, range(6), grid=grid), eps=eps)
    assert on_visits.item() == pytest.approx(on_grid.item(), rel=1e-3)


def test_predict_and_latent_trajectory(cohort):
    model = ODEVAE(cohort.p, cohort.q)
    ts = torch.tensor([0.5, 2.0, 7.5])
    x0, base = cohort.xs[0][0], cohort.baseline[0]
    latent = model.latent_trajectory(x0, base, ts)
    assert latent.shape == (3, 2)
    assert model.predict(x0, base, ts).shape == (3, cohort.p)
    with_zero = model.latent_trajectory(x0, base, torch.tensor([0.0, 0.5, 2.0, 7.5]))
    assert torch.allclose(with_zero[1:], latent, atol=1e-5)
    assert torch.allclose(with_zero[0], model.encode(x0)[0])
    batched = model.latent_paths(
        torch.stack([x0, cohort.xs[1][0]]), cohort.baseline[:2], ts
    )
    assert torch.allclose(batched[:, 0], latent, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m, c: m.predict(c.xs[0][0][:5], c.baseline[0], torch.tensor([1.0])),
            "x0 must have shape",
        ),
        (
            lambda m, c: m.predict(c.xs[0][0], c.baseline[0][:7], torch.tensor([1.0])),
            "baseline must have shape",
        ),
        (
            lambda m, c: m.predict(c.xs[0][0], c.baseline[0], torch.tensor([2.0, 1.0])),
            "strictly increasing",
        ),
        (
            lambda m, c: m.predict(
                c.xs[0][0] * float("nan"), c.baseline[0], torch.tensor([1.0])
            ),
            "NaN",
        ),
        (lambda m, c: m.ode_params(torch.zeros(3, 7)), "baseline must have q=50"),
        (
            lambda m, c: m.loss(make_batch(c, [0]), eps=torch.zeros(1, 2)),
            "eps must have shape",
        ),
    ],
)
def test_bad_model_inputs(cohort, call, message):
    with pytest.raises(ValueError, match=message):
        call(ODEVAE(cohort.p, cohort.q), cohort)


def test_bad_model_construction():
    with pytest.raises(ValueError, match="zdim=2"):
        ODEVAE(10, 50, n_ode_params=3)
    with pytest.raises(ValueError, match="closed_form"):
        ODEVAE(
            10,
            50,
            n_ode_params=4,
            dynamics=helpers.lotka_volterra_dynamics,
            method="closed_form",
        )
    with pytest.raises(ValueError, match="p must be"):
        VAE(0)
    with pytest.raises(ValueError, match="model was built for p=10"):
        VAE(10).loss(make_batch(helpers.simulate_cohort(n=3, p=4, seed=0), [0]))


def wrong_shape_dynamics(t, z, params):
    return z.sum(-1)  # (B,) instead of (B, zdim)


def failing_dynamics(t, z, params):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "dopri"}, r"method must be one of .*'dopri5'.*got 'dopri'"),
        ({"method": "closed-form"}, "method must be one of"),
        ({"rtol": 0.0}, "rtol must be a finite number > 0"),
        ({"rtol": float("nan")}, "rtol must be a finite number > 0"),
        ({"atol": -1e-6}, "atol must be a finite number > 0"),
        ({"atol": "1e-6"}, "atol must be a number"),
        ({"consistency_weight": -1.0}, "consistency_weight must be .* >= 0"),
        ({"consistency_weight": float("inf")}, "consistency_weight must be a finite"),
        ({"kl_weight": float("nan")}, "kl_weight must be a finite number >= 0"),
        ({"penalty_weight": -0.01}, "penalty_weight must be a finite number >= 0"),
        (
            {"dynamics": helpers.lotka_volterra_dynamics},
            "lotka_volterra_dynamics needs zdim=2 and n_ode_params=4",
        ),
        (
            {"dynamics": helpers.lotka_volterra_dynamics, "zdim": 3, "n_ode_params": 4},
            "lotka_volterra_dynamics needs zdim=2 and n_ode_params=4.*got zdim=3",
        ),
        (
            {"dynamics": wrong_shape_dynamics},
            (
                r"dynamics wrong_shape_dynamics must return a tensor of shape "
                r"\(B, zdim\) = \(2, 2\).*got shape \(2,\)"
            ),
        ),
        (
            {"dynamics": lambda t, z, params: 0.0},
            r"dynamics <lambda> must return a tensor .* got float",
        ),
        (
            {"dynamics": failing_dynamics, "zdim": 3, "n_ode_params": 1},
            r"dynamics failing_dynamics failed .* \(2, 3\).*RuntimeError: boom",
        ),
    ],
)
def test_bad_odevae_settings_are_refused_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ODEVAE(10, 50, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kl_weight": -0.5}, "kl_weight must be a finite number >= 0, got -0.5"),
        ({"kl_weight": float("inf")}, "kl_weight must be a finite number"),
        ({"penalty_weight": float("nan")}, "penalty_weight must be a finite number"),
        ({"penalty_weight": True}, "penalty_weight must be a number"),
    ],
)
def test_bad_vae_weights_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAE(10, **kwargs)


def test_good_settings_are_kept_and_every_solver_name_is_accepted():
    from torchdiffeq._impl.odeint import SOLVERS

    assert set(helpers.models.METHODS) == set(SOLVERS) | {"closed_form"}
    model = ODEVAE(10, 50, method="rk4", rtol=1e-5, atol=1e-8, consistency_weight=0,
                   kl_weight=0, penalty_weight=0.0)  # fmt: skip
    assert (model.method, model.rtol, model.atol) == ("rk4", 1e-5, 1e-8)
    assert model.kl_weight == model.penalty_weight == model.consistency_weight == 0
    lotka_volterra = ODEVAE(
        10, 50, n_ode_params=4, dynamics=helpers.lotka_volterra_dynamics
    )
    assert lotka_volterra.dynamics is helpers.lotka_volterra_dynamics


def test_a_custom_dynamics_of_the_right_shape_is_used_by_the_solver():
    calls = []

    def decay(t, z, params):
        calls.append(tuple(z.shape))
        return -params[:, :1] * z  # (B, 3)

    model = ODEVAE(10, 50, zdim=3, n_ode_params=1, dynamics=decay, rtol=1e-9,
                   atol=1e-11).double()  # fmt: skip
    assert calls == [(2, 3)]  # checked once, on two zero rows
    z0 = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    rate = torch.tensor([[0.5]], dtype=torch.float64)
    out = model.solve(z0, rate, torch.tensor([0.0, 2.0], dtype=torch.float64))
    assert torch.allclose(out[-1], z0 * math.exp(-1.0), rtol=1e-7)


def test_ode_params_refuse_nan_and_extra_dimensions_but_take_one_row():
    model = ODEVAE(10, 50)
    baseline = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.ode_params(baseline[1]), model.ode_params(baseline)[1])
    assert model.ode_params(baseline[1]).shape == (2,)
    with pytest.raises(ValueError, match="baseline contains NaN"):
        model.ode_params(torch.where(baseline > 1.5, float("nan"), baseline))
    with pytest.raises(ValueError, match=r"baseline must have shape \(n, q\) or"):
        model.ode_params(baseline.reshape(2, 2, 50))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        model.ode_params(torch.tensor(1.0))


def test_encode_and_decode_check_the_last_dimension():
    model = VAE(10, zdim=3)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., p\) with p=10"):
        model.encode(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        model.encode(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"zdim=3 in its last dimension.*\(5, 2\)"):
        model.decode(torch.zeros(5, 2))
    mean, logvar = model.decode(model.encode(torch.zeros(2, 5, 10))[0])
    assert mean.shape == logvar.shape == (2, 5, 10)
