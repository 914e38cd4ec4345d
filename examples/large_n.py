"""A million noisy 3-D points with SVGP, on one CPU, in about a minute.

    python examples/large_n.py            # n = 1 000 000
    python examples/large_n.py --n 100000 --steps 500  # quicker

What it shows:

* the data (1e6 × 3, float64) is put on the device once; ``fit_svgp`` runs all
  optimisation steps in one compiled ``lax.scan``, drawing each minibatch of
  ``batch_size`` rows with ``jax.random`` inside the loop, so a step costs
  ``O(b m² + m³)`` whatever ``n`` is, and nothing ``n × m`` is ever formed;
* inducing inputs initialised by k-means on a subset;
* test RMSE against the noise-free function, and against noisy targets (whose
  floor is the noise standard deviation, 0.1), plus the calibration of the
  predictive variance (mean z² ≈ 1).
"""

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # the library never flips it itself

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from gpjax_lite import sparse  # noqa: E402
from gpjax_lite.kernels import RBF  # noqa: E402

NOISE_STD = 0.1


def truth(X):
    return np.sin(2.0 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * np.tanh(X[:, 2])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--num-inducing", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    X = rng.uniform(-2.0, 2.0, (args.n, 3))
    y = truth(X) + NOISE_STD * rng.standard_normal(args.n)
    X_test = rng.uniform(-2.0, 2.0, (10_000, 3))
    f_test = truth(X_test)
    y_test = f_test + NOISE_STD * rng.standard_normal(len(f_test))

    t0 = time.perf_counter()
    X, y = jax.device_put(X), jax.device_put(y)  # the data lives on the device from here on
    key_z, key_fit = jax.random.split(jax.random.key(args.seed))
    Z = sparse.inducing_kmeans(key_z, X, args.num_inducing)
    model = sparse.SVGP(
        RBF(variance=1.0, lengthscale=jnp.ones(3)),  # ARD: one lengthscale per column
        Z,
        noise=0.1,
    )
    print(
        f"n = {args.n:,}  d = 3  m = {args.num_inducing}  batch = {args.batch_size}  "
        f"steps = {args.steps}"
    )
    t1 = time.perf_counter()
    result = sparse.fit_svgp(
        model,
        X,
        y,
        batch_size=args.batch_size,
        num_steps=args.steps,
        optimizer=optax.adam(0.02),
        key=key_fit,
    )
    jax.block_until_ready(result.model)
    t2 = time.perf_counter()
    fitted = result.model

    mean, var = fitted.predict(X_test, include_noise=True)
    mean, var = np.asarray(mean), np.asarray(var)
    t3 = time.perf_counter()

    rmse_f = np.sqrt(np.mean((mean - f_test) ** 2))
    rmse_y = np.sqrt(np.mean((mean - y_test) ** 2))
    z2 = np.mean((y_test - mean) ** 2 / var)
    nlpd = np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y_test - mean) ** 2 / var)
    print(f"k-means init of Z     {t1 - t0:7.2f} s")
    print(
        f"fit_svgp (compile + {args.steps} steps) {t2 - t1:7.2f} s  "
        f"({1e3 * (t2 - t1) / args.steps:.1f} ms/step incl. compile)"
    )
    print(f"predict 10 000 points {t3 - t2:7.2f} s")
    print(
        f"-ELBO/n: first step {float(result.losses[0]) / args.n:.3f}, "
        f"last 100 steps {float(np.mean(result.losses[-100:])) / args.n:.3f} nats"
    )
    print(
        f"learnt noise std {float(np.sqrt(fitted.noise)):.4f} (true {NOISE_STD}), "
        f"lengthscales {np.round(np.asarray(fitted.kernel.lengthscale), 3)}"
    )
    print(
        f"test RMSE vs f {rmse_f:.4f} | vs noisy y {rmse_y:.4f} (floor {NOISE_STD}) | "
        f"NLPD {nlpd:.3f} | mean z² {z2:.3f}"
    )


if __name__ == "__main__":
    main()
