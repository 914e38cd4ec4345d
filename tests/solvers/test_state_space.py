"""solvers.StateSpace gives the dense Cholesky solver's numbers, in O(n).

The reference is the dense solver (``solvers.Cholesky``, itself checked
against SciPy in ``tests/test_gp.py``): log marginal likelihood within 1e-9
relative, gradients 1e-6, predictive moments 1e-7 (API.md, "Solvers"). Each
comparison runs one jitted function per solver, so a kernel compiles once.
"""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import naming
from hypothesis import given, settings
from hypothesis import strategies as st

import gpjax_lite as gl
from gpjax_lite import GP, solvers
from gpjax_lite import kernels as K
from gpjax_lite.means import Constant

from .kernels_1d import KERNELS

RNG = np.random.default_rng(7)
N = 40
# Unsorted inputs with repeats (a pair and a triple), per-point noise and a constant mean.
X = RNG.uniform(0.0, 8.0, N)
X[5] = X[17]
X[10] = X[11] = X[30]
Y = np.sin(1.3 * X) + 0.3 * np.cos(5 * X) + 0.1 * RNG.normal(size=N)
NOISE = RNG.uniform(0.02, 0.1, N)
# Test inputs: unsorted, outside the data range, equal to training inputs, repeated.
XT = np.concatenate([RNG.uniform(-2.0, 10.0, 9), X[[3, 10, 5]], [X[3], 11.5, -3.0]])


def outputs(gp, X, y, Xt):
    """Everything a GP computes: lml, its gradient, predictions, the posterior and the prior."""
    lml, grad = eqx.filter_value_and_grad(lambda g: g.log_marginal_likelihood(X, y))(gp)
    post = gp.condition(X, y)
    mean, var = post.predict(Xt)
    joint = post(Xt)
    prior = gp.prior(Xt)
    return dict(
        lml=lml,
        grad=grad,
        mean=mean,
        var=var,
        joint_mean=joint.mean,
        joint_var=joint.variance(),
        joint_cov=joint.covariance(),
        prior_mean=prior.mean,
        prior_cov=prior.covariance(),
        prior_var=prior.variance(),
    )


compute = eqx.filter_jit(outputs)


def assert_same(dense, state, grad_rtol=1e-6):
    np.testing.assert_allclose(state["lml"], dense["lml"], rtol=1e-9)
    for g_dense, g_state in zip(
        jax.tree_util.tree_leaves(dense["grad"]), jax.tree_util.tree_leaves(state["grad"])
    ):
        scale = max(float(jnp.max(jnp.abs(g_dense))), 1e-3)
        np.testing.assert_allclose(g_state, g_dense, rtol=grad_rtol, atol=grad_rtol * scale)
    prior_scale = float(jnp.max(dense["prior_var"]))
    for name in (
        "mean",
        "var",
        "joint_mean",
        "joint_var",
        "joint_cov",
        "prior_mean",
        "prior_cov",
        "prior_var",
    ):
        np.testing.assert_allclose(
            state[name], dense[name], rtol=1e-7, atol=1e-7 * prior_scale, err_msg=name
        )


def models(kernel, noise=NOISE, mean=None, parallel=False):
    kwargs = {} if mean is None else {"mean": mean}
    dense = GP(kernel, noise=noise, **kwargs)
    state = GP(kernel, noise=noise, solver=solvers.StateSpace(parallel=parallel), **kwargs)
    return dense, state


#: Composite kernels that between them use every supported kernel and combination
#: (each base kernel's SDE is checked on its own in test_sde.py); one compile each.
COMPOSITES = {
    "matern12+cosine": K.Matern12(variance=1.3, lengthscale=0.7)
    + K.Cosine(variance=0.9, period=1.7),
    "sho_under+constant+matern32": K.SHO(variance=1.1, omega=3.0, quality=4.0)
    + K.Constant(variance=0.3)
    + K.Matern32(variance=0.8, lengthscale=2.0),
    "sho_over*matern52": K.SHO(variance=0.7, omega=2.0, quality=0.3) * K.Matern52(lengthscale=3.0),
    "scaled_sho_critical": 2.5 * K.SHO(omega=1.5, quality=0.5),
    "nested": dict(KERNELS)["nested"],
    "product3": dict(KERNELS)["product3"],
}


@pytest.mark.parametrize("kernel", list(COMPOSITES.values()), ids=list(COMPOSITES))
def test_equals_dense_solver(kernel):
    dense, state = models(kernel, mean=Constant(0.3))
    assert_same(compute(dense, X, Y, XT), compute(state, X, Y, XT))


