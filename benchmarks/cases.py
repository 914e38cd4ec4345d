"""The benchmark cases. Each returns a list of result rows (plain dicts).

A row is one implementation on one problem::

    {"case", "dtype", "params": {...}, "impl", "status": "ok" | "n/a" | "skipped" | "error",
     "time_s", "first_call_s", "compile_s", "repeats", "floor_s", "note", ...}

``ratio_to_ours`` and ``ratio_to_floor`` are filled in afterwards by
:func:`add_ratios`, within each group of rows that share ``case``, ``dtype``
and ``params``. The reference row of a group is the ``gpjax_lite`` one.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
import traceback

import numpy as np

from . import data
from .timing import Measurement, measure, measure_once, ratio

OURS = "gpjax_lite"


@dataclasses.dataclass
class Config:
    mode: str = "full"
    dtype: str = "float64"
    gram_kernels: tuple = ("rbf", "matern52", "periodic", "sum3")
    gram_n: tuple = (1000, 2000, 4000)
    gram_d: tuple = (1, 8, 32)
    mll_n: tuple = (500, 1000, 2000, 4000)
    fit_n: tuple = (1000, 2000)
    fit_steps: int = 500
    fit_lr: float = 0.05
    ours_restarts: int = 8
    sklearn_restarts: int = 4  # n_restarts_optimizer=4: five starts in all
    predict_n: int = 2000
    predict_m: tuple = (2000, 100_000)
    batch_size: int = 512
    batch_n: int = 64
    batch_adam_steps: int = 100
    compile_n: int = 500
    repeats: int = 5
    budget_s: float = 2.0
    fit_budget_s: float = 200.0
    predict_budget_s: float = 40.0
    single_above_s: float = 4.0
    m2_memory_limit_bytes: float = 2e9
    # Sparse models (cases svgp and sgpr, in benchmarks/sparse_cases.py).
    svgp_n: tuple = (100_000, 1_000_000)
    svgp_m: tuple = (256, 1024)
    svgp_batch_size: int = 1024
    svgp_timed_steps: tuple = ((256, 20), (1024, 4))  # (m, Adam steps per timed loop)
    svgp_target_steps: tuple = ((256, 400),)  # (m, at most this many steps to reach svgp_target)
    svgp_target: float = 0.0  # EMA of the minibatch -ELBO / n, nats per point
    svgp_peer_n: tuple = (1_000_000,)
    sgpr_n: tuple = (5_000, 20_000)
    sgpr_m: tuple = (256,)
    sgpr_steps: int = 50
    sgpr_n_test: int = 5_000
    exact_fit_n: int = 2_000  # the exact GP fits its hyperparameters on this many points
    exact_max_n: int = 5_000  # and is conditioned on all n only up to this size
    # LaplaceGP against scikit-learn's classifier (case laplace, benchmarks/laplace.py).
    laplace_n: tuple = (500, 1000, 2000)
    laplace_fit: bool = True
    # Peak memory of Posterior.predict (case predict_memory, benchmarks/predict_memory.py).
    predict_memory_n: int = 1000
    predict_memory_m: tuple = (100_000, 1_000_000)
    predict_memory_baseline_m: int = 16  # the baseline is read after predicting at this m
    predict_memory_timeout_s: float = 1800.0
    # The state-space solver against tinygp and celerite2 (case state_space, benchmarks/state_space.py).
    state_space_n: tuple = (1_000, 10_000, 100_000, 1_000_000)
    state_space_impls: tuple = ()  # empty: every implementation the case knows
    on_accelerator: bool = False


def _key(params: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


class Recorder:
    """Collects rows and prints one line per row as it goes."""

    def __init__(self, dtype: str, verbose: bool = True):
        self.rows: list[dict] = []
        self.dtype = dtype
        self.verbose = verbose

    def add(self, case, params, impl, status="ok", note=None, **fields):
        row = {
            "case": case,
            "dtype": self.dtype,
            "params": dict(params),
            "impl": impl,
            "status": status,
        }
        row.update(fields)
        if note:
            row["note"] = note
        self.rows.append(row)
        if self.verbose:
            p = " ".join(f"{k}={v}" for k, v in params.items())
            t = row.get("time_s")
            tt = f"{t:10.4g} s" if isinstance(t, float) else f"{'':>12}"
            extra = (
                f"  compile {row['compile_s']:.3g} s"
                if isinstance(row.get("compile_s"), float)
                else ""
            )
            mll = f"  mll {row['final_mll']:.6g}" if isinstance(row.get("final_mll"), float) else ""
            msg = f"  ({note})" if note and status != "ok" else ""
            print(f"[{case:>8}] {p:<40} {impl:<22} {status:<7} {tt}{extra}{mll}{msg}", flush=True)
        return row

    def lookup(self, case, params, impl):
        for row in self.rows:
            if (
                row["case"] == case
                and row["params"] == params
                and row["impl"] == impl
                and row["status"] == "ok"
            ):
                return row
        return None


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:300] + "…"


def timed(rec: Recorder, cfg: Config, case, params, impl, build, *, floor_s=None, **extra):
    """Build (untimed) and time one implementation; any failure becomes a row, never a crash."""
    if build is None:
        return rec.add(
            case, params, impl, status="n/a", note="not supported by this library", **extra
        )
    try:
        fn = build()
        m: Measurement = measure(
            fn, repeats=cfg.repeats, budget_s=cfg.budget_s, single_above_s=cfg.single_above_s
        )
    except NotImplementedError as exc:
        return rec.add(case, params, impl, status="n/a", note=str(exc), **extra)
    except Exception as exc:  # noqa: BLE001 - a peer failing must not stop the run
        traceback.print_exc(limit=2)
        return rec.add(case, params, impl, status="error", note=short_error(exc), **extra)
    finally:
        gc.collect()
    return rec.add(case, params, impl, floor_s=floor_s, **m.as_dict(), **extra)


def once(rec: Recorder, case, params, impl, build, judge=None, *, floor_s=None, **extra):
    """One wall-clock run (compile included), scored by ``judge(result)`` when given."""
    if build is None:
        return rec.add(
            case, params, impl, status="n/a", note="not supported by this library", **extra
        )
    try:
        fn = build()
        wall, out = measure_once(fn)
        fields = {"time_s": wall, "first_call_s": wall, "repeats": 1}
        if judge is not None:
            fields.update(judge(out))
    except NotImplementedError as exc:
        return rec.add(case, params, impl, status="n/a", note=str(exc), **extra)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(limit=2)
        return rec.add(case, params, impl, status="error", note=short_error(exc), **extra)
    finally:
        gc.collect()
    return rec.add(case, params, impl, floor_s=floor_s, **fields, **extra)


def _builder(peer, method):
    fn = getattr(peer, method, None)
    return fn


# ============================================================================ case 1
def case_gram(cfg: Config, rec: Recorder, floors, peers):
    """Gram matrices: ours (``k.gram``, fast paths on), the pure vmap core, and each peer."""
    from . import ours

    h = data.GRAM_HYPERS
    group = 0
    for name in cfg.gram_kernels:
        for d in cfg.gram_d:
            for n in cfg.gram_n:
                X = data.inputs(n, d, dtype=cfg.dtype)
                params = {"kernel": name, "n": n, "d": d}
                floor = n * n * np.dtype(cfg.dtype).itemsize / (
                    floors.copy_gbps() * 1e9
                ) + 2 * n * n * d / (floors.gemm_gflops() * 1e9)
                entries = [
                    # The path for the run's dtype (float32 and float64 can take different ones).
                    (
                        OURS,
                        lambda: ours.gram(name, X, h, "fast"),
                        {"path": ours.gram_paths(name, d, X.dtype)},
                    ),
                    (OURS + "[vmap]", lambda: ours.gram(name, X, h, "vmap"), {}),
                ]
                for peer in peers:
                    build = _builder(peer, "gram")
                    entries.append(
                        (peer.name, build and (lambda build=build: build(name, X, h)), {})
                    )
                # Who runs first after the inputs are made pays for fresh memory
                # (an n = 4000 float64 Gram is 128 MB per call): rotate the order.
                for impl, build, extra in _rotated(entries, group):
                    timed(rec, cfg, "gram", params, impl, build, floor_s=floor, **extra)
                group += 1


def _rotated(items: list, k: int) -> list:
    """``items`` rotated left by ``k`` (modulo its length)."""
    k %= max(len(items), 1)
    return items[k:] + items[:k]


# ============================================================================ case 2
def case_mll(cfg: Config, rec: Recorder, floors, peers):
    """Negative log marginal likelihood + gradient, RBF + noise, 1-D inputs."""
    from . import ours

    h = data.TRUE_HYPERS
    for n in cfg.mll_n:
        X, y = data.regression(n, 1, dtype=cfg.dtype)
        params = {"n": n}
        floor = floors.mll_grad_floor(n)
        comp = {"potrf_s": floors.potrf(n), "potri_s": floors.potri(n)}
        timed(
            rec,
            cfg,
            "mll_grad",
            params,
            OURS,
            lambda: ours.mll_grad(X, y, h),
            floor_s=floor,
            **comp,
        )
        for peer in peers:
            build = _builder(peer, "mll_grad")
            timed(
                rec,
                cfg,
                "mll_grad",
                params,
                peer.name,
                build and (lambda build=build: build(X, y, h)),
                floor_s=floor,
            )


# ============================================================================ case 3
def _judge(X, y):
    def judge(hypers):
        return {
            "final_mll": data.mll_float64(X, y, hypers),
            "hypers": {k: float(v) for k, v in hypers.items()},
        }

    return judge


def _projected_fit_s(rec: Recorder, impl, n, evaluations):
    row = rec.lookup("mll_grad", {"n": n}, impl)
    return None if row is None else evaluations * row["time_s"]


def case_fit(cfg: Config, rec: Recorder, floors, peers):
    """Full fits: Adam for a fixed number of steps, and L-BFGS (ours vs scikit-learn), scored alike."""
    from . import ours

    init = data.INIT_HYPERS
    by_name = {p.name: p for p in peers}
    for n in cfg.fit_n:
        X, y = data.regression(n, 1, dtype=cfg.dtype)
        judge = _judge(X, y)
        steps, lr = cfg.fit_steps, cfg.fit_lr

        def skip_if_slow(impl, evaluations, what):
            projected = _projected_fit_s(rec, impl, n, evaluations)
            if projected is not None and projected > cfg.fit_budget_s:
                return f"skipped: projected {projected:.0f} s ({what}) > fit budget {cfg.fit_budget_s:.0f} s"
            return None

        # --- Adam, fixed number of steps
        params = {"n": n, "method": f"adam{steps}"}
        floor = steps * floors.mll_grad_floor(n)
        reason = skip_if_slow(OURS, steps, f"{steps} × its MLL+grad time")
        if reason:
            rec.add("fit", params, OURS, status="skipped", note=reason)
        else:
            once(
                rec,
                "fit",
                params,
                OURS,
                lambda: ours.fit_adam(X, y, init, steps, lr),
                judge,
                floor_s=floor,
            )
        for peer in peers:
            build = _builder(peer, "fit_adam")
            if build is None:
                continue
            reason = skip_if_slow(peer.name, steps, f"{steps} × its MLL+grad time")
            if reason:
                rec.add("fit", params, peer.name, status="skipped", note=reason)
                continue
            once(
                rec,
                "fit",
                params,
                peer.name,
                lambda build=build: build(X, y, init, steps, lr),
                judge,
                floor_s=floor,
            )

        # --- L-BFGS: our default fit against scikit-learn's L-BFGS-B
        params = {"n": n, "method": "lbfgs"}
        once(rec, "fit", params, OURS, lambda: ours.fit_lbfgs(X, y, init), judge)
        sk = by_name.get("sklearn")
        if sk is not None:
            once(rec, "fit", params, "sklearn", lambda: sk.fit_lbfgs(X, y, init, 0), judge)

        # --- restarts: ours num_restarts=8 (vmapped) against scikit-learn's five starts
        params = {"n": n, "method": "restarts"}
        reason = skip_if_slow(
            OURS, cfg.ours_restarts * 60, f"{cfg.ours_restarts} starts × ~60 evaluations"
        )
        if reason:
            rec.add("fit", params, OURS, status="skipped", note=reason, restarts=cfg.ours_restarts)
        else:
            once(
                rec,
                "fit",
                params,
                OURS,
                lambda: ours.fit_lbfgs(X, y, init, cfg.ours_restarts),
                judge,
                restarts=cfg.ours_restarts,
            )
        if sk is not None:
            starts = cfg.sklearn_restarts + 1
            reason = skip_if_slow("sklearn", starts * 60, f"{starts} starts × ~60 evaluations")
            if reason:
                rec.add("fit", params, "sklearn", status="skipped", note=reason, restarts=starts)
            else:
                once(
                    rec,
                    "fit",
                    params,
                    "sklearn",
                    lambda: sk.fit_lbfgs(X, y, init, cfg.sklearn_restarts),
                    judge,
                    restarts=starts,
                )


# ============================================================================ case 4
def case_predict(cfg: Config, rec: Recorder, floors, peers):
    """Mean and variance at ``m`` test points from a conditioned ``n``-point model."""
    from . import ours

    h = data.TRUE_HYPERS
    n = cfg.predict_n
    X, y = data.regression(n, 1, dtype=cfg.dtype)
    cond = measure(ours.condition(X, y, h), repeats=cfg.repeats, budget_s=cfg.budget_s)
    posterior = ours.condition(X, y, h)()
    previous: dict = {}
    for m in cfg.predict_m:
        Xt = data.inputs(m, 1, seed=7, dtype=cfg.dtype)
        params = {"n": n, "m": m}
        try:
            cross = measure(
                ours.cross_gram(X, Xt, h),
                repeats=cfg.repeats,
                budget_s=cfg.budget_s,
                single_above_s=cfg.single_above_s,
            ).median_s
            floor = floors.trsm(n, m) + cross
            floor_parts = {"floor_trsm_s": floors.trsm(n, m), "floor_cross_gram_s": cross}
        except Exception as exc:  # noqa: BLE001
            floor, floor_parts = None, {"floor_error": short_error(exc)}
        timed(
            rec,
            cfg,
            "predict",
            params,
            OURS,
            lambda: ours.predict(posterior, Xt),
            floor_s=floor,
            condition_s=cond.median_s,
            **floor_parts,
        )
        for peer in peers:
            build = _builder(peer, "predict")
            if build is None:
                continue
            itemsize = np.dtype(cfg.dtype).itemsize
            if (
                getattr(peer, "predict_memory", "nm") == "m2"
                and m * m * itemsize > cfg.m2_memory_limit_bytes
            ):
                rec.add(
                    "predict",
                    params,
                    peer.name,
                    status="skipped",
                    note=f"needs an m × m matrix ({m * m * itemsize / 1e9:.0f} GB)",
                )
                continue
            if peer.name in previous:
                m0, t0 = previous[peer.name]
                projected = t0 * m / m0
                if projected > cfg.predict_budget_s:
                    rec.add(
                        "predict",
                        params,
                        peer.name,
                        status="skipped",
                        note=f"projected {projected:.0f} s > predict budget {cfg.predict_budget_s:.0f} s",
                    )
                    continue
            row = timed(
                rec,
                cfg,
                "predict",
                params,
                peer.name,
                lambda build=build: build(X, y, h, Xt),
                floor_s=floor,
            )
            if row["status"] == "ok":
                previous[peer.name] = (m, row["time_s"])


# ============================================================================ case 5
def _batch_judge(Xb, yb):
    def judge(hypers):
        values = [
            data.mll_float64(X, y, {k: np.asarray(v).reshape(-1)[i] for k, v in hypers.items()})
            for i, (X, y) in enumerate(zip(Xb, yb))
        ]
        return {"final_mll": float(np.mean(values)), "final_mll_is": "mean over the batch"}

    return judge


def case_batched(cfg: Config, rec: Recorder, floors, peers):
    """``batch_size`` independent GPs of ``batch_n`` points: MLL + gradient, and whole fits."""
    from . import ours

    B, n = cfg.batch_size, cfg.batch_n
    Xb, yb = data.batch(B, n, dtype=cfg.dtype)
    h = data.TRUE_HYPERS
    params = {"batch": B, "n": n}
    chol = floors.batched_cholesky(B, n)
    loop = floors.batched_potrf_potri_loop(B, n)
    floor = 2 * chol
    timed(
        rec,
        cfg,
        "batched_mll_grad",
        params,
        OURS,
        lambda: ours.batched_mll_grad(Xb, yb, h),
        floor_s=floor,
        batched_cholesky_s=chol,
        lapack_loop_potrf_potri_s=loop,
    )
    for peer in peers:
        build = _builder(peer, "batched_mll_grad")
        timed(
            rec,
            cfg,
            "batched_mll_grad",
            params,
            peer.name,
            build and (lambda build=build: build(Xb, yb, h)),
            floor_s=floor,
        )

    judge = _batch_judge(Xb, yb)
    init = data.INIT_HYPERS
    p = {**params, "method": "lbfgs"}
    once(rec, "batched_fit", p, OURS, lambda: ours.batched_fit(Xb, yb, init, "lbfgs", 200), judge)
    by_name = {peer.name: peer for peer in peers}
    if "sklearn" in by_name:
        once(
            rec,
            "batched_fit",
            p,
            "sklearn",
            lambda: by_name["sklearn"].batched_fit(Xb, yb, init),
            judge,
            note="a Python loop of L-BFGS-B fits",
        )
    steps = cfg.batch_adam_steps
    p = {**params, "method": f"adam{steps}"}
    once(
        rec,
        "batched_fit",
        p,
        OURS,
        lambda: ours.batched_fit(Xb, yb, init, "adam", steps, 0.1),
        judge,
    )
    if "gpytorch" in by_name:
        once(
            rec,
            "batched_fit",
            p,
            "gpytorch",
            lambda: by_name["gpytorch"].batched_fit(Xb, yb, init, steps, 0.1),
            judge,
            note="batch mode (batch_shape)",
        )


# ============================================================================ compile
def case_compile(cfg: Config, rec: Recorder, floors, peers):
    """First-call cost of MLL + gradient: trace + lower, XLA compile, and the first run."""
    import jax

    from . import ours

    n = cfg.compile_n
    X, y = data.regression(n, 1, dtype=cfg.dtype)
    h = data.TRUE_HYPERS
    for terms in (1, 5):
        params = {"terms": terms, "n": n}

        def ours_build(terms=terms):
            import jax.numpy as jnp

            kern = ours.five_term_kernel(jnp.asarray(X).dtype) if terms == 5 else None
            return ours.mll_grad_lowered(X, y, h, kern)

        builders = [(OURS, ours_build)]
        for peer in peers:
            if hasattr(peer, "mll_grad_lowered"):
                builders.append(
                    (
                        peer.name,
                        lambda peer=peer, terms=terms: peer.mll_grad_lowered(X, y, h, terms),
                    )
                )
        for impl, build in builders:
            try:
                lower, args = build()
                t0 = time.perf_counter()
                lowered = lower()
                t1 = time.perf_counter()
                compiled = lowered.compile()
                t2 = time.perf_counter()
                jax.block_until_ready(compiled(*args))
                t3 = time.perf_counter()
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc(limit=2)
                rec.add("compile", params, impl, status="error", note=short_error(exc))
                continue
            rec.add(
                "compile",
                params,
                impl,
                time_s=t3 - t0,
                first_call_s=t3 - t0,
                trace_lower_s=t1 - t0,
                compile_s=t2 - t1,
                run_s=t3 - t2,
                repeats=1,
            )


# ============================================================================ sparse
def case_svgp(cfg: Config, rec: Recorder, floors, peers):
    """SVGP: time per Adam step, time to a target ELBO, peers' steps (see :mod:`.sparse_cases`)."""
    from . import sparse_cases

    sparse_cases.case_svgp(cfg, rec, floors, peers)


