"""The harness's `laplace` case runs at a tiny size and agrees with scikit-learn."""

import pytest

from benchmarks.cases import OURS, Config, Recorder, add_ratios


@pytest.mark.x64
def test_laplace_case_agrees_with_sklearn():
    pytest.importorskip("sklearn")
    from benchmarks.laplace import case_laplace
    from benchmarks.peers import load_peers
    from benchmarks.report import laplace_markdown

    peers = [p for p in load_peers(["sklearn"]) if p.module is not None]
    rec = Recorder("float64", verbose=False)
    case_laplace(Config(laplace_n=(40,), repeats=1, budget_s=0.1), rec, None, peers)
    add_ratios(rec.rows)
    rows = {(r["case"], r["impl"]): r for r in rec.rows}
    assert sorted(rows) == sorted(
        (case, impl) for case in ("laplace_lml_grad", "laplace_fit") for impl in (OURS, "sklearn")
    )
    assert all(r["status"] == "ok" and r["params"] == {"n": 40} for r in rec.rows), rec.rows
    ours, sk = rows["laplace_lml_grad", OURS], rows["laplace_lml_grad", "sklearn"]
    assert sk["lml_abs_diff"] < 1e-9 and abs(ours["lml"] - sk["lml"]) == sk["lml_abs_diff"]
    assert ours["time_s"] > 0 and sk["time_s"] > 0 and ours["first_call_s"] >= ours["time_s"]
    assert ours["ratio_to_ours"] == 1.0 and sk["ratio_to_ours"] == pytest.approx(
        sk["time_s"] / ours["time_s"]
    )
    # Both fits reach the same optimum of the same approximate marginal likelihood.
    fit_ours, fit_sk = rows["laplace_fit", OURS], rows["laplace_fit", "sklearn"]
    assert abs(fit_ours["final_lml"] - fit_sk["final_lml"]) < 1e-4 * abs(fit_sk["final_lml"])
    assert fit_ours["final_lml"] > ours["lml"]  # the fit improved on its start
    assert "| float64 | lml + gradient | 40 |" in "\n".join(laplace_markdown(rec.rows))


def test_laplace_case_without_sklearn_records_only_ours():
    from benchmarks.laplace import case_laplace

    rec = Recorder("float64", verbose=False)
    case_laplace(Config(laplace_n=(20,), laplace_fit=False, repeats=1, budget_s=0.1), rec, None, [])
    assert [(r["case"], r["impl"], r["status"]) for r in rec.rows] == [
        ("laplace_lml_grad", OURS, "ok")
    ]
