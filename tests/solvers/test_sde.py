"""SDE forms: H exp(Fτ) P∞ Hᵀ is the kernel, P∞ solves the Lyapunov equation, A is expm(F Δt)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gpjax_lite import kernels as K
from gpjax_lite.solvers._blocked import pattern_entries
from gpjax_lite.solvers._sde import discretise, discretise_entries, to_sde

from .kernels_1d import IDS, KERNELS

TAU = jnp.array([0.0, 1e-7, 0.01, 0.3, 1.0, 2.7, 8.0])


@pytest.mark.parametrize("kernel", [k for _, k in KERNELS], ids=IDS)
def test_state_space_covariance_is_the_kernel(kernel):
    sde = to_sde(kernel)
    A, _ = discretise(sde, TAU)
    H, P = sde.observation(), sde.stationary_covariance()
    covariance = jnp.einsum("i,nij,jk,k->n", H, A, P, H)
    dense = kernel.cross(jnp.zeros(1), TAU)[0]
    np.testing.assert_allclose(covariance, dense, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel", [k for _, k in KERNELS], ids=IDS)
def test_lyapunov_and_matrix_exponential(kernel):
    sde = to_sde(kernel)
    F, L, Qc, P = (
        np.asarray(m)
        for m in (
            sde.feedback(),
            sde.noise_effect(),
            sde.spectral_density(),
            sde.stationary_covariance(),
        )
    )
    scale = np.max(np.abs(F)) * np.max(np.abs(P))
    np.testing.assert_allclose(F @ P + P @ F.T + L @ Qc @ L.T, 0.0, atol=1e-12 * scale)
    # The stationary covariance is what SciPy's Lyapunov solver finds (when F is stable).
    if np.all(np.linalg.eigvals(F).real < 0):
        np.testing.assert_allclose(
            scipy.linalg.solve_continuous_lyapunov(F, -L @ Qc @ L.T),
            P,
            rtol=1e-8,
            atol=1e-10 * np.max(np.abs(P)),
        )
    A, Q = discretise(sde, TAU)
    for t, A_t, Q_t in zip(np.asarray(TAU), np.asarray(A), np.asarray(Q)):
        expm = scipy.linalg.expm(F * t)
        np.testing.assert_allclose(A_t, expm, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Q_t, P - expm @ P @ expm.T, atol=1e-12 * np.max(np.abs(P)))
        assert np.min(np.linalg.eigvalsh(Q_t)) > -1e-12 * np.max(np.abs(P))


@pytest.mark.parametrize("kernel", [k for _, k in KERNELS], ids=IDS)
def test_zero_step_is_exact(kernel):
    A, Q = discretise(to_sde(kernel), jnp.zeros(3))
    np.testing.assert_array_equal(A, np.broadcast_to(np.eye(A.shape[-1]), A.shape))
    np.testing.assert_array_equal(Q, 0.0)


def test_transition_gradients_are_finite_at_zero_step():
    def total(k):
        A, Q = discretise(to_sde(k), jnp.array([0.0, 0.5]))
        return jnp.sum(A) + jnp.sum(Q)

    kernel = K.SHO(quality=0.5) + K.Matern52() * K.Cosine()
    for leaf in jax.tree_util.tree_leaves(jax.grad(total)(kernel)):
        assert np.all(np.isfinite(leaf))


ENTRY_KERNELS = KERNELS + [
    ("scaled_sum", 2.0 * (K.SHO(omega=1.2, quality=0.7) + K.Matern32(lengthscale=0.8))),
    ("sho_near_critical", K.SHO(omega=1.5, quality=0.5001) + K.SHO(omega=0.4, quality=0.4999)),
]


@pytest.mark.parametrize("kernel", [k for _, k in ENTRY_KERNELS], ids=[i for i, _ in ENTRY_KERNELS])
def test_entries_and_their_gradients_equal_the_dense_discretisation(kernel):
    """discretise_entries (the blocked solver's input; closed-form VJP for the SHO) against discretise.

    Values to round-off, structural zeros zero, and the gradient of a random weighting of the
    entries in every hyperparameter and every step, against autodiff of the dense form.
    """
    steps = jnp.asarray(np.concatenate([np.asarray(TAU), [0.05, 0.11, 4.0]]).reshape(2, 5))
    pattern, A, Q = discretise_entries(to_sde(kernel), steps)
    A_dense, Q_dense = discretise(to_sde(kernel), steps.reshape(-1))
    A_pairs, Q_pairs = pattern_entries(pattern)
    for (i, j), entry in zip(A_pairs, A):
        np.testing.assert_allclose(entry.reshape(-1), A_dense[:, i, j], rtol=1e-12, atol=1e-14)
    for (i, j), entry in zip(Q_pairs, Q):
        np.testing.assert_allclose(entry.reshape(-1), Q_dense[:, i, j], rtol=1e-12, atol=1e-14)
    outside = ~np.asarray(pattern)
    np.testing.assert_array_equal(np.asarray(A_dense)[:, outside], 0.0)
    np.testing.assert_array_equal(np.asarray(Q_dense)[:, outside], 0.0)

    rng = np.random.default_rng(0)
    wA = jnp.asarray(rng.normal(size=(len(A_pairs),) + steps.shape))
    wQ = jnp.asarray(rng.normal(size=(len(Q_pairs),) + steps.shape))

    def by_entries(k, dt):
        _, A, Q = discretise_entries(to_sde(k), dt)
        return jnp.sum(wA * jnp.stack(A)) + jnp.sum(wQ * jnp.stack(Q))

    def by_dense(k, dt):
        A, Q = discretise(to_sde(k), dt.reshape(-1))
        A = jnp.stack([A[:, i, j].reshape(dt.shape) for i, j in A_pairs])
        Q = jnp.stack([Q[:, i, j].reshape(dt.shape) for i, j in Q_pairs])
        return jnp.sum(wA * A) + jnp.sum(wQ * Q)

    got = jax.tree_util.tree_leaves(jax.grad(by_entries, argnums=(0, 1))(kernel, steps))
    want = jax.tree_util.tree_leaves(jax.grad(by_dense, argnums=(0, 1))(kernel, steps))
    for a, b in zip(got, want):
        scale = float(np.max(np.abs(b)))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * scale)


def test_dtype_follows_request():
    sde = to_sde(K.Matern52() + K.SHO(), jnp.float32)
    A, Q = discretise(sde, jnp.array([0.0, 1.0], jnp.float32))
    assert A.dtype == Q.dtype == jnp.float32


@pytest.mark.parametrize(
    "kernel, name",
    [
        (K.RBF(), "RBF"),
        (K.Periodic(), "Periodic"),
        (K.Linear(), "Linear"),
        (K.RationalQuadratic(), "RationalQuadratic"),
        (K.White(), "White"),
        (K.Matern32(lengthscale=jnp.ones(2)), "Matern32"),
        (K.Matern12(active_dims=(1,)), "Matern12"),
        (K.Matern32() + K.RBF(), "RBF"),
        (2.0 * (K.Cosine() * K.Periodic()), "Periodic"),
    ],
)
def test_unsupported_kernels_raise_type_error(kernel, name):
    with pytest.raises(TypeError, match=name) as info:
        to_sde(kernel)
    assert "Matern12, Matern32, Matern52, Cosine, SHO, Constant" in str(info.value)


def test_subclass_is_not_silently_accepted():
    class MyMatern(K.Matern32):
        def profile(self, r2):
            return jnp.exp(-r2)

    with pytest.raises(TypeError, match="MyMatern"):
        to_sde(MyMatern())
