"""gpjax_lite's side of every case: small functions that build a timed callable.

Each builder does its setup (arrays, models, conditioning) eagerly and
returns a zero-argument function; the harness times that function.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import gpjax_lite as gl
from gpjax_lite.kernels import RBF, Matern32, Matern52, Periodic, RationalQuadratic, vmap_cross

NAME = "gpjax_lite"
VERSION = gl.__version__


def kernel(name: str, hypers: dict, dtype):
    """The Gram-case kernels: ``rbf``, ``matern52``, ``periodic``, ``sum3`` (their sum)."""
    v = jnp.asarray(hypers["variance"], dtype)
    ls = jnp.asarray(hypers["lengthscale"], dtype)
    rbf = RBF(variance=v, lengthscale=ls)
    m52 = Matern52(variance=v, lengthscale=ls)
    per = Periodic(variance=v, lengthscale=ls, period=jnp.asarray(hypers.get("period", 2.0), dtype))
    return {"rbf": rbf, "matern52": m52, "periodic": per, "sum3": rbf + m52 + per}[name]


def gram_paths(name: str, d: int, dtype=jnp.float64) -> str:
    """Which code path ``k.gram`` takes for each term of a Gram-case kernel at ``d`` columns.

    Asks the library (:meth:`gpjax_lite.kernels.Kernel.matrix_path`), so the
    report never drifts from the rule; a sum's paths are joined with ``+``.
    """
    hypers = {"variance": 1.0, "lengthscale": 1.0}
    return kernel(name, hypers, dtype).matrix_path(d, dtype)


def gram(name: str, X, hypers: dict, variant: str = "fast"):
    """``k.gram(X)`` (fast paths on) or the pure vmap core ``vmap_cross(k.evaluate, X, X)``."""
    Xj = jnp.asarray(X)
    # `jax.jit` on the kernel's arrays, as tinygp's row does, rather than
    # `eqx.filter_jit`, whose per-call partition of the module is dispatch
    # overhead comparable to a whole small Gram matrix.
    arrays, static = eqx.partition(kernel(name, hypers, Xj.dtype), eqx.is_array)
    if variant == "vmap":
        f = jax.jit(lambda a, X: vmap_cross(eqx.combine(a, static).evaluate, X, X))
    else:
        f = jax.jit(lambda a, X: eqx.combine(a, static).gram(X))
    return lambda: f(arrays, Xj)


def gp_model(hypers: dict, dtype, kern=None):
    kern = (
        kern
        if kern is not None
        else RBF(
            variance=jnp.asarray(hypers["variance"], dtype),
            lengthscale=jnp.asarray(hypers["lengthscale"], dtype),
        )
    )
    return gl.GP(kern, noise=jnp.asarray(hypers["noise"], dtype))


def hypers_of(model) -> dict:
    return {
        "variance": float(model.kernel.variance),
        "lengthscale": float(model.kernel.lengthscale),
        "noise": float(model.noise),
    }


def _neg_mll(model, X, y):
    return -model.log_marginal_likelihood(X, y)


def mll_grad(X, y, hypers: dict, kern=None):
    """Negative MLL and its gradient with respect to every hyperparameter."""
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    gp = gp_model(hypers, Xj.dtype, kern)
    f = eqx.filter_jit(eqx.filter_value_and_grad(_neg_mll))
    return lambda: f(gp, Xj, yj)


def mll_grad_lowered(X, y, hypers: dict, kern=None):
    """``(lower, compile)`` callables for the compile-time case (a fresh function each time)."""
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    gp = gp_model(hypers, Xj.dtype, kern)
    params, static = eqx.partition(gp, eqx.is_inexact_array)

    def loss(params, X, y):
        return _neg_mll(eqx.combine(params, static), X, y)

    f = jax.jit(jax.value_and_grad(loss))
    return lambda: f.lower(params, Xj, yj), (params, Xj, yj)


def fit_adam(X, y, init: dict, steps: int, lr: float):
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    gp = gp_model(init, Xj.dtype)

    def run():
        return hypers_of(gl.fit(gp, Xj, yj, optimizer=optax.adam(lr), num_steps=steps).model)

    return run


def fit_lbfgs(X, y, init: dict, restarts: int = 1):
    """The default fit (L-BFGS, at most 200 steps), optionally with parallel restarts."""
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    gp = gp_model(init, Xj.dtype)
    key = jax.random.PRNGKey(0)

    def run():
        if restarts > 1:
            result = gl.fit(gp, Xj, yj, num_restarts=restarts, key=key)
        else:
            result = gl.fit(gp, Xj, yj)
        return hypers_of(result.model)

    return run


def condition(X, y, hypers: dict):
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    gp = gp_model(hypers, Xj.dtype)
    f = eqx.filter_jit(lambda gp, X, y: gp.condition(X, y))
    return lambda: f(gp, Xj, yj)


def predict(posterior, Xt):
    """Mean and variance at ``Xt`` from an already conditioned posterior (factor cached)."""
    Xtj = jnp.asarray(Xt)
    f = eqx.filter_jit(lambda post, Xt: post.predict(Xt))
    return lambda: f(posterior, Xtj)


def cross_gram(X, Xt, hypers: dict):
    """``k(X, Xt)`` alone: part of the prediction floor."""
    Xj, Xtj = jnp.asarray(X), jnp.asarray(Xt)
    k = kernel("rbf", hypers, Xj.dtype)
    f = eqx.filter_jit(lambda k, X, Xt: k.cross(X, Xt))
    return lambda: f(k, Xj, Xtj)


def batched_mll_grad(Xb, yb, hypers: dict):
    Xj, yj = jnp.asarray(Xb), jnp.asarray(yb)
    gp = gp_model(hypers, Xj.dtype)
    vg = eqx.filter_value_and_grad(_neg_mll)
    f = eqx.filter_jit(lambda gp, X, y: jax.vmap(vg, in_axes=(None, 0, 0))(gp, X, y))
    return lambda: f(gp, Xj, yj)


def batched_fit(Xb, yb, init: dict, optimizer: str = "lbfgs", steps: int = 200, lr: float = 0.1):
    """One compiled call fitting every dataset: ``jax.vmap`` of :func:`gpjax_lite.fit`."""
    Xj, yj = jnp.asarray(Xb), jnp.asarray(yb)
    gp = gp_model(init, Xj.dtype)
    opt = gl.lbfgs() if optimizer == "lbfgs" else optax.adam(lr)

    @jax.jit
    def fit_all(X, y):
        return jax.vmap(lambda X, y: gl.fit(gp, X, y, optimizer=opt, num_steps=steps).model)(X, y)

    def run():
        model = fit_all(Xj, yj)
        return {
            "variance": jax.device_get(model.kernel.variance),
            "lengthscale": jax.device_get(model.kernel.lengthscale),
            "noise": jax.device_get(model.noise),
        }

    return run


def five_term_kernel(dtype):
    one = jnp.asarray(1.0, dtype)
    return (
        RBF(variance=one, lengthscale=one)
        + Matern52(variance=one, lengthscale=one)
        + Periodic(variance=one, lengthscale=one, period=2 * one)
        + Matern32(variance=one, lengthscale=one)
        + RationalQuadratic(variance=one, lengthscale=one, alpha=one)
    )
