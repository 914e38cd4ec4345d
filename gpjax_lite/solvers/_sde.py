"""Each supported kernel as a linear time-invariant stochastic differential equation.

A stationary Gaussian process ``f`` on one input ``t`` with a rational spectral
density is the output of a linear SDE on a state ``x(t)`` of ``s`` entries
(Hartikainen & Särkkä 2010; Särkkä & Solin 2019, "Applied Stochastic
Differential Equations", ch. 12)::

    dx/dt = F x + L w(t),    w white noise with spectral density Qc,    f(t) = H x(t).

Started from its stationary covariance ``P∞`` (the solution of the Lyapunov
equation ``F P∞ + P∞ Fᵀ + L Qc Lᵀ = 0``), the covariance of ``f`` is::

    k(t, t + τ) = H exp(F τ) P∞ Hᵀ,    τ ≥ 0.

Between two inputs ``Δt`` apart the state moves by the discrete model
(Särkkä & Solin 2019, eq. 6.38 and §12.3)::

    x(t + Δt) = A x(t) + q,   A = exp(F Δt),   q ~ N(0, Q),   Q = P∞ - A P∞ Aᵀ.

Every ``A`` here is a closed form (no general matrix exponential), exact at
``Δt = 0`` (``A = I``, ``Q = 0``, so repeated inputs are handled exactly).

Supported kernels and their forms (``σ² = variance``):

* ``Matern12/32/52`` (ν = p + ½, ``λ = √(2ν) / lengthscale``): ``F`` the companion
  matrix of ``(D + λ)^{p+1}``, ``L = e_{p+1}``,
  ``Qc = 2σ² √π λ^{2p+1} Γ(p+1) / Γ(p+½)``, ``H = e_1`` (Särkkä & Solin 2019,
  §12.3). ``F + λI`` is nilpotent, so ``A = e^{-λΔt} Σ_{k≤p} (Δt (F + λI))^k / k!``.
* ``Cosine`` (``ω₀ = 2π / period``): a rotation, ``F = [[0, -ω₀], [ω₀, 0]]``,
  ``Qc = 0``, ``P∞ = σ² I``, ``A`` the rotation by ``ω₀ Δt`` (Solin 2016, §4.2).
* ``Constant``: ``F = 0``, ``Qc = 0``, ``P∞ = σ²``, ``A = 1``: a random offset.
* ``SHO``: ``F = [[0, 1], [-ω², -ω/Q]]``, ``L = e_2``, ``Qc = 2 ω³ σ² / Q``,
  ``P∞ = diag(σ², ω² σ²)``. With ``a = ω/(2Q)`` and ``M = F + aI``, ``M² = (a² - ω²) I``,
  so ``A = e^{-aΔt} [C(z) I + Δt S(z) M]``, ``z = (ω² - a²) Δt²``, with the entire
  functions ``C``, ``S`` of :func:`gpjax_lite.kernels.sho.damped_cos_sinc`
  (smooth through the critical damping ``Q = ½``).
* ``c · k``: ``P∞`` and ``Qc`` scaled by ``c``.
* ``k₁ + k₂ + …`` (independent processes): block-diagonal ``F, L, Qc, P∞``;
  ``H = [H₁, H₂, …]``; ``A`` block diagonal.
* ``k₁ · k₂`` (Solin 2016, "Stochastic differential equation methods for
  spatio-temporal Gaussian process regression", §4.2): the Kronecker sum
  ``F = F₁ ⊗ I + I ⊗ F₂``, ``H = H₁ ⊗ H₂``, ``P∞ = P∞₁ ⊗ P∞₂``,
  ``L = [L₁ ⊗ I, I ⊗ L₂]``, ``Qc = blockdiag(Qc₁ ⊗ P∞₂, P∞₁ ⊗ Qc₂)``;
  ``A = A₁ ⊗ A₂``.

Anything else (RBF, Periodic, Linear, ARD lengthscales, ``active_dims`` other
than column 0, user kernels) has no finite-dimensional SDE here and raises
``TypeError`` naming the kernel.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._module import Module
from ..kernels.combinations import Product, Scaled, Sum
from ..kernels.constant import Constant
from ..kernels.periodic import Cosine
from ..kernels.sho import SERIES_RADIUS, SHO, damped_cos_sinc_one_sign
from ..kernels.stationary import Matern12, Matern32, Matern52

#: The kernel classes :class:`~gpjax_lite.solvers.StateSpace` supports.
SUPPORTED = (Matern12, Matern32, Matern52, Cosine, SHO, Constant, Sum, Product, Scaled)
SUPPORTED_NAMES = "Matern12, Matern32, Matern52, Cosine, SHO, Constant, and their sums, products and positive scalings"


class SDE(Module):
    """One kernel's linear SDE: ``F (s, s)``, ``L (s, q)``, ``Qc (q, q)``, ``H (s,)``, ``P∞ (s, s)``."""

    def feedback(self) -> Float[Array, "s s"]:
        raise NotImplementedError

    def noise_effect(self) -> Float[Array, "s q"]:
        raise NotImplementedError

    def spectral_density(self) -> Float[Array, "q q"]:
        raise NotImplementedError

    def observation(self) -> Float[Array, " s"]:
        raise NotImplementedError

    def stationary_covariance(self) -> Float[Array, "s s"]:
        raise NotImplementedError

    def transition(self, dt: Float[Array, ""]) -> Float[Array, "s s"]:
        """``A = exp(F Δt)`` for one scalar ``Δt ≥ 0``, in closed form."""
        raise NotImplementedError

    @property
    def state_dim(self) -> int:
        return self.observation().shape[0]


