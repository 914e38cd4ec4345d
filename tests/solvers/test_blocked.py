"""The blocked Kalman log likelihood and its hand-written reverse mode (solvers._blocked).

References: the sequential filter (``_kalman.log_likelihood_sequential``, itself
checked against the dense solver in test_state_space.py) and JAX's autodiff of
it; finite differences of the blocked value itself. Every cotangent of the
custom VJP (``P0``, ``A``, ``Q``, ``y``, ``noise``; ``h`` is a static selector) is
compared on its own, at 1e-9 relative to its largest entry, so a wrong or
missing term fails.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gpjax_lite import kernels as K
from gpjax_lite.solvers import _blocked, _kalman, _sde
from gpjax_lite.solvers.state_space import _steps


def _problem(n, seed=0, dtype=jnp.float64, unobserved=(5,)):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 0.3 * n, n))
    if n > 12:
        t[3] = t[4]  # a repeated input: Δt = 0
        t[10] = t[11] = t[12]
    y = np.sin(t) + 0.1 * rng.normal(size=n)
    noise = rng.uniform(0.02, 0.1, n)
    observed = np.ones(n, bool)
    observed[[i for i in unobserved if i < n]] = False
    kernel = K.SHO(omega=2.0, quality=3.0) + K.Matern32(lengthscale=1.3)
    sde = _sde.to_sde(kernel, dtype)
    A, Q = _sde.discretise(sde, _steps(jnp.asarray(t, dtype)))
    args = (
        sde.observation(),
        sde.stationary_covariance(),
        A,
        Q,
        jnp.asarray(y, dtype),
        jnp.asarray(noise, dtype),
    )
    return args, jnp.asarray(observed)


def _sym(x):
    return 0.5 * (x + jnp.swapaxes(x, -1, -2))


def _gradients(fn, args, observed):
    h = args[0]
    grads = jax.grad(lambda *a: fn(h, *a, observed), argnums=tuple(range(5)))(*args[1:])
    # Q and P0 enter as symmetric matrices: compare the symmetric parts.
    return [_sym(g) if name in ("P0", "Q") else g for name, g in zip(NAMES, grads)]


NAMES = ("P0", "A", "Q", "y", "noise")


def _assert_close(new, ref, rtol):
    for name, a, b in zip(NAMES, new, ref):
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("n", [1, 2, 7, 50, 401])
def test_value_and_every_cotangent_equal_autodiff_of_the_sequential_filter(n):
    args, observed = _problem(n)
    value = _blocked.log_likelihood_blocked(*args, observed)
    reference = _kalman.log_likelihood_sequential(*args, observed)
    np.testing.assert_allclose(value, reference, rtol=1e-12)
    new = _gradients(_blocked.log_likelihood_blocked, args, observed)
    ref = _gradients(_kalman.log_likelihood_sequential, args, observed)
    _assert_close(new, ref, 1e-9)


def test_the_comparison_catches_a_wrong_adjoint(monkeypatch):
    """A perturbed backward pass (one term off by 1e-6 relative) fails the comparison above."""
    args, observed = _problem(50)
    ref = _gradients(_kalman.log_likelihood_sequential, args, observed)
    original = _blocked._adjoint_step

    def step_slightly_wrong(*step_args):
        e, kappa, lam, Lam = original(*step_args)
        return e * (1.0 + 1e-6), kappa, lam, Lam

    # e gives ∂/∂y and ∂/∂σ²: only the adjoint changes.
    monkeypatch.setattr(_blocked, "_adjoint_step", step_slightly_wrong)
    wrong = _gradients(_blocked.log_likelihood_blocked, args, observed)
    with pytest.raises(AssertionError):
        _assert_close(wrong, ref, 1e-9)


def test_gradient_equals_finite_differences_of_the_value():
    args, observed = _problem(60, seed=3)
    h, P0, A, Q, y, noise = args
    grads = _gradients(_blocked.log_likelihood_blocked, args, observed)
    rng = np.random.default_rng(1)
    eps = 1e-6
    for index, name in enumerate(NAMES, start=1):
        direction = jnp.asarray(rng.normal(size=args[index].shape))
        if name in ("P0", "Q"):
            direction = _sym(direction)

        def at(step, index=index, direction=direction):
            moved = list(args)
            moved[index] = args[index] + step * direction
            return _blocked.log_likelihood_blocked(*moved, observed)

        fd = (at(eps) - at(-eps)) / (2 * eps)
        analytic = jnp.sum(grads[index - 1] * direction)
        np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-6, err_msg=name)


def test_float32_value_and_gradient_close_to_float64():
    args64, observed = _problem(300)
    args32, _ = _problem(300, dtype=jnp.float32)
    v64 = _blocked.log_likelihood_blocked(*args64, observed)
    v32 = _blocked.log_likelihood_blocked(*args32, observed)
    assert v32.dtype == jnp.float32
    np.testing.assert_allclose(v32, v64, rtol=1e-4)
    g64 = _gradients(_blocked.log_likelihood_blocked, args64, observed)
    g32 = _gradients(_blocked.log_likelihood_blocked, args32, observed)
    for name, a, b in zip(NAMES, g32, g64):
        assert a.dtype == jnp.float32, name
        np.testing.assert_allclose(
            a, b, rtol=0, atol=2e-3 * float(jnp.max(jnp.abs(b))), err_msg=name
        )


def test_vmap_and_jit_of_value_and_gradient():
    (h, P0, A, Q, y, noise), observed = _problem(40)
    ys = jnp.stack([y, -y, 2 * y])
    fn = jax.jit(
        jax.vmap(
            jax.value_and_grad(
                lambda y: _blocked.log_likelihood_blocked(h, P0, A, Q, y, noise, observed)
            )
        )
    )
    values, grads = fn(ys)
    for k in range(3):
        v, g = jax.value_and_grad(
            lambda y: _kalman.log_likelihood_sequential(h, P0, A, Q, y, noise, observed)
        )(ys[k])
        np.testing.assert_allclose(values[k], v, rtol=1e-12)
        np.testing.assert_allclose(grads[k], g, rtol=1e-9, atol=1e-12)


def test_process_noise_vjp_equals_autodiff():
    rng = np.random.default_rng(0)
    A = jnp.asarray(rng.normal(size=(9, 3, 3)))
    P = _sym(jnp.asarray(rng.normal(size=(3, 3))))
    weights = jnp.asarray(rng.normal(size=(9, 3, 3)))

    def plain(A, P):
        Q = P - A @ P @ jnp.swapaxes(A, -1, -2)
        return _sym(Q)

    def loss(fn):
        return lambda A, P: jnp.sum(weights * fn(A, P))

    np.testing.assert_allclose(_sde._process_noise(A, P), plain(A, P), rtol=1e-13, atol=1e-13)
    got = jax.grad(loss(_sde._process_noise), argnums=(0, 1))(A, P)
    want = jax.grad(loss(plain), argnums=(0, 1))(A, P)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], _sym(want[1]), rtol=1e-12, atol=1e-12)


def _near_noise_free_problem():
    """Three terms, n = 150, unit-scale signal, targets drawn with noise 1e-8."""
    import gpjax_lite as gl

    rng = np.random.default_rng(0)
    X = np.sort(rng.uniform(0.0, 10.0, 150))[:, None]
    kernel = (
        K.Matern32(lengthscale=1.0, variance=0.5)
        + K.SHO(omega=2.0, quality=3.0, variance=0.5)
        + K.Matern52(lengthscale=2.0, variance=1e-4)
    )
    y = gl.GP(kernel, noise=1e-8).sample(jax.random.PRNGKey(1), X).reshape(-1)
    return gl, kernel, X, y


@pytest.mark.parametrize("noise", [1e-10, 1e-12, 1e-15, 1e-30])
def test_near_noise_free_value_equals_the_dense_solver(noise):
    """Observations far more precise than the signal (σ² down to 1e-30 of it).

    Each block's information about the state entering it is O(1/σ²); kept as
    ``(J, η)`` it lost about log₁₀(1/σ²) digits (0.08 nats here at 1e-15, a
    ``CholeskyError`` at 1e-30); kept as the square root ``(U, ζ)`` it does not.
    """
    gl, kernel, X, y = _near_noise_free_problem()
    dense = gl.GP(kernel, noise=noise).log_marginal_likelihood(X, y)
    blocked = gl.GP(kernel, noise=noise, solver=gl.solvers.StateSpace()).log_marginal_likelihood(
        X, y
    )
    np.testing.assert_allclose(blocked, dense, rtol=1e-9)


def test_near_noise_free_gradient_equals_the_dense_solver():
    gl, kernel, X, y = _near_noise_free_problem()

    def lml(kernel, solver):
        return gl.GP(kernel, noise=1e-12, solver=solver).log_marginal_likelihood(X, y)

    dense = jax.tree_util.tree_leaves(jax.grad(lml)(kernel, gl.solvers.Cholesky()))
    blocked = jax.tree_util.tree_leaves(jax.grad(lml)(kernel, gl.solvers.StateSpace()))
    for a, b in zip(blocked, dense):
        np.testing.assert_allclose(a, b, rtol=1e-6)
