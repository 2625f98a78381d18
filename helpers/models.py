"""The VAE and the ODE-VAE of Part II (notebook sections
"A VAE for single visits" and "The ODE-VAE: a latent state that moves by an
ODE").

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

from ._utils import (
    check_arguments,
    check_tensor,
    instance_of,
    integer,
    number,
    one_of,
)
from .batching import Batch
from .simulation import Cohort

LOG_2PI = math.log(2 * math.pi)

# The solvers an ODEVAE accepts, by kind. "closed_form" is the exact
# z(t) = exp(A t) z(0) of the linear dynamics. Adaptive solvers control their
# error with rtol and atol; fixed-step ones take steps of at most MAX_STEP in
# real time. The names are torchdiffeq's.
SOLVERS = {
    "closed_form": "exact",
    "dopri8": "adaptive", "dopri5": "adaptive", "bosh3": "adaptive",
    "fehlberg2": "adaptive", "adaptive_heun": "adaptive",
    "euler": "fixed", "midpoint": "fixed", "heun2": "fixed", "heun3": "fixed",
    "rk4": "fixed",
}  # fmt: skip
# (torchdiffeq's Adams methods are left out: at MAX_STEP "explicit_adams" is
# unstable beyond |rate| = 0.6, and "implicit_adams" warns that its iteration
# does not converge at rate -1.5.)
METHODS = tuple(SOLVERS)
"""Allowed ``method`` of :class:`ODEVAE` (see :data:`SOLVERS`)."""
# A fitted model needs a handful of adaptive steps per solve. Runaway weights
# (a far too large learning rate) make the latent system stiff, and the solver
# would then creep on for minutes while memory fills; stop it instead.
MAX_SOLVER_STEPS = 1000
# Longest step of a fixed-step solver, in real time. rk4 is stable while
# |rate| * step < 2.78, so up to |rate| = 5.5 here; only "closed_form" is
# exact and stable at every rate.
MAX_STEP = 0.5
# What each argument of VAE, and the further ones of ODEVAE, may be (checked
# once, by check_arguments, when the model is built)
VAE_RULES = {
    "p": integer(1),
    "zdim": integer(1),
    "seed": integer(),
    "kl_weight": number(0),
    "penalty_weight": number(0),
}
ODEVAE_RULES = {
    "q": integer(1),
    "dynamics": instance_of(callable, "a function f(t, z, params)"),
    "n_ode_params": integer(1),
    "method": one_of(METHODS),
    "rtol": number(0, strict=True),
    "atol": number(0, strict=True),
    "consistency_weight": number(0),
}


def ode_matrices(params):
    """ODE parameters as matrices: ``(..., 2)`` diagonal ``(a11, a22)`` or
    ``(..., 4)`` row-wise ``(a11, a12, a21, a22)`` to ``(..., 2, 2)``."""
    if params.shape[-1] == 2:
        return torch.diag_embed(params)
    return params.reshape(*params.shape[:-1], 2, 2)


def linear_dynamics(t, z, params):
    """Right-hand side of the linear system ``z' = A z``, batched.

    Args:
        t: time (unused: the system is autonomous); a scalar, or ``(B, 1)``
            when every row runs on its own clock (:meth:`ODEVAE.solve`).
        z: ``(B, 2)`` latent states.
        params: ``(B, 2)`` diagonal ``(a11, a22)`` or ``(B, 4)`` full matrix
            ``(a11, a12, a21, a22)`` per individual.

    Returns:
        ``(B, 2)`` time derivatives.
    """
    if params.shape[-1] == 2:
        return params * z
    return (ode_matrices(params) @ z.unsqueeze(-1)).squeeze(-1)


def linear_solution(z0, params, times):
    """Exact solution ``z(t) = exp(A t) z0`` of ``z' = A z``, row by row.

    Exact and stable at every rate and time: a diagonal ``A`` gives
    ``exp(a t) * z0``, a full one its matrix exponential.

    Args:
        z0: ``(N, 2)`` states at time 0.
        params: ``(N, 2)`` or ``(N, 4)`` ODE parameters (as in
            :func:`linear_dynamics`).
        times: ``(N,)`` time of each row.

    Returns:
        ``(N, 2)`` states, row ``k`` at time ``times[k]``.
    """
    clock = times[:, None]  # (N, 1)
    if params.shape[-1] == 2:
        return torch.exp(clock * params) * z0
    propagators = torch.linalg.matrix_exp(ode_matrices(params) * clock[..., None])
    return (propagators @ z0[..., None]).squeeze(-1)


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
    """Variational autoencoder for single visits (notebook section "A VAE for
    single visits").

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
        checked = check_arguments(VAE_RULES, locals())
        self.p, self.zdim, self.kl_weight, self.penalty_weight = (
            checked[name] for name in ("p", "zdim", "kl_weight", "penalty_weight")
        )
        self.encoder = nn.Linear(p, p)
        self.encoder_mean = nn.Linear(p, zdim)
        self.encoder_logvar = nn.Linear(p, zdim)
        self.logvar_scale = nn.Parameter(torch.ones(zdim))
        self.logvar_shift = nn.Parameter(torch.zeros(zdim))
        self.decoder = nn.Linear(zdim, p)
        self.decoder_mean = nn.Linear(p, p)
        self.decoder_logvar = nn.Linear(p, p)
        self._draw_vae_weights(checked["seed"])

    def initialise(self, seed: int) -> None:
        """Draw all weights afresh from ``seed`` (Glorot uniform, zero biases)."""
        self._draw_vae_weights(seed)

    @torch.no_grad()
    def _draw_vae_weights(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        layers = (self.encoder, self.encoder_mean, self.encoder_logvar,
                  self.decoder, self.decoder_mean, self.decoder_logvar)  # fmt: skip
        for layer in layers:
            _init_linear(layer, generator)
        self.logvar_scale.fill_(1.0)
        self.logvar_shift.zero_()

    def encode(self, x):
        """Latent mean and log-variance of visits.

        Args:
            x: ``(..., p)`` visits.

        Returns:
            ``(mean, logvar)``, each ``(..., zdim)``.
        """
        x = torch.as_tensor(x).to(self.encoder.weight)  # the model's device and dtype
        hidden = torch.tanh(self.encoder(x)) + 1.0
        logvar = -torch.relu(self.encoder_logvar(hidden))
        return self.encoder_mean(hidden), self.logvar_scale * logvar + self.logvar_shift

    def decode(self, z):
        """Mean and log-variance of the likelihood of latent points.

        Args:
            z: ``(..., zdim)`` latent points.

        Returns:
            ``(mean, logvar)``, each ``(..., p)``.
        """
        z = torch.as_tensor(z).to(self.decoder.weight)
        hidden = torch.tanh(self.decoder(z))
        return self.decoder_mean(hidden), self.decoder_logvar(hidden)

    def decoder_penalty(self):
        """Sum of squares of all decoder parameters (weights and biases)."""
        modules = (self.decoder, self.decoder_mean, self.decoder_logvar)
        return sum((w**2).sum() for m in modules for w in m.parameters())

    def negative_elbo(
        self, x, latent_mean, latent_logvar, eps=None, generator=None, mask=None
    ):
        """Sum over visits of ``-(log p(x|z) - kl_weight * KL)``.

        ``z = latent_mean + exp(latent_logvar / 2) * eps`` (reparameterisation).
        With a ``mask``, ``log p(x|z)`` sums over the observed entries only:
        a missing value contributes nothing.

        Args:
            x: ``(N, p)`` visits.
            latent_mean, latent_logvar: ``(N, zdim)``.
            eps: optional ``(N, zdim)`` standard-normal draws.
            generator: random generator used when ``eps`` is None.
            mask: optional bool ``(N, p)``, True where ``x`` was observed;
                None means all were.

        Returns:
            A scalar tensor.
        """
        if eps is None:
            eps = torch.randn(latent_mean.shape, generator=generator)
        z = latent_mean + torch.exp(0.5 * latent_logvar) * eps.to(latent_mean)
        mean, logvar = self.decode(z)
        log_likelihood = gaussian_log_likelihood(x, mean, logvar)
        if mask is not None:  # missing entries contribute nothing
            log_likelihood = torch.where(mask.to(x.device), log_likelihood, 0.0)
        log_likelihood = log_likelihood.sum()
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
        mean, logvar = self.encode(batch.x)
        negative_elbo = self.negative_elbo(
            batch.x, mean, logvar, eps, generator, batch.mask
        )
        return negative_elbo + batch.size * self.penalty_weight * self.decoder_penalty()


class ODEVAE(VAE):
    """VAE whose latent means follow an ODE with individual parameters.

    A parameter network maps the ``q`` baseline variables to ``n_ode_params``
    ODE parameters: ``Linear(q, q)`` with tanh, ``Linear(q, k)`` with
    ``sigmoid(.) - 0.5``, then a trainable elementwise scale and shift
    (notebook section "The ODE-VAE: a
    latent state that moves by an ODE").

    Args:
        p: number of time-dependent variables.
        q: number of baseline variables.
        zdim: latent dimension.
        n_ode_params: ODE parameters per individual (2: diagonal of ``A``;
            4: the full 2x2 matrix).
        dynamics: right-hand side ``f(t, z, params)`` with ``z`` ``(B, zdim)``
            and ``params`` ``(B, n_ode_params)``, returning ``(B, zdim)``;
            default :func:`linear_dynamics` (``zdim = 2``, ``n_ode_params`` 2
            or 4).
        seed: seed of the initial weights.
        method: the package's one solver setting, used by training,
            evaluation and plots alike: a torchdiffeq solver name (see
            :data:`SOLVERS`) or ``"closed_form"``, the exact
            ``z(t) = exp(A t) z0`` of the linear dynamics (accurate and stable
            at every rate and time). Default: ``"closed_form"`` for
            :func:`linear_dynamics`, ``"dopri5"`` for any other dynamics.
            Fixed-step solvers such as ``"rk4"`` take steps of at most
            :data:`MAX_STEP` in real time.
        rtol, atol: tolerances of the adaptive solvers such as ``"dopri5"``
            (the original's 1e-3 and 1e-6), finite and > 0.
        consistency_weight: weight of ``||mu_smooth - mu_encoder||^2``,
            finite and >= 0.
        kl_weight, penalty_weight: as in :class:`VAE`.

    Raises:
        ValueError: if an argument is not of the allowed type or range.
    """

    def __init__(
        self,
        p: int,
        q: int,
        zdim: int = 2,
        n_ode_params: int = 2,
        dynamics=linear_dynamics,
        seed: int = 0,
        method: str | None = None,
        rtol: float = 1e-3,
        atol: float = 1e-6,
        consistency_weight: float = 1.0,
        kl_weight: float = 0.5,
        penalty_weight: float = 0.01,
    ):
        super().__init__(p, zdim, seed, kl_weight, penalty_weight)
        if method is None:
            method = "closed_form" if dynamics is linear_dynamics else "dopri5"
        checked = check_arguments(ODEVAE_RULES, locals())
        _check_dynamics(dynamics, zdim, n_ode_params, method)
        self.q, self.n_ode_params = checked["q"], checked["n_ode_params"]
        self.dynamics, self.method = dynamics, method
        self.rtol, self.atol = checked["rtol"], checked["atol"]
        self.consistency_weight = checked["consistency_weight"]
        self.param_hidden = nn.Linear(self.q, self.q)
        self.param_out = nn.Linear(self.q, self.n_ode_params)
        self.param_scale = nn.Parameter(torch.ones(self.n_ode_params))
        self.param_shift = nn.Parameter(torch.zeros(self.n_ode_params))
        self._draw_network_weights(seed + 1)  # seed checked by VAE

    def initialise(self, seed: int) -> None:
        """Draw all weights afresh: the VAE's from ``seed``, the parameter
        network's from ``seed + 1``."""
        super().initialise(seed)
        self._draw_network_weights(seed + 1)

    def _draw_network_weights(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            _init_linear(self.param_hidden, generator)
            _init_linear(self.param_out, generator)
            self.param_scale.fill_(1.0)
            self.param_shift.zero_()

    def ode_params(self, baseline):
        """ODE parameters ``(n, n_ode_params)`` from baseline variables ``(n, q)``
        (or ``(n_ode_params,)`` from ``(q,)``)."""
        baseline = torch.as_tensor(baseline).to(self.param_scale)
        hidden = torch.tanh(self.param_hidden(baseline))
        raw = torch.sigmoid(self.param_out(hidden)) - 0.5
        return self.param_scale * raw + self.param_shift

    def solve(self, z0, params, times):
        """Latent states ``(N, zdim)``, row ``k`` at its own time ``times[k]``.

        With ``method="closed_form"`` this is :func:`linear_solution`, exact.
        With a torchdiffeq solver each row starts at ``z0[k]`` at time 0 and
        runs on its own clock: with
        ``s = t / times[k]`` its state ``u(s) = z(s * times[k])`` follows
        ``du/ds = times[k] * f(s * times[k], u)``. One solve of all rows from
        ``s = 0`` to ``s = 1`` therefore ends with every row at its own time,
        and the solver never interpolates between output times (a time-0 row
        stays at ``z0``). The dynamics receive ``t`` as an ``(N, 1)`` tensor
        of row times. This is the package's only solve (appendix section
        "Many individuals in one solve: a clock for every visit").

        Args:
            z0: ``(N, zdim)`` starting states, one row per visit.
            params: ``(N, n_ode_params)`` ODE parameters of each row.
            times: ``(N,)`` time of each row, >= 0.
        """
        kind = SOLVERS[self.method]
        if kind == "exact":
            return linear_solution(z0, params, times)
        clock = times[:, None]  # (N, 1)

        def rhs(s, u):
            return clock * self.dynamics(s * clock, u, params)

        options = {"max_num_steps": MAX_SOLVER_STEPS}
        if kind == "fixed":  # at most MAX_STEP in real time on the longest clock
            longest = float(times.max()) if len(times) else 0.0
            options = {"step_size": 1.0 / max(1, math.ceil(longest / MAX_STEP))}
        try:
            path = odeint(
                rhs, z0, times.new_tensor([0.0, 1.0]), rtol=self.rtol, atol=self.atol,
                method=self.method, options=options,
            )  # fmt: skip
        except AssertionError as error:  # torchdiffeq's step-size underflow
            raise FloatingPointError(
                f"the ODE solver failed ({error}): the latent dynamics produced NaN "
                "or became too stiff; lower the learning rate lr, or check the "
                "dynamics function"
            ) from error
        return path[-1]

    def smooth_means(self, batch: Batch):
        """Encoder means and ODE-smoothed means of every visit.

        Returns:
            ``(mu, logvar, mu_smooth)``, each ``(N, zdim)``: the encoder's
            latent means and log-variances, and the ODE solution started at
            each individual's baseline mean, read off at each visit's time.
        """
        mean, logvar = self.encode(batch.x)
        params = self.ode_params(batch.baseline)  # (B, n_ode_params)
        start = mean[batch.first_row]  # (B, zdim)
        smooth = self.solve(start[batch.owner], params[batch.owner], batch.t)
        return mean, logvar, smooth

    def loss(self, batch: Batch, eps=None, generator=None):
        """Sum over the batch's individuals of the per-individual ODE-VAE loss.

        Per individual: ``-ELBO`` (baseline mean at the baseline visit,
        ODE-smoothed means at the follow-ups, encoder log-variances; missing
        values contribute nothing, see :meth:`VAE.negative_elbo`)
        ``+ penalty_weight * ||decoder parameters||^2
        + consistency_weight * sum_follow-ups ||mu_smooth - mu_encoder||^2``.
        Arguments and result as in :meth:`VAE.loss`.
        """
        mean, logvar, smooth = self.smooth_means(batch)
        negative_elbo = self.negative_elbo(
            batch.x, smooth, logvar, eps, generator, batch.mask
        )
        gap = ((smooth - mean) ** 2).sum(-1)[batch.is_follow_up].sum()
        return (
            negative_elbo
            + batch.size * self.penalty_weight * self.decoder_penalty()
            + self.consistency_weight * gap
        )

    def latent_paths(self, x0, baseline, ts):
        """Latent mean trajectories of many individuals.

        Args:
            x0: ``(B, p)`` baseline visits (t = 0).
            baseline: ``(B, q)`` baseline variables.
            ts: ``(T,)`` times >= 0.

        Returns:
            ``(T, B, zdim)`` latent means: the ODE solution started at each
            individual's encoded baseline visit with its own parameters.
        """
        x0 = check_tensor("x0", x0, (None, self.p))
        baseline = check_tensor("baseline", baseline, (len(x0), self.q))
        return self._latent_paths(x0, baseline, self._check_times(ts))

    def _latent_paths(self, x0, baseline, ts):
        """:meth:`latent_paths` for inputs already checked (the package's own
        callers pass a cohort's visits and time grid)."""
        x0, ts = x0.to(self.param_scale), ts.to(self.param_scale)
        start, _ = self.encode(x0)
        params = self.ode_params(baseline)
        n_times, n = len(ts), len(x0)
        rows = self.solve(  # one row per (time, individual): (T * B, zdim)
            start.repeat(n_times, 1), params.repeat(n_times, 1),
            ts.repeat_interleave(n),
        )  # fmt: skip
        return rows.reshape(n_times, n, self.zdim)

    def latent_trajectory(self, x0, baseline, ts):
        """Latent mean trajectory ``(len(ts), zdim)`` of one individual.

        Args:
            x0: ``(p,)`` the baseline visit (t = 0).
            baseline: ``(q,)`` baseline variables.
            ts: ``(T,)`` times >= 0.
        """
        x0 = check_tensor("x0", x0, (self.p,))
        baseline = check_tensor("baseline", baseline, (self.q,))
        return self._latent_paths(x0[None], baseline[None], self._check_times(ts))[:, 0]

    @staticmethod
    def _check_times(ts) -> torch.Tensor:
        """``ts`` as a float tensor ``(T,)`` of times >= 0."""
        ts = check_tensor("ts", ts, (None,))
        if bool((ts < 0).any()):
            raise ValueError(f"ts must be times >= 0, got {ts.tolist()}")
        return ts


def _check_dynamics(dynamics, zdim: int, n_ode_params: int, method: str) -> None:
    """Refuse a ``dynamics`` or ``method`` that cannot fit the latent sizes."""
    if dynamics is linear_dynamics and (zdim != 2 or n_ode_params not in (2, 4)):
        raise ValueError(
            "linear_dynamics needs zdim=2 and n_ode_params 2 (diagonal) or 4 "
            f"(full matrix), got zdim={zdim}, n_ode_params={n_ode_params}"
        )
    if method == "closed_form" and dynamics is not linear_dynamics:
        raise ValueError("method='closed_form' needs dynamics=linear_dynamics")


# What a model and a cohort given to a fit or a score may be, by the kind of
# model the function needs (train and align_latent: any; evaluate: ODE-VAE)
FITTED_RULES = {
    VAE: {
        "model": instance_of(VAE, "a VAE or an ODEVAE"),
        "cohort": instance_of(Cohort, "a Cohort"),
    },
    ODEVAE: {
        "model": instance_of(
            ODEVAE, "an ODEVAE (a plain VAE cannot predict later visits)"
        ),
        "cohort": instance_of(Cohort, "a Cohort"),
    },
}


def check_model(model, cohort, kind=VAE) -> None:
    """Refuse a ``model`` that is not a ``kind`` (:class:`VAE`, which includes
    the ODE-VAE, or :class:`ODEVAE`) built for ``cohort``'s sizes."""
    check_arguments(FITTED_RULES[kind], locals())
    if cohort.p != model.p or cohort.q != getattr(model, "q", cohort.q):
        raise ValueError(
            f"the cohort has p={cohort.p} variables and q={cohort.q} baseline "
            f"variables, but the model was built for p={model.p}"
            + (f", q={model.q}" if hasattr(model, "q") else "")
        )