# ----------------------------------------------------------------- base kernels
class MaternSDE(SDE):
    """Matérn-(p + ½) for ``p = 0, 1, 2`` (Särkkä & Solin 2019, §12.3)."""

    order: int = eqx.field(static=True)  # p
    variance: Float[Array, ""]
    lengthscale: Float[Array, ""]

    @property
    def rate(self):
        return math.sqrt(2 * self.order + 1) / self.lengthscale

    def feedback(self):
        p, lam = self.order, self.rate
        s = p + 1
        # Companion matrix of (D + λ)^{p+1}: last row -binom(p+1, k) λ^{p+1-k}.
        last = jnp.stack([-math.comb(s, k) * lam ** (s - k) for k in range(s)])
        return jnp.eye(s, k=1, dtype=last.dtype).at[-1].set(last)

    def noise_effect(self):
        return jnp.eye(self.order + 1, dtype=self.variance.dtype)[:, -1:]

    def spectral_density(self):
        p = self.order
        coefficient = 2.0 * math.sqrt(math.pi) * math.gamma(p + 1) / math.gamma(p + 0.5)
        return (coefficient * self.variance * self.rate ** (2 * p + 1)).reshape(1, 1)

    def observation(self):
        return jnp.eye(self.order + 1, dtype=self.variance.dtype)[0]

    def stationary_covariance(self):
        v, lam = self.variance, self.rate
        if self.order == 0:
            return v.reshape(1, 1)
        if self.order == 1:
            return jnp.diag(jnp.stack([v, lam**2 * v]))
        kappa = v * lam**2 / 3.0
        zero = jnp.zeros_like(v)
        return jnp.stack(
            [
                jnp.stack([v, zero, -kappa]),
                jnp.stack([zero, kappa, zero]),
                jnp.stack([-kappa, zero, v * lam**4]),
            ]
        )

    def transition(self, dt):
        lam = self.rate
        s = self.order + 1
        nilpotent = self.feedback() + lam * jnp.eye(s, dtype=lam.dtype)
        term = jnp.eye(s, dtype=lam.dtype)
        total = term
        for k in range(1, s):  # (F + λI)^s = 0: the series stops
            term = term @ (dt * nilpotent) / k
            total = total + term
        return jnp.exp(-lam * dt) * total


