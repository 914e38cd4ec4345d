"""Small deterministic problems shared by the sparse tests and the 8-device worker script.

No relative imports: ``sharded_worker.py`` imports this file by path in a subprocess.
Compiling dominates these tests' run time, so the checks reuse a few compiled
programs (same shapes, same optimizer object, same static structure).
"""

import equinox as eqx
import jax
import numpy as np
import optax

import gpjax_lite as gl
from gpjax_lite import sparse
from gpjax_lite.kernels import RBF

NOISE = 0.05
#: Used for every fit of the shared problems, so compiled loops are reused.
ADAM = optax.adam(0.02)
SVGP_STEPS = 40
SVGP_BATCH = 16
FIT_STEPS = 20


def regression_1d(n=30, seed=0):
    """``n`` sorted inputs in [-4, 4] (spread, so k(X, X) is well conditioned) and noisy targets."""
    rng = np.random.default_rng(seed)
    X = np.sort(rng.uniform(-4.0, 4.0, n))
    y = np.sin(1.3 * X) + np.sqrt(NOISE) * rng.standard_normal(n)
    return X, y


def regression_2d(n=64, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n, 2))
    y = np.sin(X[:, 0]) * np.cos(X[:, 1]) + 0.2 * rng.standard_normal(n)
    return X, y


def kernel():
    return RBF(variance=1.3, lengthscale=0.6)


def exact_gp():
    return gl.GP(kernel(), noise=NOISE)


def svgp(Z, **kwargs):
    return sparse.SVGP(kernel(), Z, noise=NOISE, **kwargs)


def batch_of_datasets(num=16, n=20, seed=2):
    """``num`` independent 1-D data sets, ``X (num, n)``, ``y (num, n)``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, (num, n))
    scale = rng.uniform(0.5, 2.0, (num, 1))
    y = np.sin(X * scale) + 0.1 * rng.standard_normal((num, n))
    return X, y


# ------------------------------------------------------------ Z = X identities
@eqx.filter_jit
def z_is_x(X, y, Xt):
    """Exact GP, SGPR and SVGP (optimal q) with Z = X, all in one compiled program."""
    gp = exact_gp()
    post = gp.condition(X, y)
    sgpr = sparse.SGPR(kernel(), X, noise=NOISE, jitter=1e-12)
    sgpr_post = sgpr.condition(X, y)
    svgp_opt = svgp(X, jitter=1e-12).with_optimal_variational(X, y)
    out = {
        "exact_mll": gp.log_marginal_likelihood(X, y),
        "exact_pred": post.predict(Xt),
        "exact_pred_noisy": post.predict(Xt, include_noise=True),
        "exact_cov": post(Xt).covariance(),
        "sgpr_bound": sgpr.elbo(X, y),
        "sgpr_bound_default_jitter": sparse.SGPR(kernel(), X, noise=NOISE).elbo(X, y),
        "sgpr_pred": sgpr_post.predict(Xt),
        "sgpr_pred_noisy": sgpr_post.predict(Xt, include_noise=True),
        "sgpr_pred_shortcut": sgpr.predict(X, y, Xt),
        "sgpr_cov": sgpr_post(Xt).covariance(),
        "svgp_elbo": svgp_opt.elbo(X, y),
        "svgp_pred": svgp_opt.predict(Xt),
        "svgp_pred_noisy": svgp_opt.predict(Xt, include_noise=True),
        "svgp_cov": svgp_opt(Xt).covariance(),
    }
    return out


# ---------------------------------------------------------- batches of GPs
def fit_one_dataset(X, y):
    """Fit the exact GP to one data set (Adam, a few steps); vmapped over a batch of data sets."""
    model = gl.fit(exact_gp(), X, y, optimizer=ADAM, num_steps=FIT_STEPS).model
    return model.kernel.lengthscale, model.noise


def shared_svgp_fit(mesh=None):
    """The one fit_svgp run shared by the SVGP tests and the 8-device comparison.

    The kernel variance is held fixed (so ``fixed=`` is exercised too).
    """
    X, y = regression_2d()
    return sparse.fit_svgp(
        svgp(X[:8]),
        X,
        y,
        batch_size=SVGP_BATCH,
        num_steps=SVGP_STEPS,
        optimizer=ADAM,
        key=jax.random.key(0),
        fixed=lambda m: m.kernel.variance,
        mesh=mesh,
    )


def sharded_quantities(mesh, fit_result=None):
    """Everything the 8-device check compares, computed with ``mesh`` (``None``: one device)."""
    from gpjax_lite.sparse import sharding

    out = {}
    Xs, ys = batch_of_datasets()
    out["batched_mll"] = sharding.batched_log_marginal_likelihood(exact_gp(), Xs, ys, mesh=mesh)
    lengthscale, noise = sharding.map_batch(fit_one_dataset, Xs[:8], ys[:8], mesh=mesh)
    out["batched_fit_lengthscale"], out["batched_fit_noise"] = lengthscale, noise

    X, y = regression_2d()
    Xd, yd = (X, y) if mesh is None else sharding.shard_batch((X, y), mesh)
    out["svgp_full_elbo"] = jax.jit(sparse.svgp_elbo)(svgp(X[:8]), Xd, yd)
    sgpr = sparse.SGPR(kernel(), X[:8], noise=NOISE, chunk_size=None)
    out["sgpr_elbo"] = jax.jit(sparse.sgpr_elbo)(sgpr, Xd, yd)
    result = shared_svgp_fit(mesh) if fit_result is None else fit_result
    out["fit_svgp_losses"] = result.losses
    out["fit_svgp_q_mu"] = result.model.q_mu
    out["fit_svgp_q_sqrt"] = result.model.q_sqrt
    out["fit_svgp_Z"] = result.model.inducing_inputs
    out["fit_svgp_lengthscale"] = result.model.kernel.lengthscale
    out["fit_svgp_noise"] = result.model.noise
    return out
