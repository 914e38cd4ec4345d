"""The bundled count and classification data sets (NumPy + stdlib only)."""

import csv
import hashlib
from importlib.resources import files

import numpy as np

from gpjax_lite.datasets import load_coal_mining_disasters, load_iris_binary


def _sha256(name):
    return hashlib.sha256((files("gpjax_lite") / "data" / name).read_bytes()).hexdigest()


def test_coal_mining_disasters_yearly_counts():
    years, counts = load_coal_mining_disasters()
    assert years.shape == counts.shape == (112,)
    np.testing.assert_array_equal(years, np.arange(1851, 1963))
    assert counts.sum() == 191  # Jarrett's (1979) 191 disasters
    assert np.all(counts >= 0) and np.all(counts == np.floor(counts))
    # A second, independent reader of the dates (csv module) gives the same counts.
    text = (files("gpjax_lite") / "data" / "coal_disasters.csv").read_text(encoding="utf-8")
    dates = [float(row[0]) for row in list(csv.reader(text.splitlines()))[1:]]
    assert len(dates) == 191 and dates == sorted(dates)
    for year, count in zip(years, counts):
        assert count == sum(int(d) == year for d in dates)
    # The well-known drop after the 1880s: the rate falls by about a factor of three.
    assert counts[years < 1890].mean() > 2.5 * counts[years >= 1890].mean()
    assert _sha256("coal_disasters.csv") == (
        "d33ac009e6266f75ec92622f970bc3f2fd9078b857def7cf366c5bdd2d315186"
    )


def test_iris_binary():
    X, y = load_iris_binary()
    assert X.shape == (100, 4) and y.shape == (100,)
    assert y.sum() == 50 and set(np.unique(y)) == {0.0, 1.0}
    # Published class means (Fisher 1936): petal length 4.260 (versicolor), 5.552 (virginica).
    np.testing.assert_allclose(X[y == 0, 2].mean(), 4.260, atol=1e-9)
    np.testing.assert_allclose(X[y == 1, 2].mean(), 5.552, atol=1e-9)
    assert _sha256("iris.csv") == "b6b8efc86732bc48c9fbddba53e2c191fd4f263c0ee98e2b1b7d3543e8d2121d"