def case_sgpr(cfg: Config, rec: Recorder, floors, peers):
    """SGPR against the exact GP: fit, predict, RMSE and NLPD (see :mod:`.sparse_cases`)."""
    from . import sparse_cases

    sparse_cases.case_sgpr(cfg, rec, floors, peers)


# ============================================================================ laplace, memory
def case_laplace(cfg: Config, rec: Recorder, floors, peers):
    """LaplaceGP against scikit-learn's GaussianProcessClassifier (see :mod:`.laplace`)."""
    from . import laplace

    laplace.case_laplace(cfg, rec, floors, peers)


def case_predict_memory(cfg: Config, rec: Recorder, floors, peers):
    """Peak memory of ``Posterior.predict`` at many test points (see :mod:`.predict_memory`)."""
    from . import predict_memory

    predict_memory.case_predict_memory(cfg, rec, floors, peers)


def case_state_space(cfg: Config, rec: Recorder, floors, peers):
    """The state-space solver against tinygp and celerite2 (see :mod:`.state_space`)."""
    from . import state_space

    state_space.case_state_space(cfg, rec, floors, peers)


CASES = {
    "gram": case_gram,
    "mll": case_mll,
    "fit": case_fit,
    "predict": case_predict,
    "batched": case_batched,
    "compile": case_compile,
    "svgp": case_svgp,
    "sgpr": case_sgpr,
    "laplace": case_laplace,
    "predict_memory": case_predict_memory,
    "state_space": case_state_space,
}
#: What ``python -m benchmarks`` runs without ``--cases``: the exact-GP cases.
DEFAULT_CASES = ("gram", "mll", "fit", "predict", "batched", "compile")
#: Names that stand for several cases in ``--cases``.
CASE_GROUPS = {"sparse": ("svgp", "sgpr"), "all": tuple(CASES)}


def add_ratios(rows: list[dict]) -> None:
    """Fill ``ratio_to_ours`` (time / gpjax_lite's time in the same group) and ``ratio_to_floor``."""
    refs = {}
    for row in rows:
        if row["impl"] == OURS and row["status"] == "ok":
            refs[(row["case"], row["dtype"], _key(row["params"]))] = row
    for row in rows:
        if row["status"] != "ok":
            continue
        ref = refs.get((row["case"], row["dtype"], _key(row["params"])))
        row["ratio_to_ours"] = ratio(row.get("time_s"), ref.get("time_s")) if ref else None
        row["ratio_to_floor"] = ratio(row.get("time_s"), row.get("floor_s"))
        if row["case"] == "compile" and ref:
            row["ratio_to_ours"] = ratio(row.get("compile_s"), ref.get("compile_s"))
        if (
            ref
            and isinstance(row.get("final_mll"), float)
            and isinstance(ref.get("final_mll"), float)
        ):
            row["mll_minus_ours"] = row["final_mll"] - ref["final_mll"]
            if not math.isfinite(row["mll_minus_ours"]):
                row["mll_minus_ours"] = None
