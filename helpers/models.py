"""The VAE and the ODE-VAE of Part II (notebook sections "A VAE" and "The ODE-VAE").

Both follow the original workshop's architecture: a one-layer encoder to a
Gaussian latent space, a one-layer decoder to a Gaussian likelihood, and for
the ODE-VAE a network that maps the baseline variables to each individual's
ODE parameters. The latent means at the follow-up visits come from solving the
latent ODE from the baseline visit's latent mean.
"""

import math

import torch
from torch import nn
from torchdiffeq import odeint

from ._checks import check_choice, check_float, check_int, check_tensor
from .batching import Batch

LOG_2PI = math.log(2 * math.pi)

try:  # torchdiffeq's table of solver names (private, but stable for years)
    from torchdiffeq._impl.odeint import SOLVERS as _TORCHDIFFEQ_SOLVERS
except ImportError:  # pragma: no cover - a future torchdiffeq moved it
    _TORCHDIFFEQ_SOLVERS = (
        "dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun", "euler",
        "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams",
        "fixed_adams", "scipy_solver",
    )  # fmt: skip
METHODS = (*sorted(_TORCHDIFFEQ_SOLVERS), "closed_form")
"""Allowed ``method`` of :class:`ODEVAE`: torchdiffeq's solvers and ``closed_form``."""
ADAPTIVE_METHODS = ("dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun")
# A fitted model needs a handful of adaptive steps per solve. Runaway weights
# (a far too large learning rate) make the latent system stiff, and the solver
# would then creep on for minutes while memory fills; stop it instead.
MAX_SOLVER_STEPS = 1000


def linear_dynamics(t, z, params):
    """Right-hand side of the linear system ``z' = A z``, batched.

    Args:
        t: time (unused: the system is autonomous); a scalar, or ``(B, 1)``
            when every row runs on its own clock (``solve_per_visit``).
        z: ``(B, 2)`` latent states.
        params: ``(B, 2)`` diagonal ``(a11, a22)`` or ``(B, 4)`` full matrix
            ``(a11, a12, a21, a22)`` per individual.

    Returns:
        ``(B, 2)`` time derivatives.
    """
    if params.shape[-1] == 2:
        return params * z
    matrices = params.reshape(-1, 2, 2)  # (B, 2, 2), row-wise entries
    return (matrices @ z.unsqueeze(-1)).squeeze(-1)


def lotka_volterra_dynamics(t, z, params):
    """Right-hand side of the Lotka-Volterra system, batched.

    ``z1' = alpha z1 - beta z1 z2`` and ``z2' = delta z1 z2 - gamma z2``.

    Args:
        t: time (unused); a scalar or ``(B, 1)``.
        z: ``(B, 2)`` latent states.
        params: ``(B, 4)`` columns ``alpha, beta, delta, gamma``.

    Returns:
        ``(B, 2)`` time derivatives.
    """
    alpha, beta, delta, gamma = params.unbind(-1)
    prey, predator = z.unbind(-1)
    interaction = prey * predator
    return torch.stack(
        [alpha * prey - beta * interaction, delta * interaction - gamma * predator], -1
    )


# What a right-hand side of the wrong size typically raises (torch: RuntimeError,
# unpacking: ValueError, indexing: IndexError, ...); reported as a bad argument.
_USER_CODE_ERRORS = (
    ArithmeticError,
    AttributeError,
    LookupError,
    RuntimeError,
    TypeError,
    ValueError,
)


