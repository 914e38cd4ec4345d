"""The ``laplace`` case: LaplaceGP against scikit-learn's GaussianProcessClassifier.

Both compute the same Laplace approximation.

Run through the harness (``python -m benchmarks --cases laplace``); the sizes
come from :class:`benchmarks.cases.Config` (``laplace_n``) and the mode
(``--smoke``, ``--quick``, full: n = 500, 1000, 2000). Binary labels from
``sign(sin(2 x₀) + cos(x₁) + ε)`` on ``[-2, 2]²``; logit link; kernel
``variance · RBF(lengthscale)``, scikit-learn's ``ConstantKernel * RBF``.

* **lml + gradient** (rows ``laplace_lml_grad``): ``jax.jit(jax.value_and_grad(lml))``
  for gpjax_lite (the first call, which traces and compiles, is ``first_call_s``;
  then the median of the repeats), against scikit-learn's
  ``log_marginal_likelihood(theta, eval_gradient=True)``
  (:meth:`benchmarks.peers.SKLearn.laplace_lml_grad`); both at the same ``θ``
  (:data:`START`), and the two values' difference is reported as a check
  (``lml_abs_diff`` on the scikit-learn row).
* **fit** (rows ``laplace_fit``): ``gpjax_lite.fit`` (L-BFGS) against
  scikit-learn's ``GaussianProcessClassifier(...).fit`` with its default
  L-BFGS-B (no restarts), from the same starting point; gpjax_lite's wall time
  of its first call (compilation included, ``first_call_s``) and of a second
  call that reuses the compiled program (``time_s``), and the log marginal
  likelihood each reaches (``final_lml``).

scikit-learn computes in float64 whatever the run's dtype; in a float32 run it
gets the same float32-rounded inputs. Without scikit-learn (or with
``--peers`` leaving it out) only gpjax_lite's rows are recorded. Ratios to
gpjax_lite (``ratio_to_ours``) are filled in by
:func:`benchmarks.cases.add_ratios`; the table is written by
:func:`benchmarks.report.laplace_markdown`.
"""

from __future__ import annotations

import gc
import traceback

import jax
import numpy as np

import gpjax_lite as gl
from gpjax_lite import kernels, likelihoods

from .cases import OURS, Config, Recorder, once, short_error
from .timing import measure, measure_once

START = (1.0, 1.0)  # (variance, lengthscale) where both fits start and the lml is timed
SEED = 0


def make_data(n: int, seed: int, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n, 2))
    y = np.sin(2.0 * X[:, 0]) + np.cos(X[:, 1]) + 0.5 * rng.standard_normal(n) > 0.5
    return X.astype(dtype), y.astype(dtype)


def model(variance, lengthscale):
    return gl.LaplaceGP(
        kernels.RBF(variance=variance, lengthscale=lengthscale), likelihoods.Bernoulli("logit")
    )


def lml_grad(X, y):
    """A zero-argument callable: gpjax_lite's lml and its gradient at :data:`START`."""
    value_and_grad = jax.jit(jax.value_and_grad(lambda m: m.log_marginal_likelihood(X, y)))
    start = model(*START)
    return lambda: value_and_grad(start)


def fit(X, y):
    """A zero-argument callable: ``gpjax_lite.fit`` (default L-BFGS) from :data:`START`."""
    return lambda: gl.fit(model(*START), X, y)


def _judge_ours(result) -> dict:
    k = result.model.kernel
    return {
        "final_lml": -float(result.final_loss),
        "steps": int(result.steps_taken),
        "hypers": {"variance": float(k.variance), "lengthscale": float(k.lengthscale)},
    }


def _judge_sklearn(gpc) -> dict:
    variance, lengthscale = np.exp(gpc.kernel_.theta)
    return {
        "final_lml": float(gpc.log_marginal_likelihood_value_),
        "hypers": {"variance": float(variance), "lengthscale": float(lengthscale)},
    }


def case_laplace(cfg: Config, rec: Recorder, floors, peers):
    """lml + gradient and fits at each ``n`` in ``cfg.laplace_n``, gpjax_lite and scikit-learn."""
    sk = next((p for p in peers if p.name == "sklearn"), None)
    for n in cfg.laplace_n:
        X, y = make_data(n, SEED, dtype=cfg.dtype)
        # scikit-learn works in float64: it gets the very values ours sees.
        X64, y64 = X.astype(np.float64), y.astype(np.float64)
        params = {"n": n}
        ours_row = _lml_row(cfg, rec, params, OURS, lambda: lml_grad(X, y))
        if sk is not None:
            row = _lml_row(cfg, rec, params, sk.name, lambda: sk.laplace_lml_grad(X64, y64, START))
            if row["status"] == "ok" and ours_row["status"] == "ok":
                row["lml_abs_diff"] = abs(row["lml"] - ours_row["lml"])
        if not cfg.laplace_fit:
            continue
        _fit_row(rec, params, X, y)
        if sk is not None:
            once(
                rec,
                "laplace_fit",
                params,
                sk.name,
                lambda: sk.laplace_fit(X64, y64, START),
                _judge_sklearn,
            )


def _fit_row(rec: Recorder, params, X, y):
    """gpjax_lite's fit, twice: the first call compiles (``first_call_s``), the second
    reuses the compiled program (``time_s``); both reach the same optimum."""
    try:
        first_s, _ = measure_once(fit(X, y))
        wall, out = measure_once(fit(X, y))
        fields = {"time_s": wall, "first_call_s": first_s, "repeats": 1, **_judge_ours(out)}
    except Exception as exc:  # noqa: BLE001 - a failure is a row, never a crash
        traceback.print_exc(limit=2)
        return rec.add("laplace_fit", params, OURS, status="error", note=short_error(exc))
    finally:
        gc.collect()
    return rec.add("laplace_fit", params, OURS, **fields)


def _lml_row(cfg: Config, rec: Recorder, params, impl, build):
    """Time one ``lml + gradient`` callable; the row keeps its value at :data:`START` (``lml``)."""
    try:
        fn = build()
        m = measure(
            fn, repeats=cfg.repeats, budget_s=cfg.budget_s, single_above_s=cfg.single_above_s
        )
        value = float(fn()[0])
    except Exception as exc:  # noqa: BLE001 - a failure is a row, never a crash
        traceback.print_exc(limit=2)
        return rec.add("laplace_lml_grad", params, impl, status="error", note=short_error(exc))
    finally:
        gc.collect()
    return rec.add(
        "laplace_lml_grad", params, impl, lml=value, theta=list(np.log(START)), **m.as_dict()
    )
