"""The benchmark harness: helpers, and a smoke run at tiny sizes (no speed assertions)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cases import OURS, add_ratios
from benchmarks.timing import Measurement, measure, median, ratio

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- helpers
def test_median_odd_and_even():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([5]) == 5.0
    with pytest.raises(ValueError):
        median([])


def test_ratio_is_none_unless_both_positive_finite():
    assert ratio(3.0, 1.5) == 2.0
    for a, b in [
        (1.0, 0.0),
        (0.0, 1.0),
        (None, 1.0),
        (1.0, None),
        (float("nan"), 1.0),
        (1.0, float("inf")),
        (-1.0, 1.0),
        (True, 1.0),
    ]:
        assert ratio(a, b) is None


def test_measurement_separates_first_call():
    m = Measurement(first_s=1.0, times=[0.2, 0.1, 0.3])
    assert m.median_s == 0.2
    assert m.compile_s == pytest.approx(0.8)
    d = m.as_dict()
    assert d["repeats"] == 3 and d["time_s"] == 0.2 and d["min_s"] == 0.1
    single = Measurement(first_s=2.0, times=[])
    assert single.median_s == 2.0 and single.compile_s is None


def test_measure_counts_calls_and_respects_single_threshold():
    calls = []
    m = measure(lambda: calls.append(1), repeats=3, budget_s=10.0)
    assert len(calls) == 4 and len(m.times) == 3
    calls.clear()
    m = measure(lambda: calls.append(1), repeats=3, budget_s=10.0, single_above_s=-1.0)
    assert len(calls) == 1 and m.times == []


def test_add_ratios_within_groups():
    rows = [
        {
            "case": "mll_grad",
            "dtype": "float64",
            "params": {"n": 10},
            "impl": OURS,
            "status": "ok",
            "time_s": 2.0,
            "floor_s": 1.0,
        },
        {
            "case": "mll_grad",
            "dtype": "float64",
            "params": {"n": 10},
            "impl": "peer",
            "status": "ok",
            "time_s": 6.0,
            "floor_s": 1.0,
        },
        {
            "case": "mll_grad",
            "dtype": "float64",
            "params": {"n": 20},
            "impl": "peer",
            "status": "ok",
            "time_s": 6.0,
        },
        {
            "case": "mll_grad",
            "dtype": "float64",
            "params": {"n": 10},
            "impl": "other",
            "status": "error",
        },
    ]
    add_ratios(rows)
    assert rows[0]["ratio_to_ours"] == 1.0 and rows[0]["ratio_to_floor"] == 2.0
    assert rows[1]["ratio_to_ours"] == 3.0 and rows[1]["ratio_to_floor"] == 6.0
    assert rows[2]["ratio_to_ours"] is None  # no reference in its group
    assert "ratio_to_ours" not in rows[3]


# ----------------------------------------------------------------- smoke run
def _run_smoke(tmp_path, cases, dtype="float64"):
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "--smoke",
        "--no-plots",
        "-q",
        "--peers",
        "sklearn",
        "--cases",
        cases,
        "--dtype",
        dtype,
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "results.md").read_text().startswith("# gpjax_lite benchmarks")
    return results


def _check_results(results, expected_cases):
    assert set(results) >= {"meta", "machine", "targets", "rows"}
    meta = results["meta"]
    for key in ("date", "mode", "backend", "peers", "dtypes", "wall_s"):
        assert key in meta
    assert meta["mode"] == "smoke"
    backend = meta["backend"]
    for key in ("backend", "device_kind", "jax", "threads", "pinning"):
        assert key in backend
    if backend["backend"] == "cpu":
        assert backend["pinning"]["pinned"] is True
        flags = backend["threads"]["XLA_FLAGS"].split()
        assert "--xla_cpu_multi_thread_eigen=false" in flags
        # Every XLA flag is dashed: an undashed token makes XLA ignore the flags after it.
        assert all(flag.startswith("--") for flag in flags)
    assert "float64" in results["machine"]
    rows = results["rows"]
    assert {r["case"] for r in rows} >= set(expected_cases)
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok
    for r in rows:
        assert {"case", "dtype", "params", "impl", "status"} <= set(r)
        assert r["status"] in ("ok", "n/a", "skipped", "error"), r
        assert r["status"] != "error", r
    for r in ok:
        assert math.isfinite(r["time_s"]) and r["time_s"] > 0
        for key in ("ratio_to_ours", "ratio_to_floor"):
            value = r.get(key)
            if value is not None:
                assert math.isfinite(value) and value > 0, (key, r)
    # Every case with a gpjax_lite row has ratios to ours; sklearn rows are compared with it.
    for r in ok:
        if r["impl"] == OURS:
            assert r["ratio_to_ours"] == 1.0
        if r["impl"] == "sklearn" and r["case"] in ("gram", "mll_grad", "predict"):
            assert r["ratio_to_ours"] is not None
    for r in ok:
        if r["case"] in ("mll_grad", "gram", "predict"):
            assert r["ratio_to_floor"] is not None, r
        if r["case"] in ("fit", "batched_fit"):
            assert math.isfinite(r["final_mll"])
    for t in results["targets"]["float64"]:
        assert {"id", "description", "measured", "threshold", "met", "verdict"} <= set(t)


def test_smoke_run_fast_cases(tmp_path):
    """The smallest mode on the cases that compile least."""
    results = _run_smoke(tmp_path, "gram,mll,predict")
    _check_results(results, {"gram", "mll_grad", "predict"})


@pytest.mark.slow
def test_smoke_run_all_cases(tmp_path):
    """Every exact-GP case, including the compile-heavy fits."""
    results = _run_smoke(tmp_path, "gram,mll,fit,predict,batched,compile")
    _check_results(
        results,
        {"gram", "mll_grad", "fit", "predict", "batched_mll_grad", "batched_fit", "compile"},
    )


@pytest.mark.slow
def test_smoke_run_sparse_cases(tmp_path):
    """`--cases sparse` runs the SVGP and SGPR cases through the same harness and tables."""
    results = _run_smoke(tmp_path, "sparse")
    _check_results(results, {"svgp", "sgpr"})
    assert results["meta"]["cases"] == ["svgp", "sgpr"]
    rows = {(r["case"], r["impl"]): r for r in results["rows"]}
    svgp = rows["svgp", OURS]
    assert svgp["status"] == "ok" and svgp["timed_steps"] > 0 and svgp["params"]["batch"] > 0
    assert svgp["first_call_s"] > svgp["time_s"]  # the first call compiles a whole loop
    assert "steps_to_target" in svgp and math.isfinite(svgp["final_ema_neg_elbo_per_point"])
    for impl in ("SGPR", "exact", "exact (SGPR's hyperparameters)"):
        row = rows["sgpr", impl]
        assert row["status"] == "ok", row
        assert 0 < row["rmse"] < 1 and math.isfinite(row["nlpd"]) and row["noise_std"] > 0
    assert rows["sgpr", "exact"]["fit_n"] <= rows["sgpr", "exact"]["params"]["n"]
    table = (tmp_path / "results.md").read_text()
    assert "## 7. SVGP: one Adam step" in table and "## 8. SGPR against the exact GP" in table
    assert "| float64 | SGPR |" in table


@pytest.mark.slow
def test_smoke_run_laplace_and_predict_memory(tmp_path):
    """The `laplace` and `predict_memory` cases, both dtypes, through the harness and its tables."""
    pytest.importorskip("sklearn")
    results = _run_smoke(tmp_path, "laplace,predict_memory", dtype="float64,float32")
    _check_results(results, {"laplace_lml_grad", "laplace_fit", "predict_memory"})
    rows = {(r["case"], r["dtype"], r["impl"]): r for r in results["rows"]}
    for dtype in ("float64", "float32"):
        sk = rows["laplace_lml_grad", dtype, "sklearn"]
        # The same approximation at the same θ: equal up to the run's precision.
        assert sk["lml_abs_diff"] < (1e-9 if dtype == "float64" else 1e-3) * abs(sk["lml"])
        ours_fit, sk_fit = (rows["laplace_fit", dtype, impl] for impl in (OURS, "sklearn"))
        assert abs(ours_fit["final_lml"] - sk_fit["final_lml"]) < 1e-3 * abs(sk_fit["final_lml"])
        mem = rows["predict_memory", dtype, OURS]
        n, m = mem["params"]["n"], mem["params"]["m"]
        assert m > mem["chunk_size"]  # the smoke size goes through more than one block
        assert mem["nm_array_bytes"] == n * m * (8 if dtype == "float64" else 4)
        assert 0 <= mem["peak_bytes"] == mem["peak_rss_bytes"] - mem["baseline_rss_bytes"]
        assert mem["baseline_rss_bytes"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "## 9. LaplaceGP against scikit-learn" in table and "| float32 | fit | 40 |" in table
    assert "## 10. Peak memory of prediction" in table and "| float64 | 200 | 10,000 |" in table


@pytest.mark.slow
def test_smoke_run_state_space(tmp_path):
    """The `state_space` case through the harness: every implementation agrees on the lml."""
    results = _run_smoke(tmp_path, "state_space")
    _check_results(results, {"state_space"})
    rows = [r for r in results["rows"] if r["case"] == "state_space"]
    lml = {
        r["impl"]: r["lml"]
        for r in rows
        if r["params"]["task"] == "lml_grad" and r["status"] == "ok"
    }
    assert {"gpjax_lite", "gpjax_lite parallel", "gpjax_lite cholesky"} <= set(lml)
    assert "tinygp quasisep" not in lml  # not among this run's peers (--peers sklearn)
    for value in lml.values():
        assert value == pytest.approx(lml["gpjax_lite cholesky"], rel=1e-9)
    assert {r["params"]["task"] for r in rows} == {"lml_grad", "predict"}
    assert "## 11. State-space solver" in (tmp_path / "results.md").read_text()


def test_state_space_table():
    from benchmarks.report import state_space_markdown

    def row(task, impl, t=None, status="ok", **extra):
        return {
            "case": "state_space",
            "dtype": "float64",
            "impl": impl,
            "status": status,
            "params": {"n": 1000, "m": 1000 if task == "predict" else 0, "task": task},
            "time_s": t,
            **extra,
        }

    rows = [
        row("predict", "gpjax_lite", 0.02, first_call_s=1.0, ratio_to_ours=1.0),
        row("lml_grad", "gpjax_lite", 0.01, first_call_s=2.0, lml=-12.5, ratio_to_ours=1.0),
        row("lml_grad", "celerite2 jax", 0.005, first_call_s=0.5, lml=-12.5, ratio_to_ours=0.5),
        row(
            "lml_grad",
            "tinygp quasisep",
            status="n/a",
            note="not installed: No module named 'tinygp'",
        ),
    ]
    lines = state_space_markdown(rows)
    assert lines[0] == "## 11. State-space solver (Kalman filter and smoother)"
    body = [line for line in lines if line.startswith("| float64")]
    assert body == [
        "| float64 | lml_grad | 1,000 | gpjax_lite | 10.0 ms | 2.00 s | 1.00× | -12.500000 |",
        "| float64 | lml_grad | 1,000 | celerite2 jax | 5.0 ms | 500.0 ms | 0.50× | -12.500000 |",
        "| float64 | lml_grad | 1,000 | tinygp quasisep | n/a: not installed: No module named "
        "'tinygp' | — | — | — |",
        "| float64 | predict | 1,000 | gpjax_lite | 20.0 ms | 1.00 s | 1.00× | — |",
    ]
    assert state_space_markdown([{**rows[0], "case": "predict"}]) == []


def test_peak_rss_counts_the_subprocess_own_memory():
    """A subprocess touching 256 MiB raises its peak by about that, whatever its parent holds.

    (``ru_maxrss`` fails this on Linux: it starts at the parent's resident size.)
    """
    import numpy as np

    parent = np.ones(2**26)  # 512 MiB held here while the subprocess measures
    code = (
        "import numpy as np; from benchmarks.predict_memory import peak_rss; "
        "a, _ = peak_rss(); x = np.ones(2**25); b, _ = peak_rss(); print(b - a)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert 0.8 * 2**28 < int(out.stdout) < 1.5 * 2**28
    del parent


def test_laplace_table():
    from benchmarks.report import laplace_markdown

    def row(case, impl, n, t, status="ok", **extra):
        return {
            "case": case,
            "dtype": "float64",
            "params": {"n": n},
            "impl": impl,
            "status": status,
            "time_s": t,
            **extra,
        }

    lml, fit = "laplace_lml_grad", "laplace_fit"
    rows = [
        row(lml, OURS, 500, 0.002, first_call_s=1.0, lml=-300.0, ratio_to_ours=1.0),
        row(lml, "sklearn", 500, 0.010, lml=-300.0, lml_abs_diff=2e-12, ratio_to_ours=5.0),
        row(fit, OURS, 500, 4.0, first_call_s=4.0, final_lml=-250.5, ratio_to_ours=1.0),
        row(fit, "sklearn", 500, 2.0, final_lml=-250.25, ratio_to_ours=0.5),
        row(lml, OURS, 1000, 0.004, first_call_s=1.0, lml=-600.0, ratio_to_ours=1.0),
        row(lml, "sklearn", 1000, None, status="error", note="MemoryError: no"),
        row(fit, OURS, 2000, 9.0, first_call_s=9.0, final_lml=-900.0, ratio_to_ours=1.0),
        row("mll_grad", OURS, 500, 1.0),
    ]
    table = "\n".join(laplace_markdown(rows))
    assert table.startswith("## 9. LaplaceGP against scikit-learn's GaussianProcessClassifier")
    assert (
        "| float64 | lml + gradient | 500 | 1.00 s | 2.0 ms | 10.0 ms | 5.00× | 0.01× "
        "| \\|Δ lml\\| = 2.0e-12 |"
    ) in table
    assert (
        "| float64 | fit | 500 | 4.00 s | 4.00 s | 2.00 s | 0.50× | 0.50× "
        "| lml -250.500000 vs sklearn -250.250000 |"
    ) in table
    assert "| float64 | lml + gradient | 1,000 | 1.00 s | 4.0 ms | error | — | — | — |" in table
    # No scikit-learn row at all (not installed, or left out by --peers).
    assert "| float64 | fit | 2,000 | 9.00 s | 9.00 s | — | — | — | lml -900.000000 |" in table
    assert "- sklearn (lml + gradient, n = 1000, float64): error: MemoryError: no" in table
    assert sum(line.startswith("| float64 |") for line in table.splitlines()) == 4  # no mll_grad
    assert laplace_markdown(rows[-1:]) == []


def test_predict_memory_table():
    from benchmarks.report import predict_memory_markdown

    gib = 2**30

    def row(dtype, m, status="ok", **extra):
        return {
            "case": "predict_memory",
            "dtype": dtype,
            "params": {"n": 1000, "m": m},
            "impl": OURS,
            "status": status,
            **extra,
        }

    measured = {"chunk_size": 4096, "baseline_m": 16, "baseline_rss_bytes": gib // 2}
    rows = [
        row(
            "float64",
            1_000_000,
            time_s=30.0,
            peak_bytes=gib // 8,
            nm_array_bytes=8 * 10**9,
            device_peak_bytes=None,
            rss_source="VmHWM",
            **measured,
        ),
        row("float64", 100_000, time_s=3.0, peak_bytes=0, nm_array_bytes=8 * 10**8, **measured),
        row("float32", 1_000_000, status="error", note="RuntimeError: subprocess exited with -9"),
    ]
    table = "\n".join(predict_memory_markdown(rows))
    assert table.startswith("## 10. Peak memory of prediction")
    assert "blocks of 4096" in table and "m = 16" in table and "(`VmHWM`)" in table
    assert "| float64 | 1,000 | 1,000,000 | 0.125 | 7.451 | 0.017 | 0.500 | 30.00 |" in table
    # A peak of 0 bytes added is a result, shown as such.
    assert "| float64 | 1,000 | 100,000 | 0.000 | 0.745 | 0.000 | 0.500 | 3.00 |" in table
    assert (
        "| float32 | 1,000 | 1,000,000 | error: RuntimeError: subprocess exited with -9 "
        "| — | — | — | — |"
    ) in table
    assert "device peak" not in table  # no row measured one (a CPU run)
    rows[0]["device_peak_bytes"] = gib
    table = "\n".join(predict_memory_markdown(rows))
    assert "device peak added (GiB) |" in table
    assert "| 30.00 | 1.000 |" in table and "| 3.00 | — |" in table
    assert predict_memory_markdown([{**rows[0], "case": "predict"}]) == []


def test_gram_case_reports_the_path_of_its_dtype():
    """A float32 run reports the float32 path (Periodic: "columns"; float64 takes "features")."""
    import numpy as np

    from benchmarks import ours
    from benchmarks.cases import Config, Recorder, case_gram

    class Floors:
        def copy_gbps(self):
            return 1.0

        def gemm_gflops(self):
            return 1.0

    assert ours.gram_paths("periodic", 1, np.float64) == "features"
    assert ours.gram_paths("periodic", 1, np.float32) == "columns"
    rec = Recorder("float32", verbose=False)
    cfg = Config(
        dtype="float32",
        gram_kernels=("periodic", "sum3"),
        gram_n=(8,),
        gram_d=(1,),
        repeats=1,
        budget_s=0.01,
    )
    case_gram(cfg, rec, Floors(), [])
    paths = {r["params"]["kernel"]: r["path"] for r in rec.rows if r["impl"] == OURS}
    assert paths == {k: ours.gram_paths(k, 1, np.float32) for k in ("periodic", "sum3")}
    assert paths["periodic"] == "columns" and paths["sum3"].endswith("+columns")


def test_case_groups_and_aliases_expand():
    from benchmarks.cases import CASES, DEFAULT_CASES
    from benchmarks.runner import parse_args, select_cases

    assert select_cases("sparse") == ["svgp", "sgpr"]
    assert select_cases("mll_grad,sgpr,mll") == ["mll", "sgpr"]
    assert select_cases("all") == list(CASES)
    assert select_cases(parse_args([]).cases) == list(DEFAULT_CASES)
    assert not {"svgp", "sgpr"} & set(DEFAULT_CASES)  # the default run stays the exact-GP grid
    with pytest.raises(SystemExit, match="unknown case"):
        select_cases("sparse,nope")


def test_sparse_tables_and_ratios():
    from benchmarks.report import sparse_markdown

    def svgp(n, m, t, impl=OURS, **extra):
        return {
            "case": "svgp",
            "dtype": "float64",
            "params": {"n": n, "m": m, "batch": 64},
            "impl": impl,
            "status": "ok",
            "time_s": t,
            "compile_s": 1.0,
            **extra,
        }

    rows = [
        svgp(
            1000,
            8,
            0.002,
            max_steps=50,
            steps_to_target=12,
            time_to_target_s=0.024,
            final_ema_neg_elbo_per_point=-0.5,
            target_neg_elbo_per_point=0.0,
        ),
        svgp(1000, 32, 0.008),
        svgp(
            4000,
            8,
            0.003,
            max_steps=50,
            steps_to_target=None,
            time_to_target_s=None,
            final_ema_neg_elbo_per_point=0.7,
            target_neg_elbo_per_point=0.0,
        ),
        svgp(4000, 32, 0.006),
        svgp(4000, 32, 0.012, impl="gpjax", ratio_to_ours=2.0),
        {
            "case": "sgpr",
            "dtype": "float64",
            "params": {"n": 500, "m": 16},
            "impl": "SGPR",
            "status": "ok",
            "time_s": 0.5,
            "condition_predict_s": 0.5,
            "fit_s_incl_compile": 3.0,
            "rmse": 0.11,
            "nlpd": -0.8,
            "noise_std": 0.1,
            "n_test": 100,
        },
        {
            "case": "sgpr",
            "dtype": "float64",
            "params": {"n": 9000},
            "impl": "exact",
            "status": "skipped",
            "note": "n above Config.exact_max_n",
        },
    ]
    table = "\n".join(sparse_markdown(rows))
    assert "| float64 | 1,000 | 8 | 64 | 2.0 | 1.0 | 12 | 0.0 | -0.500 |" in table
    assert "| float64 | 4,000 | 8 | 64 | 3.0 | 1.0 | not in 50 | — | 0.700 |" in table
    # Ratios of time per step: largest over smallest n at each m, and m likewise.
    assert "m = 8: n = 4,000 / n = 1,000: **1.50**" in table
    assert "m = 32: n = 4,000 / n = 1,000: **0.75**" in table
    assert "n = 1,000: m = 32 / m = 8: **4.00**" in table
    assert "| gpjax | float64 | 4,000 | 32 | 12.0 | 2.00× |" in table
    assert "| float64 | SGPR | 500 | 16 | 3.0 | 0.50 | 0.1100 | -0.800 | 0.1000 |" in table
    assert "| float64 | exact | 9,000 | — | — | skipped: n above Config.exact_max_n |" in table
    assert sparse_markdown([r for r in rows if r["case"] == "gram"]) == []


def test_different_kernel_rows_are_marked_and_left_out_of_the_gram_target():
    from benchmarks.report import different_kernel, evaluate_targets

    def row(impl, kernel, d, t):
        return {
            "case": "gram",
            "dtype": "float64",
            "impl": impl,
            "status": "ok",
            "time_s": t,
            "params": {"kernel": kernel, "n": 100, "d": d},
        }

    cheap = row("tinygp", "periodic", 8, 0.001)  # sin² of one distance: less work, another kernel
    assert different_kernel(cheap)
    assert not different_kernel(row("tinygp", "periodic", 1, 0.001))  # the same function at d = 1
    assert not different_kernel(row("gpjax", "periodic", 8, 0.001))
    assert not different_kernel(row("tinygp", "rbf", 8, 0.001))
    rows = [row(OURS, "periodic", 8, 0.010), cheap, row("gpjax", "periodic", 8, 0.020)]
    (target,) = evaluate_targets(rows)
    assert target["measured"] == pytest.approx(0.5) and target["met"]  # against GPJax, not tinygp
    assert "gpjax" in target["note"]


def test_publish_rerenders_a_run_and_links_it(tmp_path):
    """`--publish` rewrites results.md from results.json and copies it with a link to the run."""
    out = tmp_path / "run"
    _run_smoke(out, "gram")
    (out / "results.md").write_text("stale\n")
    (out / "gram.png").write_bytes(b"png")
    from benchmarks.report import publish

    latest = publish(out, tmp_path / "latest.md")
    table = latest.read_text()
    assert table.startswith("# gpjax_lite benchmarks")
    assert "From `benchmarks/results/run/`" in table and "(run/gram.png)" in table
    assert (out / "results.md").read_text().startswith("# gpjax_lite benchmarks")
    assert "## 1. Gram matrix" in table
    # The docs include only the tables (the run-folder links would not resolve there).
    start, end = table.index("[start:tables]"), table.index("[end:tables]")
    assert start < table.index("## 1. Gram matrix") < end
    assert table.index("(run/gram.png)") < start


def test_rotated_order_visits_every_start():
    from benchmarks.cases import _rotated

    items = ["a", "b", "c"]
    assert _rotated(items, 0) == items
    assert _rotated(items, 1) == ["b", "c", "a"]
    assert _rotated(items, 4) == ["b", "c", "a"]
    assert {tuple(_rotated(items, k))[0] for k in range(3)} == set(items)
    assert _rotated([], 2) == []
