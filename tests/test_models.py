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


def test_initialise_redraws_the_constructors_weights_and_keeps_the_names():
    model, fresh = ODEVAE(10, 50, seed=4), ODEVAE(10, 50, seed=9)
    fresh.initialise(4)
    assert list(fresh.state_dict()) == list(model.state_dict()) == [
        "logvar_scale", "logvar_shift", "param_scale", "param_shift",
        "encoder.weight", "encoder.bias",
        "encoder_mean.weight", "encoder_mean.bias", "encoder_logvar.weight",
        "encoder_logvar.bias", "decoder.weight", "decoder.bias",
        "decoder_mean.weight", "decoder_mean.bias", "decoder_logvar.weight",
        "decoder_logvar.bias", "param_hidden.weight", "param_hidden.bias",
        "param_out.weight", "param_out.bias",
    ]  # fmt: skip
    assert all(torch.equal(model.state_dict()[k], v)
               for k, v in fresh.state_dict().items())  # fmt: skip
    vae = VAE(10, seed=2)
    with torch.no_grad():
        vae.logvar_shift.fill_(3.0)
    vae.initialise(2)
    assert all(torch.equal(a, b) for a, b in zip(vae.parameters(),
                                                 VAE(10, seed=2).parameters()))


def rows_and_exact(n_ode_params):
    """Seven rows (z0, params, time), float64, with their exact solutions."""
    rows = torch.Generator().manual_seed(3)
    z0 = torch.randn(7, 2, generator=rows, dtype=torch.float64)
    params = 0.4 * torch.randn(7, n_ode_params, generator=rows, dtype=torch.float64)
    times = torch.tensor([0.0, 0.3, 1.0, 2.5, 2.5, 7.9, 10.0], dtype=torch.float64)
    exact = []
    for k in range(7):
        matrix = params[k] if n_ode_params == 4 else torch.diag(params[k])
        exact.append(helpers.true_states(matrix, z0[k], times[k : k + 1])[0])
    return z0, params, times, torch.stack(exact)


@pytest.mark.parametrize("n_ode_params", [2, 4])
@pytest.mark.parametrize(
    ("method", "tolerance"), [("dopri5", 1e-7), ("closed_form", 1e-9)]
)
def test_each_row_on_its_own_clock_matches_the_closed_form(
    n_ode_params, method, tolerance
):
    model = ODEVAE(10, 50, n_ode_params=n_ode_params, method=method, rtol=1e-9,
                   atol=1e-11).double()  # fmt: skip
    z0, params, times, exact = rows_and_exact(n_ode_params)
    numeric = model.solve(z0, params, times)
    assert numeric.shape == (7, 2)
    assert torch.equal(numeric[0], z0[0])  # a time-0 row does not move
    assert torch.allclose(numeric, exact, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_default_solve_is_exact_at_extreme_rates_and_times(dtype):
    """The old default (rk4, four steps per visit) gave 194 for exp(-1.5 * 10)
    = 3.1e-7; the closed form is exact at every rate the model can reach."""
    model = ODEVAE(10, 50).to(dtype)
    assert model.method == "closed_form"
    rates = torch.tensor([-1.5, -1.0, -0.5, -0.2, 0.3], dtype=dtype)
    for t in (10.0, 15.0):
        params = torch.stack([rates, rates.flip(0)], -1)  # (5, 2)
        z0 = torch.ones(5, 2, dtype=dtype)
        numeric = model.solve(z0, params, torch.full((5,), t, dtype=dtype))
        exact = torch.tensor(
            [[math.exp(a * t), math.exp(b * t)] for a, b in params.tolist()],
            dtype=torch.float64,
        )
        rtol = 1e-12 if dtype == torch.float64 else 2e-5
        assert torch.allclose(numeric.double(), exact, rtol=rtol, atol=0)


def test_the_full_matrix_closed_form_matches_a_damped_rotation():
    """A = [[a, -w], [w, a]] turns z0 = (1, 0) into exp(a t) (cos w t, sin w t)."""
    model = ODEVAE(10, 50, n_ode_params=4).double()
    a, w = -1.5, 2.0
    params = torch.tensor([[a, -w, w, a]] * 3, dtype=torch.float64)
    times = torch.tensor([0.0, 10.0, 15.0], dtype=torch.float64)
    z0 = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    exact = torch.stack(
        [torch.exp(a * times) * torch.cos(w * times),
         torch.exp(a * times) * torch.sin(w * times)], -1
    )  # fmt: skip
    assert torch.allclose(model.solve(z0, params, times), exact, rtol=1e-9, atol=1e-15)


def test_fixed_step_solvers_stay_stable_at_extreme_rates():
    """rk4 steps at most MAX_STEP in real time: at a = -1.5 and t = 15 the
    path decays (the old four steps per visit grew to 194 at t = 10)."""
    model = ODEVAE(10, 50, method="rk4").double()
    times = torch.tensor([2.5, 10.0, 15.0], dtype=torch.float64)
    params = torch.tensor([[-1.5, -0.2]] * 3, dtype=torch.float64)
    numeric = model.solve(torch.ones(3, 2, dtype=torch.float64), params, times)
    exact = torch.exp(times[:, None] * params)
    assert bool((numeric > 0).all()) and bool((numeric[1:, 0] < numeric[:-1, 0]).all())
    assert torch.allclose(numeric[:, 0], exact[:, 0], rtol=0.15, atol=0)
    assert torch.allclose(numeric[:, 1], exact[:, 1], rtol=1e-4)


# relative error allowed at rates -0.5 and 0.2 up to t = 4 (low-order fixed-step
# solvers with steps of MAX_STEP = 0.5 are rough, but stable)
ALLOWED_ERROR = {"closed_form": 1e-12, "euler": 0.3, "midpoint": 0.03, "heun2": 0.03}


@pytest.mark.parametrize("method", helpers.models.METHODS)
def test_every_solver_in_the_table_solves_a_decay_and_stays_stable(method):
    model = ODEVAE(4, 3, method=method, rtol=1e-4, atol=1e-7).double()
    params = torch.tensor([[-0.5, 0.2], [-1.5, -1.5], [-1.5, -1.5]],
                          dtype=torch.float64)  # fmt: skip
    times = torch.tensor([4.0, 10.0, 15.0], dtype=torch.float64)
    numeric = model.solve(torch.ones(3, 2, dtype=torch.float64), params, times)
    exact = torch.exp(times[0] * params[0])
    allowed = ALLOWED_ERROR.get(method, 1e-2)
    assert torch.allclose(numeric[0], exact, rtol=allowed, atol=0)
    late = numeric[1:, 0]  # exp(-15) = 3.1e-7 and exp(-22.5) = 1.7e-10
    assert bool((late.abs() < 1e-4).all())  # the old default gave 194 at t = 10


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_gradients_through_the_solve_match_finite_differences(method):
    model = ODEVAE(4, 3, method=method, rtol=1e-10, atol=1e-12).double()
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
        lambda z, a: model.solve(z, a, times), (z0, params), eps=1e-6, atol=1e-5,
    )  # fmt: skip


