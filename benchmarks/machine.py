"""What machine this is, and its limits: the floors each case is compared with.

Floors are measured in the same process as the cases, at the same sizes:

* GEMM GFLOP/s (``n × n`` float matrix product; NumPy/BLAS and XLA, the faster counts);
* copy bandwidth (GB/s, read + write of a large array);
* one Cholesky factorisation (LAPACK ``potrf``) and one Cholesky inverse
  (``potri``: ``K⁻¹`` from the factor) at each ``n``. On CPU these are
  ``scipy.linalg.lapack.{d,s}potrf/potri`` (one thread when pinned); on a GPU
  or TPU the JAX equivalents, ``jax.lax.linalg.cholesky`` and
  ``cho_solve(L, I)``;
* a triangular solve ``L⁻¹ B`` with ``B`` of shape ``(n, m)`` (prediction);
* a batched Cholesky (``vmap`` of ``jax.lax.linalg.cholesky``) for the batched case.
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

from .timing import measure


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module_name: str):
    try:
        module = __import__(module_name)
        return getattr(module, "__version__", "unknown")
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None


def describe_backend(pin_record: dict | None = None) -> dict:
    """Backend (CPU/GPU/TPU), device name, library versions and thread settings."""
    import jax

    import gpjax_lite

    device = jax.devices()[0]
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    info = {
        "backend": jax.default_backend(),
        "platform": device.platform,
        "device_kind": getattr(device, "device_kind", "unknown"),
        "device_count": jax.device_count(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "threads": {
            var: os.environ.get(var)
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
        },
        "pinning": pin_record
        or {"pinned": False, "reason": "not run through python -m benchmarks"},
        # What `fit`'s own loop is compiled with (the fit rows); everything the cases
        # jit themselves uses XLA's defaults and XLA_FLAGS.
        "fit_compiler_options": gpjax_lite.default_compiler_options(),
        "load_average_start": _loadavg(),
    }
    if info["backend"] != "cpu" and pin_record and pin_record.get("pinned"):
        info["pinning"]["note"] = "CPU thread flags were set but JAX runs on an accelerator"
    return info


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:  # pragma: no cover
        return None


def spd_matrix(n: int, dtype, seed: int = 0) -> np.ndarray:
    """A well-conditioned symmetric positive-definite ``(n, n)`` matrix."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    K = A @ A.T / n + np.eye(n)
    return K.astype(dtype)