class CosineSDE(SDE):
    """``σ² cos(ω₀ τ)``: a rotation of a two-entry state, no driving noise."""

    variance: Float[Array, ""]
    period: Float[Array, ""]

    @property
    def frequency(self):
        return 2.0 * math.pi / self.period

    def feedback(self):
        w = self.frequency
        zero = jnp.zeros_like(w)
        return jnp.stack([jnp.stack([zero, -w]), jnp.stack([w, zero])])

    def noise_effect(self):
        return jnp.zeros((2, 1), self.variance.dtype)

    def spectral_density(self):
        return jnp.zeros((1, 1), self.variance.dtype)

    def observation(self):
        return jnp.array([1.0, 0.0], self.variance.dtype)

    def stationary_covariance(self):
        return self.variance * jnp.eye(2, dtype=self.variance.dtype)

    def transition(self, dt):
        c, s = jnp.cos(self.frequency * dt), jnp.sin(self.frequency * dt)
        return jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])


class ConstantSDE(SDE):
    """``σ²``: one state that never moves."""

    variance: Float[Array, ""]

    def feedback(self):
        return jnp.zeros((1, 1), self.variance.dtype)

    def noise_effect(self):
        return jnp.zeros((1, 1), self.variance.dtype)

    def spectral_density(self):
        return jnp.zeros((1, 1), self.variance.dtype)

    def observation(self):
        return jnp.ones((1,), self.variance.dtype)

    def stationary_covariance(self):
        return self.variance.reshape(1, 1)

    def transition(self, dt):
        return jnp.ones((1, 1), jnp.result_type(self.variance, dt))


class SHOSDE(SDE):
    """The damped harmonic oscillator ``f'' + (ω/Q) f' + ω² f = w`` (state ``[f, f']``)."""

    variance: Float[Array, ""]
    omega: Float[Array, ""]
    quality: Float[Array, ""]

    def feedback(self):
        w, q = self.omega, self.quality
        return jnp.stack(
            [jnp.stack([jnp.zeros_like(w), jnp.ones_like(w)]), jnp.stack([-(w**2), -w / q])]
        )

    def noise_effect(self):
        return jnp.array([[0.0], [1.0]], self.variance.dtype)

    def spectral_density(self):
        return (2.0 * self.omega**3 * self.variance / self.quality).reshape(1, 1)

    def observation(self):
        return jnp.array([1.0, 0.0], self.variance.dtype)

    def stationary_covariance(self):
        return jnp.diag(jnp.stack([self.variance, self.omega**2 * self.variance]))

    def transition(self, dt):
        w, q = self.omega, self.quality
        a = w / (2.0 * q)
        z = (w * dt) ** 2 * (1.0 - 0.25 / q**2)
        # z has the sign of Q - ½ at every Δt: evaluate that branch only.
        cos, sinc = damped_cos_sinc_one_sign(z, a * dt, q >= 0.5)
        # M = F + aI satisfies M² = (a² - ω²) I, so exp(F Δt) = e^{-aΔt}(C I + Δt S M).
        M = self.feedback() + a * jnp.eye(2, dtype=a.dtype)
        return cos * jnp.eye(2, dtype=a.dtype) + (dt * sinc) * M


# ------------------------------------------------------------------ combinations
class ScaledSDE(SDE):
    """``c · k``: the same dynamics with ``P∞`` and ``Qc`` scaled by ``c``."""

    sde: SDE
    scale: Float[Array, ""]

    def feedback(self):
        return self.sde.feedback()

    def noise_effect(self):
        return self.sde.noise_effect()

    def spectral_density(self):
        return self.scale * self.sde.spectral_density()

    def observation(self):
        return self.sde.observation()

    def stationary_covariance(self):
        return self.scale * self.sde.stationary_covariance()

    def transition(self, dt):
        return self.sde.transition(dt)


def _block_diag(blocks):
    return jax.scipy.linalg.block_diag(*blocks)


