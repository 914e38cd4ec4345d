"""The SHO kernel: closed forms on each side of critical damping, continuity and gradients at Q = ½."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpjax_lite import kernels
from gpjax_lite.kernels.sho import damped_cos_sinc, damped_cos_sinc_one_sign


def sho_numpy(tau, variance, omega, quality):
    """The SHO kernel written case by case with NumPy (Foreman-Mackey et al. 2017, eq. 20)."""
    tau = np.abs(np.asarray(tau, dtype=np.float64))
    a = omega / (2 * quality)
    if quality > 0.5:
        eta = math.sqrt(1 - 1 / (4 * quality**2))
        bracket = np.cos(eta * omega * tau) + np.sin(eta * omega * tau) / (2 * eta * quality)
        return variance * np.exp(-a * tau) * bracket
    if quality < 0.5:
        eta = math.sqrt(1 / (4 * quality**2) - 1)
        # exp(-aτ) cosh(ηωτ) written without overflow: exp((ηω - a)τ) (1 + exp(-2ηωτ)) / 2.
        grow = np.exp((eta * omega - a) * tau)
        decay = np.exp(-2 * eta * omega * tau)
        return variance * grow * (0.5 * (1 + decay) + (1 - decay) / (4 * eta * quality))
    return variance * np.exp(-omega * tau) * (1 + omega * tau)


TAU = np.array([0.0, 1e-6, 0.03, 0.4, 1.0, 2.5, 9.0, 40.0, 300.0])


@pytest.mark.parametrize("quality", [0.05, 0.3, 0.49, 0.5, 0.51, 1 / math.sqrt(2), 3.0, 50.0])
@pytest.mark.parametrize("omega", [0.2, 1.0, 7.5])
def test_matches_closed_form(quality, omega):
    k = kernels.SHO(variance=1.7, omega=omega, quality=quality)
    values = k.cross(np.zeros(1), TAU)[0]
    np.testing.assert_allclose(values, sho_numpy(TAU, 1.7, omega, quality), rtol=1e-11, atol=1e-14)
    # The pointwise value and the fast cross path agree.
    pointwise = jnp.array([k(0.0, t) for t in TAU[:5]])
    np.testing.assert_allclose(pointwise, values[:5], rtol=1e-13)


@given(
    quality=st.floats(0.02, 100.0),
    omega=st.floats(0.01, 50.0),
    tau=st.floats(0.0, 100.0),
)
def test_closed_form_hypothesis(quality, omega, tau):
    k = kernels.SHO(variance=0.8, omega=omega, quality=quality)
    value = float(k(0.0, tau))
    expected = float(sho_numpy(tau, 0.8, omega, quality))
    assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-14)


def test_continuous_through_critical_damping():
    taus = jnp.linspace(0.0, 6.0, 31)
    at_half = kernels.SHO(omega=2.0, quality=0.5).cross(jnp.zeros(1), taus)
    for offset in (1e-12, 1e-9, 1e-6):
        for q in (0.5 - offset, 0.5 + offset):
            near = kernels.SHO(omega=2.0, quality=q).cross(jnp.zeros(1), taus)
            # |∂k/∂Q| ≤ a few near Q = ½, so the change is of the order of the offset.
            np.testing.assert_allclose(near, at_half, atol=20 * offset, rtol=0)


def _value_in_quality(tau, omega=1.3):
    return lambda q: kernels.SHO(variance=1.0, omega=omega, quality=q)(0.0, tau)


@pytest.mark.parametrize(
    "quality", [0.5, 0.5 - 1e-7, 0.5 + 1e-7, 0.5 + 0.02, 0.5 - 0.02, 0.45, 0.55]
)
@pytest.mark.parametrize("tau", [0.05, 0.7, 3.0])
def test_quality_gradient_matches_finite_differences(quality, tau):
    f = _value_in_quality(tau)
    grad = float(jax.grad(f)(jnp.float64(quality)))
    h = 1e-5
    # Central differences of the NumPy closed form (each side evaluated on its own branch,
    # except straddling Q = ½, where the closed form is continuous).
    fd = (float(f(quality + h)) - float(f(quality - h))) / (2 * h)
    fd_numpy = (sho_numpy(tau, 1.0, 1.3, quality + h) - sho_numpy(tau, 1.0, 1.3, quality - h)) / (
        2 * h
    )
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grad, fd_numpy, rtol=1e-6, atol=1e-8)


def test_quality_gradient_continuous_at_half():
    for tau in (0.1, 1.0, 4.0):
        g = jax.grad(_value_in_quality(tau))
        below, at, above = (float(g(jnp.float64(q))) for q in (0.5 - 1e-9, 0.5, 0.5 + 1e-9))
        assert np.isfinite(at)
        np.testing.assert_allclose([below, above], [at, at], rtol=1e-6)


def test_all_gradients_finite_on_the_diagonal():
    X = jnp.linspace(0.0, 3.0, 7)
    for q in (0.3, 0.5, 2.0):
        grads = jax.grad(lambda k: jnp.sum(k.gram(X)))(kernels.SHO(quality=q))
        for leaf in jax.tree_util.tree_leaves(grads):
            assert np.all(np.isfinite(leaf))


def test_critical_damping_is_matern32():
    omega = 1.9
    X = jnp.linspace(-2.0, 5.0, 13)
    sho = kernels.SHO(variance=0.6, omega=omega, quality=0.5).gram(X)
    matern = kernels.Matern32(variance=0.6, lengthscale=math.sqrt(3) / omega).gram(X)
    np.testing.assert_allclose(sho, matern, rtol=1e-12, atol=1e-15)


def test_gram_is_positive_definite():
    X = jnp.sort(jax.random.uniform(jax.random.PRNGKey(0), (40,), minval=0, maxval=10))
    for q in (0.1, 0.5, 0.8, 20.0):
        K = kernels.SHO(omega=2.0, quality=q).gram(X)
        assert np.min(np.linalg.eigvalsh(np.asarray(K))) > -1e-10


def test_series_matches_trigonometric_functions_across_the_switch():
    z = jnp.array([-0.2, -0.0500001, -0.0499999, -1e-3, 0.0, 1e-3, 0.0499999, 0.0500001, 0.2])
    cos, sinc = damped_cos_sinc(z, jnp.zeros_like(z))
    zc = z.astype(complex)
    root = np.sqrt(np.asarray(zc))
    expected_cos = np.real(np.cos(root))
    expected_sinc = np.real(np.where(root == 0, 1.0, np.sin(root) / np.where(root == 0, 1, root)))
    np.testing.assert_allclose(cos, expected_cos, rtol=1e-15)
    np.testing.assert_allclose(sinc, expected_sinc, rtol=1e-15)


@pytest.mark.parametrize("quality", [0.2, 0.4999, 0.5, 0.5001, 3.0])
def test_one_sign_branch_matches_all_branches(quality):
    # The state-space transition evaluates only the branch of z's sign (the sign of Q - ½):
    # values and gradients in (ω, Q) equal the all-branch function's, under jit and vmap.
    tau = jnp.array([0.0, 1e-4, 0.05, 0.3, 1.0, 4.0, 30.0])

    def both(omega, q, one_sign):
        a = omega / (2.0 * q)
        z = (omega * tau) ** 2 * (1.0 - 0.25 / q**2)
        if one_sign:
            cos, sinc = damped_cos_sinc_one_sign(z, a * tau, q >= 0.5)
        else:
            cos, sinc = damped_cos_sinc(z, a * tau)
        return jnp.sum(cos * jnp.cos(tau) + sinc * jnp.sin(tau) * tau)

    args = (jnp.asarray(1.3), jnp.asarray(quality))
    for argnums in (0, 1):
        expected = jax.value_and_grad(both, argnums)(*args, False)
        got = jax.jit(jax.value_and_grad(both, argnums), static_argnums=2)(*args, True)
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-14)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-14)
    # vmap over Q turns the branch choice into a select of both branches: still finite, equal.
    qs = jnp.array([0.3, quality, 2.0])
    grads = jax.vmap(jax.grad(both, 1), (None, 0, None))(args[0], qs, True)
    expected = jnp.stack([jax.grad(both, 1)(args[0], q, False) for q in qs])
    np.testing.assert_allclose(grads, expected, rtol=1e-12, atol=1e-14)


def test_float32():
    k = kernels.SHO(omega=1.5, quality=0.5)
    X = jnp.linspace(0.0, 4.0, 9, dtype=jnp.float32)
    K = k.gram(X)
    assert K.dtype == jnp.float32
    np.testing.assert_allclose(K[0], sho_numpy(np.asarray(X, np.float64), 1.0, 1.5, 0.5), rtol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="quality"):
        kernels.SHO(quality=0.0)
    with pytest.raises(ValueError, match="omega"):
        kernels.SHO(omega=-1.0)
    with pytest.raises(ValueError, match="variance"):
        kernels.SHO(variance=jnp.ones(2))
    with pytest.raises(ValueError, match="one input column"):
        kernels.SHO().gram(jnp.ones((3, 2)))
    # One column selected from wider inputs works.
    K = kernels.SHO(active_dims=(1,)).gram(jnp.array([[0.0, 1.0], [5.0, 2.0]]))
    np.testing.assert_allclose(K[0, 1], sho_numpy(1.0, 1.0, 1.0, 1 / math.sqrt(2)), rtol=1e-13)