class Floors:
    """Machine-limit timings, measured on demand and cached by size."""

    def __init__(self, dtype: str, repeats: int = 5, budget_s: float = 5.0):
        import jax

        self.dtype = np.dtype(dtype)
        self.repeats = repeats
        self.budget_s = budget_s
        self.on_cpu = jax.default_backend() == "cpu"
        self._cache: dict = {}

    # -------------------------------------------------------------- helpers
    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _time(self, fn) -> float:
        return measure(fn, repeats=self.repeats, budget_s=self.budget_s).median_s

    def _lapack(self, name):
        from scipy.linalg import lapack

        prefix = "d" if self.dtype == np.float64 else "s"
        return getattr(lapack, prefix + name)

    def record(self) -> dict:
        """Everything measured so far, JSON-ready."""
        out: dict = {}
        for key, value in self._cache.items():
            name, *size = key
            out.setdefault(name, {})[",".join(str(s) for s in size) or "-"] = value
        return out

    # --------------------------------------------------------------- floors
    def gemm_gflops(self, n: int = 1000) -> float:
        """Best of NumPy (BLAS) and XLA GEMM, in GFLOP/s (``2 n³`` flops)."""

        def compute():
            import jax
            import jax.numpy as jnp

            A = np.random.default_rng(1).standard_normal((n, n)).astype(self.dtype)
            t_np = self._time(lambda: A @ A) if self.on_cpu else float("inf")
            Aj = jnp.asarray(A)
            f = jax.jit(lambda a: a @ a)
            t_jax = self._time(lambda: f(Aj))
            self._cache[("gemm_gflops_numpy", n)] = 2 * n**3 / t_np / 1e9 if self.on_cpu else None
            self._cache[("gemm_gflops_xla", n)] = 2 * n**3 / t_jax / 1e9
            return 2 * n**3 / min(t_np, t_jax) / 1e9

        return self._cached(("gemm_gflops", n), compute)

    def copy_gbps(self, nbytes: int = 64 * 2**20) -> float:
        """Copy bandwidth in GB/s, counting the bytes read and written."""

        def compute():
            count = nbytes // self.dtype.itemsize
            if self.on_cpu:
                src = np.ones(count, self.dtype)
                dst = np.empty_like(src)
                t = self._time(lambda: np.copyto(dst, src))
            else:
                import jax
                import jax.numpy as jnp

                src = jnp.ones(count, self.dtype)
                f = jax.jit(lambda a: a * 1.0000001)
                t = self._time(lambda: f(src))
            return 2 * nbytes / t / 1e9

        return self._cached(("copy_gbps",), compute)

    def stream_s(self, nbytes: float) -> float:
        """Seconds to read and write ``nbytes`` at the copy bandwidth."""
        return 2 * nbytes / (self.copy_gbps() * 1e9)

    def potrf(self, n: int) -> float:
        def compute():
            K = spd_matrix(n, self.dtype)
            if self.on_cpu:
                potrf = self._lapack("potrf")
                return self._time(lambda: potrf(K, lower=1, clean=0))
            import jax
            import jax.numpy as jnp

            f = jax.jit(lambda k: jax.lax.linalg.cholesky(k, symmetrize_input=False))
            Kj = jnp.asarray(K)
            return self._time(lambda: f(Kj))

        return self._cached(("potrf_s", n), compute)

    def potri(self, n: int) -> float:
        def compute():
            K = spd_matrix(n, self.dtype)
            if self.on_cpu:
                L, info = self._lapack("potrf")(K, lower=1, clean=0)
                potri = self._lapack("potri")
                return self._time(lambda: potri(L, lower=1))
            import jax
            import jax.numpy as jnp

            L = jnp.linalg.cholesky(jnp.asarray(K))
            eye = jnp.eye(n, dtype=L.dtype)
            f = jax.jit(lambda l: jax.scipy.linalg.cho_solve((l, True), eye))
            return self._time(lambda: f(L))

        return self._cached(("potri_s", n), compute)

    def mll_grad_floor(self, n: int) -> float:
        """``potrf + potri + O(n²)``: the O(n²) part is three passes over an ``n × n`` matrix."""
        return self.potrf(n) + self.potri(n) + 3 * self.stream_s(n * n * self.dtype.itemsize)

    def trsm(self, n: int, m: int) -> float:
        """``L⁻¹ B`` for lower ``L`` ``(n, n)`` and ``B`` ``(n, m)``."""

        def compute():
            K = spd_matrix(n, self.dtype)
            B = np.random.default_rng(2).standard_normal((n, m)).astype(self.dtype)
            if self.on_cpu:
                import scipy.linalg

                L = np.linalg.cholesky(K)
                return self._time(
                    lambda: scipy.linalg.solve_triangular(L, B, lower=True, check_finite=False)
                )
            import jax
            import jax.numpy as jnp

            L = jnp.linalg.cholesky(jnp.asarray(K))
            Bj = jnp.asarray(B)
            f = jax.jit(lambda l, b: jax.scipy.linalg.solve_triangular(l, b, lower=True))
            return self._time(lambda: f(L, Bj))

        return self._cached(("trsm_s", n, m), compute)

    def batched_cholesky(self, batch: int, n: int) -> float:
        """``vmap`` of ``jax.lax.linalg.cholesky`` over ``batch`` matrices ``(n, n)``."""

        def compute():
            import jax
            import jax.numpy as jnp

            K = np.stack([spd_matrix(n, self.dtype, seed=i) for i in range(batch)])
            Kj = jnp.asarray(K)
            f = jax.jit(jax.vmap(lambda k: jax.lax.linalg.cholesky(k, symmetrize_input=False)))
            return self._time(lambda: f(Kj))

        return self._cached(("batched_cholesky_s", batch, n), compute)

    def batched_potrf_potri_loop(self, batch: int, n: int) -> float:
        """A Python loop of LAPACK ``potrf`` + ``potri`` over ``batch`` matrices (CPU only)."""

        def compute():
            if not self.on_cpu:
                return None
            K = np.stack([spd_matrix(n, self.dtype, seed=i) for i in range(batch)])
            potrf, potri = self._lapack("potrf"), self._lapack("potri")

            def run():
                for k in K:
                    L, _ = potrf(k, lower=1, clean=0)
                    potri(L, lower=1)

            return self._time(run)

        return self._cached(("batched_potrf_potri_loop_s", batch, n), compute)