class SumSDE(SDE):
    """Independent processes added: every matrix block diagonal, ``H`` concatenated."""

    parts: tuple[SDE, ...]

    def feedback(self):
        return _block_diag([p.feedback() for p in self.parts])

    def noise_effect(self):
        return _block_diag([p.noise_effect() for p in self.parts])

    def spectral_density(self):
        return _block_diag([p.spectral_density() for p in self.parts])

    def observation(self):
        return jnp.concatenate([p.observation() for p in self.parts])

    def stationary_covariance(self):
        return _block_diag([p.stationary_covariance() for p in self.parts])

    def transition(self, dt):
        return _block_diag([p.transition(dt) for p in self.parts])


class ProductSDE(SDE):
    """Two processes multiplied: the Kronecker-sum SDE (Solin 2016, §4.2)."""

    first: SDE
    second: SDE

    def feedback(self):
        F1, F2 = self.first.feedback(), self.second.feedback()
        I1, I2 = jnp.eye(F1.shape[0], dtype=F1.dtype), jnp.eye(F2.shape[0], dtype=F2.dtype)
        return jnp.kron(F1, I2) + jnp.kron(I1, F2)

    def noise_effect(self):
        L1, L2 = self.first.noise_effect(), self.second.noise_effect()
        I1 = jnp.eye(L1.shape[0], dtype=L1.dtype)
        I2 = jnp.eye(L2.shape[0], dtype=L2.dtype)
        return jnp.concatenate([jnp.kron(L1, I2), jnp.kron(I1, L2)], axis=1)

    def spectral_density(self):
        first = jnp.kron(self.first.spectral_density(), self.second.stationary_covariance())
        second = jnp.kron(self.first.stationary_covariance(), self.second.spectral_density())
        return _block_diag([first, second])

    def observation(self):
        return jnp.kron(self.first.observation(), self.second.observation())

    def stationary_covariance(self):
        return jnp.kron(self.first.stationary_covariance(), self.second.stationary_covariance())

    def transition(self, dt):
        return jnp.kron(self.first.transition(dt), self.second.transition(dt))


# ------------------------------------------------------------------ from kernels
def _unsupported(kernel, reason: str = "") -> TypeError:
    return TypeError(
        f"solvers.StateSpace cannot use the kernel {type(kernel).__name__}{reason}: it supports "
        f"{SUPPORTED_NAMES} (each on input column 0, with scalar hyperparameters). "
        "Use solvers.Cholesky() for other kernels."
    )


def _scalar(kernel, name, dtype):
    value = jnp.asarray(getattr(kernel, name))
    if value.size != 1:
        raise _unsupported(kernel, f" with a non-scalar `{name}` of shape {value.shape}")
    return value.reshape(()).astype(dtype)


def to_sde(kernel, dtype=None) -> SDE:
    """The SDE form of ``kernel``, with every hyperparameter cast to ``dtype``.

    Args:
        kernel: a supported kernel (see the module docs).
        dtype: floating dtype of the matrices (``None``: the hyperparameters' own).

    Raises:
        TypeError: naming the kernel class and the supported set, for any
            other kernel, a non-scalar hyperparameter (ARD lengthscale), or
            ``active_dims`` other than ``None`` or ``(0,)``.
    """
    if type(kernel) not in SUPPORTED:
        raise _unsupported(kernel)
    if kernel.active_dims not in (None, (0,)):
        raise _unsupported(kernel, f" with active_dims={kernel.active_dims}")
    if dtype is None:
        leaves = [leaf for leaf in jax.tree_util.tree_leaves(kernel)]
        dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    convert = functools.partial(to_sde, dtype=dtype)
    kind = type(kernel)
    if kind in (Matern12, Matern32, Matern52):
        order = {Matern12: 0, Matern32: 1, Matern52: 2}[kind]
        return MaternSDE(
            order, _scalar(kernel, "variance", dtype), _scalar(kernel, "lengthscale", dtype)
        )
    if kind is Cosine:
        return CosineSDE(_scalar(kernel, "variance", dtype), _scalar(kernel, "period", dtype))
    if kind is Constant:
        return ConstantSDE(_scalar(kernel, "variance", dtype))
    if kind is SHO:
        return SHOSDE(*(_scalar(kernel, name, dtype) for name in ("variance", "omega", "quality")))
    if kind is Scaled:
        return ScaledSDE(convert(kernel.kernel), _scalar(kernel, "scale", dtype))
    if kind is Sum:
        return SumSDE(tuple(convert(term) for term in kernel.kernels))
    # Product: fold the factors pairwise into nested Kronecker sums.
    return functools.reduce(ProductSDE, [convert(term) for term in kernel.kernels])