@pytest.mark.parametrize("name", ["sho_under+constant+matern32", "sho_over*matern52"])
def test_parallel_equals_sequential(name):
    kernel = COMPOSITES[name]
    _, sequential = models(kernel)
    _, parallel = models(kernel, parallel=True)
    a, b = compute(sequential, X, Y, XT), compute(parallel, X, Y, XT)
    for key in a:
        for u, v in zip(jax.tree_util.tree_leaves(a[key]), jax.tree_util.tree_leaves(b[key])):
            np.testing.assert_allclose(v, u, rtol=1e-9, atol=1e-11, err_msg=key)


def test_scalar_noise_and_1d_inputs_in_any_layout():
    kernel = K.Matern32(lengthscale=1.5) + K.SHO(omega=2.0, quality=5.0)
    dense, state = models(kernel, noise=0.05)
    a = compute(dense, X, Y, XT)
    b = compute(state, X[:, None], Y, XT[:, None])
    assert_same(a, b)


@settings(max_examples=15)
@given(
    data=st.data(),
    variance=st.floats(0.1, 10.0),
    lengthscale=st.floats(0.05, 20.0),
    omega=st.floats(0.2, 20.0),
    quality=st.floats(0.1, 20.0),
    noise=st.floats(1e-3, 1.0),
)
def test_hypothesis_hyperparameters_and_unsorted_repeated_inputs(
    data, variance, lengthscale, omega, quality, noise
):
    n = 16
    base = data.draw(st.lists(st.floats(-5.0, 5.0), min_size=n, max_size=n))
    repeats = data.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))
    Xh = np.asarray(base)[np.asarray(repeats)]  # a permutation with repeats
    yh = np.cos(Xh) + 0.1 * np.arange(n) / n
    Xt = np.concatenate(
        [Xh[:3], np.asarray(data.draw(st.lists(st.floats(-8.0, 8.0), min_size=3, max_size=3)))]
    )
    kernel = K.Matern52(variance=variance, lengthscale=lengthscale) + K.SHO(
        omega=omega, quality=quality
    )
    dense, state = models(kernel, noise=noise)
    a, b = compute(dense, Xh, yh, Xt), compute(state, Xh, yh, Xt)
    np.testing.assert_allclose(b["lml"], a["lml"], rtol=1e-9, atol=1e-9)
    for g_dense, g_state in zip(
        jax.tree_util.tree_leaves(a["grad"]), jax.tree_util.tree_leaves(b["grad"])
    ):
        np.testing.assert_allclose(
            g_state, g_dense, rtol=1e-6, atol=1e-6 * max(1.0, float(jnp.max(jnp.abs(g_dense))))
        )
    scale = variance + 1.0
    for name in ("mean", "var", "joint_cov", "prior_cov"):
        np.testing.assert_allclose(b[name], a[name], rtol=1e-7, atol=1e-7 * scale, err_msg=name)


def test_float32_close_to_float64():
    n = 500
    Xs = np.sort(RNG.uniform(0.0, 50.0, n))
    ys = np.sin(Xs) + 0.1 * RNG.normal(size=n)
    kernel = K.Matern32(lengthscale=2.0) + K.SHO(omega=3.0, quality=4.0)
    gp = GP(kernel, noise=0.05, solver=solvers.StateSpace())
    lml = jax.jit(lambda g, X, y: g.log_marginal_likelihood(X, y))
    predict = jax.jit(lambda g, X, y, Xt: g.condition(X, y).predict(Xt))
    l64 = lml(gp, Xs, ys)
    l32 = lml(gp, Xs.astype(np.float32), ys.astype(np.float32))
    assert l32.dtype == jnp.float32
    np.testing.assert_allclose(l32, l64, rtol=1e-4)
    Xt = np.linspace(-1.0, 51.0, 37)
    m64, v64 = predict(gp, Xs, ys, Xt)
    m32, v32 = predict(gp, Xs.astype(np.float32), ys.astype(np.float32), Xt.astype(np.float32))
    assert m32.dtype == v32.dtype == jnp.float32
    np.testing.assert_allclose(m32, m64, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(m64))))
    np.testing.assert_allclose(v32, v64, rtol=1e-4, atol=1e-4 * float(jnp.max(v64)))


def test_vmap_over_datasets_equals_loop():
    kernel = K.SHO(omega=2.0, quality=2.0) + K.Matern12()
    gp = GP(kernel, noise=0.1, solver=solvers.StateSpace())
    Xs = np.stack([RNG.permutation(X), X + 1.0, X * 0.5])
    ys = np.stack([Y, -Y, Y**2])
    batched = jax.vmap(lambda X, y: gp.log_marginal_likelihood(X, y))(Xs, ys)
    dense = GP(kernel, noise=0.1)
    expected = [dense.log_marginal_likelihood(x, y) for x, y in zip(Xs, ys)]
    np.testing.assert_allclose(batched, expected, rtol=1e-9)
    means = jax.vmap(lambda X, y: gp.condition(X, y).predict(XT)[0])(Xs, ys)
    np.testing.assert_allclose(
        means[1], dense.condition(Xs[1], ys[1]).predict(XT)[0], rtol=1e-7, atol=1e-9
    )