def _check_dynamics(dynamics, zdim: int, n_ode_params: int) -> None:
    """Call ``dynamics`` once on zero states and check the shape it returns.

    Two rows ``z`` ``(2, zdim)`` and ``params`` ``(2, n_ode_params)`` at the
    scalar time 0 (as the solver passes it); raise a ``ValueError`` naming
    ``dynamics`` if the call fails or does not return ``(2, zdim)``.
    """
    z, params = torch.zeros(2, zdim), torch.zeros(2, n_ode_params)
    name = getattr(dynamics, "__name__", repr(dynamics))
    try:
        with torch.no_grad():
            result = dynamics(torch.tensor(0.0), z, params)
    except _USER_CODE_ERRORS as error:
        raise ValueError(
            f"dynamics {name} failed when called as f(t, z, params) with z of shape "
            f"(B, zdim) = (2, {zdim}) and params of shape (B, n_ode_params) = "
            f"(2, {n_ode_params}): {type(error).__name__}: {error}"
        ) from None
    shape = tuple(result.shape) if isinstance(result, torch.Tensor) else None
    if shape != (2, zdim):
        got = f"shape {shape}" if shape is not None else type(result).__name__
        raise ValueError(
            f"dynamics {name} must return a tensor of shape (B, zdim) = (2, {zdim}) "
            f"for z of shape (2, {zdim}) and params of shape (2, {n_ode_params}), "
            f"got {got}"
        )


def _glorot_uniform_(weight: torch.Tensor, generator: torch.Generator) -> None:
    fan_out, fan_in = weight.shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> nn.Linear:
    _glorot_uniform_(layer.weight, generator)
    nn.init.zeros_(layer.bias)
    return layer


def gaussian_log_likelihood(x, mean, logvar):
    """Elementwise ``log N(x | mean, exp(logvar))``, same shape as ``x``."""
    return -0.5 * ((x - mean) ** 2 / logvar.exp() + logvar + LOG_2PI)


def kl_to_standard_normal(mean, logvar):
    """``KL(N(mean, exp(logvar)) || N(0, I))`` per row: shape ``mean.shape[:-1]``."""
    return 0.5 * (logvar.exp() + mean**2 - 1.0 - logvar).sum(-1)