def small_matmul(a, b):
    """``a @ b`` for tiny trailing matrices, as a sum of broadcast products over the inner index.

    XLA fuses this into one elementwise loop over the batch, where a batched ``dot`` of
    ``2 × 2`` or ``4 × 4`` matrices runs as many small library calls.
    """
    return sum(a[..., :, k, None] * b[..., None, k, :] for k in range(a.shape[-1]))


def _batched_block_diag(blocks):
    """Block-diagonal ``(n, s, s)`` from blocks ``(n, s_i, s_i)``."""
    if len(blocks) == 1:
        return blocks[0]
    sizes = [b.shape[-1] for b in blocks]
    lead = blocks[0].shape[:-2]
    rows = []
    for i, block in enumerate(blocks):
        before = jnp.zeros(lead + (sizes[i], sum(sizes[:i])), block.dtype)
        after = jnp.zeros(lead + (sizes[i], sum(sizes[i + 1 :])), block.dtype)
        rows.append(jnp.concatenate([before, block, after], axis=-1))
    return jnp.concatenate(rows, axis=-2)


def _discretise(sde: SDE, dt):
    if isinstance(sde, SumSDE):
        parts = [_discretise(part, dt) for part in sde.parts]
        return tuple(_batched_block_diag(list(blocks)) for blocks in zip(*parts))
    if isinstance(sde, ScaledSDE):
        A, Q = _discretise(sde.sde, dt)
        return A, sde.scale * Q  # c P∞ - A (c P∞) Aᵀ = c Q
    P = sde.stationary_covariance()
    # Materialised once: XLA would otherwise fuse the transcendental functions of A into each
    # of its elementwise uses in the products below and evaluate them again for every one.
    A = jax.lax.optimization_barrier(jax.vmap(sde.transition)(dt))
    return A, _process_noise(A, P)


@jax.custom_vjp
def _process_noise(A, P):
    """``Q = P - A P Aᵀ`` symmetrised, for ``A (n, s, s)`` and a symmetric ``P (s, s)``.

    Reverse mode by hand, with the same fused products: for ``Q̄`` (symmetrised to
    ``Ḡ``), ``Ā = -2 Ḡ A P`` and ``P̄ = Σ_n (Ḡ - Aᵀ Ḡ A)`` (differentiating
    ``tr(Ḡᵀ(P - A P Aᵀ))``; Giles 2008, "An extended collection of matrix
    derivative results", §2.2) — autodiff would transpose the sliced products.
    """
    Q = P - small_matmul(small_matmul(A, P), jnp.swapaxes(A, -1, -2))
    return 0.5 * (Q + jnp.swapaxes(Q, -1, -2))


def _process_noise_forward(A, P):
    return _process_noise(A, P), (A, P)


def _process_noise_backward(saved, Q_bar):
    A, P = saved
    G = 0.5 * (Q_bar + jnp.swapaxes(Q_bar, -1, -2))
    A_bar = -2.0 * small_matmul(small_matmul(G, A), P)
    AtGA = small_matmul(small_matmul(jnp.swapaxes(A, -1, -2), G), A)
    P_bar = jnp.sum(G - AtGA, axis=0)
    return A_bar, 0.5 * (P_bar + P_bar.T)