def test_batches_move_to_a_dtype_and_keep_their_integer_indices(cohort):
    batch = make_batch(cohort, [0, 1]).to(dtype=torch.float64)
    assert batch.x.dtype == batch.t.dtype == torch.float64
    assert batch.owner.dtype == torch.int64 and batch.is_follow_up.dtype == torch.bool
    assert batch.t[batch.first_row].tolist() == [0.0, 0.0]


def test_gradient_of_the_whole_loss_matches_finite_differences(cohort):
    model = ODEVAE(cohort.p, cohort.q).double()
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


def test_latent_trajectory_and_paths(cohort):
    model = ODEVAE(cohort.p, cohort.q)
    ts = torch.tensor([0.5, 2.0, 7.5])
    x0, base = cohort.xs[0][0], cohort.baseline[0]
    latent = model.latent_trajectory(x0, base, ts)
    assert latent.shape == (3, 2)
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
            lambda m, c: m.latent_trajectory(
                c.xs[0][0][:5], c.baseline[0], torch.tensor([1.0])
            ),
            "x0 must have shape",
        ),
        (
            lambda m, c: m.latent_trajectory(
                c.xs[0][0], c.baseline[0][:7], torch.tensor([1.0])
            ),
            "baseline must have shape",
        ),
        (
            lambda m, c: m.latent_trajectory(
                c.xs[0][0], c.baseline[0], torch.tensor([-1.0])
            ),
            "ts must be times >= 0",
        ),
        (
            lambda m, c: m.latent_trajectory(
                c.xs[0][0] * float("nan"), c.baseline[0], torch.tensor([1.0])
            ),
            "NaN",
        ),
    ],
)
def test_bad_prediction_inputs(cohort, call, message):
    with pytest.raises(ValueError, match=message):
        call(ODEVAE(cohort.p, cohort.q), cohort)


def test_bad_model_construction():
    with pytest.raises(ValueError, match="zdim=2"):
        ODEVAE(10, 50, n_ode_params=3)
    with pytest.raises(ValueError, match="closed_form"):
        ODEVAE(10, 50, dynamics=broken_dynamics, method="closed_form")
    with pytest.raises(ValueError, match="p must be"):
        VAE(0)
    with pytest.raises(ValueError, match="model was built for p=10"):
        helpers.train(VAE(10), helpers.simulate_cohort(n=3, p=4, seed=0))


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
        ({"zdim": 3}, "linear_dynamics needs zdim=2 .*got zdim=3"),
        ({"method": "scipy_solver"}, "method must be one of"),
        ({"dynamics": "linear"}, "dynamics must be a function"),
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


def test_good_settings_are_kept():
    model = ODEVAE(10, 50, method="rk4", rtol=1e-5, atol=1e-8, consistency_weight=0,
                   kl_weight=0, penalty_weight=0.0)  # fmt: skip
    assert (model.method, model.rtol, model.atol) == ("rk4", 1e-5, 1e-8)
    assert model.kl_weight == model.penalty_weight == model.consistency_weight == 0
    custom = ODEVAE(10, 50, dynamics=broken_dynamics)
    assert custom.dynamics is broken_dynamics and custom.method == "dopri5"


def test_a_custom_dynamics_is_used_by_the_solver():
    def decay(t, z, params):
        return -params[:, :1] * z  # (B, 3)

    model = ODEVAE(10, 50, zdim=3, n_ode_params=1, dynamics=decay, method="dopri5",
                   rtol=1e-9, atol=1e-11).double()  # fmt: skip
    z0 = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    rate = torch.tensor([[0.5]], dtype=torch.float64)
    out = model.solve(z0, rate, torch.tensor([2.0], dtype=torch.float64))
    assert torch.allclose(out, z0 * math.exp(-1.0), rtol=1e-7)


def broken_dynamics(t, z, params):
    return z @ params  # (B, 2) @ (B, 2): the learner meant params * z


def test_an_error_in_a_learners_dynamics_surfaces_with_their_line(cohort):
    model = ODEVAE(cohort.p, cohort.q, dynamics=broken_dynamics)
    with pytest.raises(RuntimeError) as raised:
        model.loss(make_batch(cohort, [0, 1, 2]))
    line = broken_dynamics.__code__.co_firstlineno + 1
    assert any(entry.name == "broken_dynamics" and entry.lineno + 1 == line
               for entry in raised.traceback)  # fmt: skip