def test_fit_reaches_the_dense_optimum():
    kernel = K.Matern32(lengthscale=0.5) + K.SHO(variance=0.5, omega=1.0, quality=2.0)
    results = []
    for solver in (solvers.Cholesky(), solvers.StateSpace()):
        gp = GP(kernel, noise=0.1, solver=solver)
        results.append(gl.fit(gp, X, Y, num_steps=60))
    dense, state = results
    np.testing.assert_allclose(state.losses, dense.losses, rtol=1e-6)
    # The SHO's quality runs off to ~4e8 here, where the likelihood is flat in it (the damping
    # ω/2Q → 0): Adam's normalised steps in that flat direction follow the sign of a gradient
    # that is round-off, so it is compared on the log scale the optimiser moves it on.
    np.testing.assert_allclose(
        np.log(state.model.kernel.kernels[1].quality),
        np.log(dense.model.kernel.kernels[1].quality),
        atol=1e-3,
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(dense.model, eqx.is_inexact_array)),
        jax.tree_util.tree_leaves(eqx.filter(state.model, eqx.is_inexact_array)),
    ):
        if np.ndim(a) == 0 and a > 1e6:
            continue  # the quality, above
        np.testing.assert_allclose(b, a, rtol=1e-4)
    assert isinstance(state.model.solver, solvers.StateSpace)