_process_noise.defvjp(_process_noise_forward, _process_noise_backward)


def discretise(sde: SDE, dt: Float[Array, " n"]):
    """The discrete model between consecutive inputs: ``A (n, s, s)`` and ``Q (n, s, s)``.

    ``A = exp(F Δt)`` in closed form and ``Q = P∞ - A P∞ Aᵀ`` (symmetrised),
    which is exact for a process started at stationarity and exactly 0 at
    ``Δt = 0`` (Särkkä & Solin 2019, §12.3). A sum of kernels is discretised
    term by term (``A``, ``Q`` block diagonal), a scaled one as its kernel with
    ``Q`` scaled.

    Args:
        sde: the model.
        dt: non-negative steps ``Δt``, shape ``(n,)``, in the units of the inputs.
    """
    return _discretise(sde, dt)


def _terms(sde: SDE, scale=None):
    """The independent terms of a sum (nested sums and scalings flattened), each with its scale."""
    if isinstance(sde, SumSDE):
        return [term for part in sde.parts for term in _terms(part, scale)]
    if isinstance(sde, ScaledSDE):
        return _terms(sde.sde, sde.scale if scale is None else scale * sde.scale)
    return [(sde, scale)]


# Taylor coefficients of S'(z), S(z) = Σ (-z)^k / (2k + 1)!: Σ_j (j + 1)(-z)^j (-1) / (2j + 3)!.
_SINC_DERIVATIVE_COEFFICIENTS = tuple(
    (-1) ** (j + 1) * (j + 1) / math.factorial(2 * j + 3) for j in range(6)
)


@jax.custom_vjp
def _damped_pair(a, b, dt, oscillating):
    """``c = e^{-aΔt} C(bΔt²)`` and ``s = Δt e^{-aΔt} S(bΔt²)`` (``C``, ``S`` as in the SHO kernel).

    For ``b = ω_d²`` these are ``e^{-aΔt} cos(ω_d Δt)`` and ``e^{-aΔt} sin(ω_d Δt) / ω_d``,
    continued through ``b = 0``. ``a``, ``b`` broadcast with ``dt``; ``oscillating``
    (a bool scalar) is the sign of ``b`` (one branch is evaluated).

    Reverse mode in closed form (``C' = -S/2``, ``S' = (C - S)/(2z)``)::

        ∂c/∂a = -Δt c,   ∂s/∂a = -Δt s,   ∂c/∂b = -Δt s / 2,   ∂s/∂b = Δt³ e^{-aΔt} S'(bΔt²),
        ∂c/∂Δt = -a c - b s,   ∂s/∂Δt = c - a s,

    with ``S'`` by its Taylor series near ``z = 0``.
    """
    return _damped_pair_forward(a, b, dt, oscillating)[0]


def _damped_pair_forward(a, b, dt, oscillating):
    shapes = (a, b, dt)
    a, b, dt = jnp.broadcast_arrays(a, b, dt)
    z = b * dt * dt
    cos, sinc = damped_cos_sinc_one_sign(z, a * dt, oscillating)
    # Materialised once: XLA would otherwise repeat the transcendental functions in every use.
    cos, sinc = jax.lax.optimization_barrier((cos, sinc))
    return (cos, dt * sinc), (shapes, a, b, dt, z, cos, sinc)