class VAE(nn.Module):
    """Variational autoencoder for single visits (notebook section "A VAE").

    Encoder ``h = tanh(W x + b) + 1``; latent mean ``Linear(h)``; latent
    log-variance ``scale * (-relu(Linear(h))) + shift``. Decoder
    ``tanh(Linear(z))`` followed by linear heads for the mean and the
    log-variance of a Gaussian likelihood. Glorot-uniform weights, zero biases.

    Args:
        p: number of time-dependent variables.
        zdim: latent dimension.
        seed: seed of the initial weights.
        kl_weight: weight of the KL term in the loss (0.5 in the original),
            finite and >= 0.
        penalty_weight: weight of the squared decoder parameters (0.01),
            finite and >= 0.

    Raises:
        ValueError: if an argument is not of the allowed type or range.
    """

    def __init__(
        self,
        p: int,
        zdim: int = 2,
        seed: int = 0,
        kl_weight: float = 0.5,
        penalty_weight: float = 0.01,
    ):
        super().__init__()
        check_int("p", p, minimum=1)
        check_int("zdim", zdim, minimum=1)
        generator = torch.Generator().manual_seed(check_int("seed", seed))
        kl_weight = check_float("kl_weight", kl_weight, minimum=0)
        penalty_weight = check_float("penalty_weight", penalty_weight, minimum=0)
        self.p, self.zdim = p, zdim
        self.kl_weight, self.penalty_weight = kl_weight, penalty_weight
        self.encoder = _init_linear(nn.Linear(p, p), generator)
        self.encoder_mean = _init_linear(nn.Linear(p, zdim), generator)
        self.encoder_logvar = _init_linear(nn.Linear(p, zdim), generator)
        self.logvar_scale = nn.Parameter(torch.ones(zdim))
        self.logvar_shift = nn.Parameter(torch.zeros(zdim))
        self.decoder = _init_linear(nn.Linear(zdim, p), generator)
        self.decoder_mean = _init_linear(nn.Linear(p, p), generator)
        self.decoder_logvar = _init_linear(nn.Linear(p, p), generator)

    def encode(self, x):
        """Latent mean and log-variance of visits.

        Args:
            x: ``(..., p)`` visits (moved to the model's device and dtype).

        Returns:
            ``(mean, logvar)``, each ``(..., zdim)``.

        Raises:
            ValueError: if the last dimension of ``x`` is not ``p``.
        """
        x = torch.as_tensor(x).to(self.encoder.weight)  # the model's device and dtype
        if x.dim() == 0 or x.shape[-1] != self.p:
            raise ValueError(
                f"x must have shape (..., p) with p={self.p} variables in its last "
                f"dimension, got shape {tuple(x.shape)}"
            )
        hidden = torch.tanh(self.encoder(x)) + 1.0
        logvar = -torch.relu(self.encoder_logvar(hidden))
        return self.encoder_mean(hidden), self.logvar_scale * logvar + self.logvar_shift

    def decode(self, z):
        """Mean and log-variance of the likelihood of latent points.

        Args:
            z: ``(..., zdim)`` latent points (moved to the model's device and dtype).

        Returns:
            ``(mean, logvar)``, each ``(..., p)``.

        Raises:
            ValueError: if the last dimension of ``z`` is not ``zdim``.
        """
        z = torch.as_tensor(z).to(self.decoder.weight)
        if z.dim() == 0 or z.shape[-1] != self.zdim:
            raise ValueError(
                f"z must have shape (..., zdim) with zdim={self.zdim} in its last "
                f"dimension, got shape {tuple(z.shape)}"
            )
        hidden = torch.tanh(self.decoder(z))
        return self.decoder_mean(hidden), self.decoder_logvar(hidden)

    def decoder_penalty(self):
        """Sum of squares of all decoder parameters (weights and biases)."""
        modules = (self.decoder, self.decoder_mean, self.decoder_logvar)
        return sum((w**2).sum() for m in modules for w in m.parameters())

    def _check_batch(self, batch: Batch) -> None:
        if not isinstance(batch, Batch):
            raise ValueError(
                f"batch must be a Batch from make_batch, got {type(batch)}"
            )
        if batch.x.shape[-1] != self.p:
            raise ValueError(
                f"the data have p={batch.x.shape[-1]} variables but the model "
                f"was built for p={self.p}"
            )

    def _noise(self, shape, eps, generator, like):
        if eps is None:
            return torch.randn(shape, generator=generator).to(like)
        if tuple(eps.shape) != tuple(shape):
            raise ValueError(
                f"eps must have shape {tuple(shape)}, got {tuple(eps.shape)}"
            )
        return eps.to(like)

    def negative_elbo(self, x, latent_mean, latent_logvar, eps=None, generator=None):
        """Sum over visits of ``-(log p(x|z) - kl_weight * KL)``.

        ``z = latent_mean + exp(latent_logvar / 2) * eps`` (reparameterisation).

        Args:
            x: ``(N, p)`` visits.
            latent_mean, latent_logvar: ``(N, zdim)``.
            eps: optional ``(N, zdim)`` standard-normal draws.
            generator: random generator used when ``eps`` is None.

        Returns:
            A scalar tensor.
        """
        eps = self._noise(latent_mean.shape, eps, generator, latent_mean)
        z = latent_mean + torch.exp(0.5 * latent_logvar) * eps
        mean, logvar = self.decode(z)
        log_likelihood = gaussian_log_likelihood(x, mean, logvar).sum()
        kl = kl_to_standard_normal(latent_mean, latent_logvar).sum()
        return -(log_likelihood - self.kl_weight * kl)

    def loss(self, batch: Batch, eps=None, generator=None):
        """Sum over the batch's individuals of the per-individual VAE loss.

        Each individual contributes ``-ELBO`` summed over its visits plus
        ``penalty_weight * ||decoder parameters||^2``.

        Args:
            batch: stacked visits from :func:`helpers.make_batch`.
            eps: optional ``(N, zdim)`` noise for the reparameterisation.
            generator: random generator used when ``eps`` is None.

        Returns:
            A scalar tensor.
        """
        self._check_batch(batch)
        mean, logvar = self.encode(batch.x)
        negative_elbo = self.negative_elbo(batch.x, mean, logvar, eps, generator)
        return negative_elbo + batch.size * self.penalty_weight * self.decoder_penalty()