def _check_moments(draws, mean, cov, sigmas=5.0):
    """Sample mean and covariance against the exact ones, entry by entry.

    Tolerance: ``sigmas`` standard errors of each estimator for Gaussian draws,
    ``sqrt(C_ii / N)`` for a mean and ``sqrt((C_ii C_jj + C_ij²) / N)`` for a
    covariance entry (a false alarm has probability below 1e-4 per entry at 5σ).
    """
    num = draws.shape[0]
    d = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), sigmas * d / np.sqrt(num) + 1e-12)
    sample_cov = np.cov(draws, rowvar=False)
    se = np.sqrt((np.outer(d, d) ** 2 + cov**2) / num)
    np.testing.assert_array_less(np.abs(sample_cov - cov), sigmas * se + 1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_samples_have_the_dense_distribution(parallel):
    kernel = K.Matern32(lengthscale=1.0) + K.SHO(omega=3.0, quality=3.0)
    dense, state = models(kernel, parallel=parallel)
    Xt = XT[[0, 1, 2, 9, 10, 12, 13]]  # includes a training input and a repeated test input
    num = 4000
    post_dense = dense.condition(X, Y)(Xt)
    draws = jax.jit(lambda g, key: g.condition(X, Y).sample(key, Xt, num))(state, jax.random.key(1))
    assert draws.shape == (num, Xt.shape[0])
    _check_moments(
        np.asarray(draws), np.asarray(post_dense.mean), np.asarray(post_dense.covariance())
    )
    prior_draws = jax.jit(lambda g, key: g.sample(key, Xt, num))(state, jax.random.key(2))
    _check_moments(np.asarray(prior_draws), np.zeros(Xt.shape[0]), np.asarray(kernel.gram(Xt)))


def test_joint_distribution_type_and_lazy_covariance():
    _, state = models(K.Matern52())
    post = state.condition(X, Y)
    joint = post(XT)
    assert isinstance(joint, gl.MultivariateNormal)
    assert joint.covariance_matrix is None  # formed only in covariance()
    # log_prob goes through the dense covariance, as for the dense solver.
    # (Distinct test inputs: with a repeated one the covariance is singular.)
    Xt = XT[:9]
    dense = GP(K.Matern52(), noise=NOISE).condition(X, Y)(Xt)
    y = np.asarray(dense.mean) + 0.01
    np.testing.assert_allclose(post(Xt).log_prob(y), dense.log_prob(y), rtol=1e-6)
    np.testing.assert_allclose(
        post.predict(Xt, include_noise=np.full(Xt.shape, 0.1))[1],
        np.asarray(dense.variance()) + 0.1,
        rtol=1e-7,
    )


def test_jit_of_bound_methods_and_prediction_at_many_points():
    kernel = K.Matern52(lengthscale=0.5)
    gp = GP(kernel, noise=0.05, solver=solvers.StateSpace())
    post = jax.jit(gp.condition)(X, Y)
    assert bool(post.is_valid())
    Xt = np.linspace(-1, 9, 20_000)
    mean, var = jax.jit(post.predict)(Xt)
    dense_mean, dense_var = GP(kernel, noise=0.05).condition(X, Y).predict(Xt[::997])
    np.testing.assert_allclose(mean[::997], dense_mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(var[::997], dense_var, rtol=1e-7, atol=1e-10)


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kernel", [K.RBF(), K.Periodic(), K.Matern32() * K.Linear()], ids=["rbf", "periodic", "linear"]
)
def test_unsupported_kernel_raises_type_error_naming_it(kernel):
    gp = GP(kernel, solver=solvers.StateSpace())
    name = "Linear" if isinstance(kernel, K.Product) else type(kernel).__name__
    for call in (
        lambda: gp.log_marginal_likelihood(X, Y),
        lambda: gp.prior(X),
        lambda: gp.condition(X, Y),
    ):
        with pytest.raises(TypeError, match=name):
            call()


@pytest.mark.parametrize("value", ["no", 0.5, 1, None])
def test_parallel_must_be_a_bool(value):
    # "no" is truthy: without the check it would silently select the parallel path.
    with pytest.raises(TypeError, match=naming("parallel")):
        solvers.StateSpace(parallel=value)


def test_a_second_derivative_is_a_type_error_not_nan():
    """The reverse pass is hand-written for first derivatives; differentiated again it gave
    NaN. A gradient of a gradient is a TypeError naming the way out; the gradient itself is
    unchanged (the dense solver's)."""
    t = np.linspace(0.0, 10.0, 30)
    y = np.sin(t)

    def lml(lengthscale, solver):
        gp = GP(K.Matern32(lengthscale=lengthscale), noise=0.1, solver=solver)
        return gp.log_marginal_likelihood(t, y)

    np.testing.assert_allclose(
        jax.grad(lml)(1.0, solvers.StateSpace()), jax.grad(lml)(1.0, solvers.Cholesky()), rtol=1e-6
    )
    with pytest.raises(TypeError, match="solvers.Cholesky"):
        jax.jacrev(jax.grad(lml))(1.0, solvers.StateSpace())
    assert np.isfinite(jax.hessian(lml)(1.0, solvers.Cholesky()))


def test_several_columns_raise_value_error_naming_the_argument():
    gp = GP(K.Matern32(), noise=0.1, solver=solvers.StateSpace())
    X2 = np.stack([X, X], axis=1)
    for call in (
        lambda: gp.log_marginal_likelihood(X2, Y),
        lambda: gp.condition(X2, Y),
        lambda: gp.prior(X2),
        lambda: gp.sample(jax.random.key(0), X2),
        lambda: gl.fit(gp, X2, Y, num_steps=2),
    ):
        with pytest.raises(ValueError, match="`X`"):
            call()
    with pytest.raises(ValueError, match="`X`"):
        GP(K.SHO(), solver=solvers.StateSpace()).log_marginal_likelihood(X2, Y)
    post = gp.condition(X, Y)
    for call in (
        lambda: post.predict(X2),
        lambda: post(X2),
        lambda: post.sample(jax.random.key(0), X2),
    ):
        with pytest.raises(ValueError, match="`Xt`"):
            call()


def test_parallel_is_static():
    solver = solvers.StateSpace(parallel=True)
    assert jax.tree_util.tree_leaves(solver) == []


def test_failed_filter_is_cholesky_error_eagerly_and_flag_under_jit():
    # A negative noise set around the constructor: eager code names it before any
    # filtering; under a transformation (values unseen) the filter's S ≤ 0 is a flag.
    gp = GP(K.Matern12(), noise=0.1, solver=solvers.StateSpace())
    bad = eqx.tree_at(lambda g: g.noise, gp, jnp.asarray(-5.0))
    with pytest.raises(ValueError, match="`noise`"):
        bad.log_marginal_likelihood(X, Y)
    value = jax.jit(lambda g: g.log_marginal_likelihood(X, Y))(bad)
    assert not np.isfinite(value)
    assert not bool(jax.jit(lambda g: g.condition(X, Y).is_valid())(bad))


# ------------------------------------------------------------------------ scale
MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from gpjax_lite import GP, kernels as K, solvers
    n = 200_000
    rng = np.random.default_rng(0)
    X = np.sort(rng.uniform(0.0, 2000.0, n))
    y = np.sin(X) + 0.1 * rng.normal(size=n)
    gp = GP(K.Matern32() + K.SHO(omega=2.0, quality=3.0), noise=0.1, solver=solvers.StateSpace())
    value, grad = jax.jit(jax.value_and_grad(lambda g: g.log_marginal_likelihood(X, y)))(gp)
    assert np.isfinite(value), value
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(grad))
    print("ok", float(value))
    """
)


@pytest.mark.slow
def test_lml_and_gradient_at_n_200k_under_a_memory_cap():
    """A 4 GiB address-space cap: an n × n float64 matrix (320 GB) cannot exist, O(n s²) fits."""
    limit = 4 * 2**30
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false")
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(limit)],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