def _sum_to(x, like):
    """``x`` summed over the dimensions that ``like`` was broadcast along."""
    lead = x.ndim - like.ndim
    x = jnp.sum(x, axis=tuple(range(lead))) if lead else x
    axes = tuple(i for i, size in enumerate(like.shape) if size == 1 and x.shape[i] != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


def _damped_pair_backward(saved, cotangents):
    shapes, a, b, dt, z, cos, sinc = saved
    c_bar, s_bar = cotangents
    s = dt * sinc
    small = jnp.abs(z) < SERIES_RADIUS
    z_far = jnp.where(small, 1.0, z)
    series = jnp.exp(-a * dt) * _horner(_SINC_DERIVATIVE_COEFFICIENTS, jnp.where(small, z, 0.0))
    damped_derivative = jnp.where(small, series, (cos - sinc) / (2.0 * z_far))
    a_bar = -dt * (c_bar * cos + s_bar * s)
    b_bar = -0.5 * dt * s * c_bar + dt**3 * damped_derivative * s_bar
    dt_bar = c_bar * (-a * cos - b * s) + s_bar * (cos - a * s)
    bars = (a_bar, b_bar, dt_bar)
    return tuple(_sum_to(bar, like).astype(like.dtype) for bar, like in zip(bars, shapes)) + (None,)


_damped_pair.defvjp(_damped_pair_forward, _damped_pair_backward)


def _horner(coefficients, z):
    value = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        value = value * z + c
    return value


def _sho_entries(sde: SHOSDE, dt, scale):
    """The SHO's ``A`` (4 entries) and ``Q`` (upper 3) entrywise: ``A = c I + s M`` (class docs)."""
    w, q = sde.omega, sde.quality
    a = w / (2.0 * q)
    b = w**2 * (1.0 - 0.25 / q**2)
    c, s = _damped_pair(a, b, dt, q >= 0.5)
    A = ((c + a * s, s), (-(w**2) * s, c - a * s))
    p0 = sde.variance if scale is None else scale * sde.variance
    p1 = w**2 * p0
    # Q = P∞ - A P∞ Aᵀ with P∞ = diag(p0, p1).
    Q = (
        p0 - (A[0][0] ** 2 * p0 + A[0][1] ** 2 * p1),
        -(A[0][0] * A[1][0] * p0 + A[0][1] * A[1][1] * p1),
        p1 - (A[1][0] ** 2 * p0 + A[1][1] ** 2 * p1),
    )
    return A, Q


def discretise_entries(sde: SDE, dt: Float[Array, "*shape"]):
    """:func:`discretise` as a sparsity pattern and the entries in it, each of ``dt``'s shape.

    A sum of kernels has block-diagonal ``A`` and ``Q`` (one block per term);
    only the entries inside the blocks are formed.

    Returns:
        ``(pattern, A, Q)``: ``pattern`` an ``s × s`` tuple of tuples of bools
        (static), ``A`` the entries of ``exp(F Δt)`` in the pattern (row-major) and
        ``Q`` the upper-triangle entries of ``P∞ - A P∞ Aᵀ`` in it, in the order of
        :func:`gpjax_lite.solvers._blocked.pattern_entries`.
    """
    from ._blocked import pattern_entries

    flat = dt.reshape(-1)
    terms = _terms(sde)
    s = sum(term.state_dim for term, _ in terms)
    pattern = [[False] * s for _ in range(s)]
    A_at, Q_at = {}, {}
    offset = 0
    for term, scale in terms:
        if isinstance(term, SHOSDE):  # closed forms entry by entry, with a closed-form VJP
            A, (q00, q01, q11) = _sho_entries(term, dt, scale)
            Q = ((q00, q01), (q01, q11))
        else:
            A_dense, Q_dense = _discretise(term, flat)
            if scale is not None:
                Q_dense = scale * Q_dense
            size = A_dense.shape[-1]
            A = [[A_dense[:, i, j].reshape(dt.shape) for j in range(size)] for i in range(size)]
            Q = [[Q_dense[:, i, j].reshape(dt.shape) for j in range(size)] for i in range(size)]
        size = len(A)
        for i in range(size):
            for j in range(size):
                pattern[offset + i][offset + j] = True
                A_at[offset + i, offset + j] = A[i][j]
                Q_at[offset + i, offset + j] = Q[i][j]
        offset += size
    pattern = tuple(tuple(row) for row in pattern)
    A_pairs, Q_pairs = pattern_entries(pattern)
    return pattern, tuple(A_at[p] for p in A_pairs), tuple(Q_at[p] for p in Q_pairs)