class ODEVAE(VAE):
    """VAE whose latent means follow an ODE with individual parameters.

    A parameter network maps the ``q`` baseline variables to ``n_ode_params``
    ODE parameters: ``Linear(q, q)`` with tanh, ``Linear(q, k)`` with
    ``sigmoid(.) - 0.5``, then a trainable elementwise scale and shift
    (notebook section "The ODE-VAE").

    Args:
        p: number of time-dependent variables.
        q: number of baseline variables.
        zdim: latent dimension.
        n_ode_params: ODE parameters per individual (2: diagonal of ``A``;
            4: the full 2x2 matrix, or the four Lotka-Volterra rates).
        dynamics: right-hand side ``f(t, z, params)`` with ``z`` ``(B, zdim)``
            and ``params`` ``(B, n_ode_params)``, returning ``(B, zdim)``;
            default :func:`linear_dynamics` (``zdim = 2``, ``n_ode_params`` 2
            or 4). :func:`lotka_volterra_dynamics` needs ``zdim = 2`` and
            ``n_ode_params = 4``. A custom function is called once here on
            zero states to check the shape of what it returns.
        seed: seed of the initial weights.
        method: a torchdiffeq solver name (default ``"dopri5"``; see
            :data:`METHODS`), or ``"closed_form"`` for ``z(t) = exp(A t) z0``
            (linear dynamics only).
        rtol, atol: solver tolerances (the original's 1e-3 and 1e-6), finite
            and > 0.
        consistency_weight: weight of ``||mu_smooth - mu_encoder||^2``,
            finite and >= 0.
        kl_weight, penalty_weight: as in :class:`VAE`.

    Raises:
        ValueError: if an argument is not of the allowed type or range, or
            ``dynamics`` does not fit ``zdim`` and ``n_ode_params``.
    """

    def __init__(
        self,
        p: int,
        q: int,
        zdim: int = 2,
        n_ode_params: int = 2,
        dynamics=linear_dynamics,
        seed: int = 0,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-6,
        consistency_weight: float = 1.0,
        kl_weight: float = 0.5,
        penalty_weight: float = 0.01,
    ):
        super().__init__(p, zdim, seed, kl_weight, penalty_weight)
        check_int("q", q, minimum=1)
        check_int("n_ode_params", n_ode_params, minimum=1)
        if not callable(dynamics):
            raise ValueError(
                f"dynamics must be a function f(t, z, params), got {dynamics!r}"
            )
        if dynamics is linear_dynamics and (zdim != 2 or n_ode_params not in (2, 4)):
            raise ValueError(
                "linear_dynamics needs zdim=2 and n_ode_params 2 (diagonal) or 4 "
                f"(full matrix), got zdim={zdim}, n_ode_params={n_ode_params}"
            )
        if dynamics is lotka_volterra_dynamics and (zdim != 2 or n_ode_params != 4):
            raise ValueError(
                "lotka_volterra_dynamics needs zdim=2 and n_ode_params=4 (alpha, "
                f"beta, delta, gamma), got zdim={zdim}, n_ode_params={n_ode_params}"
            )
        check_choice("method", method, METHODS)
        if method == "closed_form" and dynamics is not linear_dynamics:
            raise ValueError("method='closed_form' needs dynamics=linear_dynamics")
        rtol = check_float("rtol", rtol, minimum=0, strict=True)
        atol = check_float("atol", atol, minimum=0, strict=True)
        consistency_weight = check_float(
            "consistency_weight", consistency_weight, minimum=0
        )
        _check_dynamics(dynamics, zdim, n_ode_params)
        self.q, self.n_ode_params, self.dynamics = q, n_ode_params, dynamics
        self.method, self.rtol, self.atol = method, rtol, atol
        self.consistency_weight = consistency_weight
        generator = torch.Generator().manual_seed(seed + 1)
        self.param_hidden = _init_linear(nn.Linear(q, q), generator)
        self.param_out = _init_linear(nn.Linear(q, n_ode_params), generator)
        self.param_scale = nn.Parameter(torch.ones(n_ode_params))
        self.param_shift = nn.Parameter(torch.zeros(n_ode_params))

    def ode_params(self, baseline):
        """ODE parameters of individuals from their baseline variables.

        Args:
            baseline: ``(n, q)`` baseline variables, or ``(q,)`` for one
                individual.

        Returns:
            ``(n, n_ode_params)``, or ``(n_ode_params,)`` for a ``(q,)`` input.

        Raises:
            ValueError: if ``baseline`` is not 1-D or 2-D, has not ``q``
                columns, or contains NaN or infinite values.
        """
        baseline = torch.as_tensor(baseline).to(self.param_scale)
        if baseline.dim() not in (1, 2):
            raise ValueError(
                f"baseline must have shape (n, q) or (q,) with q={self.q}, got "
                f"shape {tuple(baseline.shape)}"
            )
        if baseline.shape[-1] != self.q:
            raise ValueError(
                f"baseline must have q={self.q} variables, got {baseline.shape[-1]}"
            )
        if not bool(torch.isfinite(baseline).all()):
            raise ValueError("baseline contains NaN or infinite values")
        if baseline.dim() == 1:
            return self._ode_params(baseline[None])[0]
        return self._ode_params(baseline)

    def _ode_params(self, baseline):
        """Unchecked :meth:`ode_params` for ``(n, q)`` tensors on the model's
        device (the training hot path)."""
        hidden = torch.tanh(self.param_hidden(baseline))
        raw = torch.sigmoid(self.param_out(hidden)) - 0.5
        return self.param_scale * raw + self.param_shift

    def solve(self, z0, params, times):
        """Latent ODE solutions ``(T, B, zdim)`` from ``z0`` ``(B, zdim)``.

        One solve for all ``B`` rows on the shared ``times`` ``(T,)``, which
        must be sorted and start at 0 (the baseline visit).
        """
        if self.method == "closed_form":
            return self._closed_form(z0, params, times[None]).transpose(0, 1)

        def rhs(t, z):
            return self.dynamics(t, z, params)

        return self._odeint(rhs, z0, times)

    def solve_per_visit(self, z0, params, times):
        """Latent states ``(N, zdim)``, row ``k`` at its own time ``times[k]``.

        Each row starts at ``z0[k]`` at time 0 and runs on its own clock: with
        ``s = t / times[k]`` its state ``u(s) = z(s * times[k])`` follows
        ``du/ds = times[k] * f(s * times[k], u)``. One solve of all rows from
        ``s = 0`` to ``s = 1`` therefore ends with every row at its own time,
        and the solver never interpolates between output times (a time-0 row
        stays at ``z0``). Used by :func:`helpers.train` by default; the
        dynamics then receive ``t`` as an ``(N, 1)`` tensor of row times.

        Args:
            z0: ``(N, zdim)`` starting states, one row per visit.
            params: ``(N, n_ode_params)`` ODE parameters of each row.
            times: ``(N,)`` time of each row, >= 0.
        """
        scale = times[:, None]
        if self.method == "closed_form":
            return self._closed_form(z0, params, scale)[:, 0]

        def rhs(s, u):
            return scale * self.dynamics(s * scale, u, params)

        return self._odeint(rhs, z0, times.new_tensor([0.0, 1.0]))[-1]

    @staticmethod
    def _closed_form(z0, params, times):
        """``exp(A t) z0`` for ``z0`` ``(B, 2)`` and ``times`` ``(B, T)``:
        ``(B, T, 2)``. ``times`` may be ``(1, T)`` (shared) or ``(B, 1)``."""
        if params.shape[-1] == 2:
            return torch.exp(times[..., None] * params[:, None]) * z0[:, None]
        matrices = params.reshape(-1, 1, 2, 2) * times[..., None, None]
        propagators = torch.linalg.matrix_exp(matrices)  # (B, T, 2, 2)
        return (propagators @ z0[:, None, :, None]).squeeze(-1)

    def _odeint(self, rhs, z0, times):
        options = None
        if self.method in ADAPTIVE_METHODS:
            options = {"max_num_steps": MAX_SOLVER_STEPS}
        try:
            return odeint(
                rhs, z0, times, rtol=self.rtol, atol=self.atol, method=self.method,
                options=options,
            )  # fmt: skip
        except AssertionError as error:  # torchdiffeq's step-size underflow
            raise FloatingPointError(
                f"the ODE solver failed ({error}): the latent dynamics produced NaN "
                "or became too stiff; lower the learning rate lr, or check the "
                "dynamics function"
            ) from None

    def smooth_means(self, batch: Batch):
        """Encoder means and ODE-smoothed means of every visit.

        Returns:
            ``(mu, logvar, mu_smooth)``, each ``(N, zdim)``: the encoder's
            latent means and log-variances, and the ODE solution started at
            each individual's baseline mean, read off at each visit's time.
        """
        mean, logvar = self.encode(batch.x)
        params = self._ode_params(batch.baseline.to(self.param_scale))  # (B, k)
        start = mean[batch.first_row]  # (B, zdim)
        if batch.per_visit:  # every visit on its own clock: (N, zdim)
            visit_times = batch.times[batch.time_index]
            smooth = self.solve_per_visit(
                start[batch.owner], params[batch.owner], visit_times
            )
            return mean, logvar, smooth
        path = self.solve(start, params, batch.times)  # (T, B, zdim)
        return mean, logvar, path[batch.time_index, batch.owner]

    def loss(self, batch: Batch, eps=None, generator=None):
        """Sum over the batch's individuals of the per-individual ODE-VAE loss.

        Per individual: ``-ELBO`` (baseline mean at the baseline visit,
        ODE-smoothed means at the follow-ups, encoder log-variances)
        ``+ penalty_weight * ||decoder parameters||^2
        + consistency_weight * sum_follow-ups ||mu_smooth - mu_encoder||^2``.
        Arguments and result as in :meth:`VAE.loss`.
        """
        self._check_batch(batch)
        mean, logvar, smooth = self.smooth_means(batch)
        negative_elbo = self.negative_elbo(batch.x, smooth, logvar, eps, generator)
        gap = ((smooth - mean) ** 2).sum(-1)[batch.is_follow_up].sum()
        return (
            negative_elbo
            + batch.size * self.penalty_weight * self.decoder_penalty()
            + self.consistency_weight * gap
        )

    def latent_paths(self, x0, baseline, ts):
        """Latent mean trajectories of many individuals (batched form).

        Args:
            x0: ``(B, p)`` baseline visits (t = 0).
            baseline: ``(B, q)`` baseline variables.
            ts: ``(T,)`` strictly increasing times >= 0.

        Returns:
            ``(T, B, zdim)`` latent means: the ODE solution started at each
            individual's encoded baseline visit with its own parameters.
        """
        x0 = check_tensor("x0", x0, (None, self.p))
        baseline = check_tensor("baseline", baseline, (x0.shape[0], self.q))
        ts = check_tensor("ts", ts, (None,))
        if len(ts) == 0 or ts.min() < 0 or bool((ts[1:] <= ts[:-1]).any()):
            raise ValueError(
                f"ts must be strictly increasing times >= 0, got {ts.tolist()}"
            )
        reference = self.param_scale
        x0, baseline, ts = (v.to(reference) for v in (x0, baseline, ts))
        times = torch.cat([ts.new_zeros(1), ts]) if ts[0] > 0 else ts
        mean, _ = self.encode(x0)
        path = self.solve(mean, self._ode_params(baseline), times)
        return path[-len(ts) :]

    def latent_trajectory(self, x0, baseline, ts):
        """Latent mean trajectory ``(len(ts), zdim)`` of one individual.

        Args:
            x0: ``(p,)`` the baseline visit (t = 0).
            baseline: ``(q,)`` baseline variables.
            ts: ``(T,)`` strictly increasing times >= 0.
        """
        x0 = check_tensor("x0", x0, (self.p,))
        baseline = check_tensor("baseline", baseline, (self.q,))
        return self.latent_paths(x0[None], baseline[None], ts)[:, 0]

    def predict(self, x0, baseline, ts):
        """Decoded mean trajectory ``(len(ts), p)`` of one individual.

        Args:
            x0: ``(p,)`` the baseline visit (t = 0).
            baseline: ``(q,)`` baseline variables.
            ts: ``(T,)`` strictly increasing times >= 0.
        """
        return self.decode(self.latent_trajectory(x0, baseline, ts))[0]
