"""benchmarks/laplace.py runs at a tiny size and agrees with scikit-learn."""

import pytest


def test_laplace_benchmark_smoke():
    pytest.importorskip("sklearn")
    from benchmarks import laplace

    rows = laplace.run(laplace.Config(sizes=(40,), repeats=1, fit=True))
    assert [(r["case"], r["n"]) for r in rows] == [("lml+grad", 40), ("fit", 40)]
    lml, fit = rows
    assert lml["lml_abs_diff"] < 1e-9
    assert lml["ours_s"] > 0 and lml["sklearn_s"] > 0 and lml["ours_first_s"] >= lml["ours_s"]
    # Both fits reach the same optimum of the same approximate marginal likelihood.
    assert abs(fit["lml_ours"] - fit["lml_sklearn"]) < 1e-4 * abs(fit["lml_sklearn"])
    assert "| lml+grad | 40 |" in laplace.markdown(rows)
