"""SDE forms: H exp(Fτ) P∞ Hᵀ is the kernel, P∞ solves the Lyapunov equation, A is expm(F Δt)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gpjax_lite import kernels as K
from gpjax_lite.solvers._sde import discretise, to_sde

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
