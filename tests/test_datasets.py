"""Tests of gpjax_lite.datasets (NumPy + stdlib only)."""

import csv
import io
import math
from importlib.resources import files

import numpy as np
import pytest

from gpjax_lite.datasets import load_co2

# Annual means computed from the weekly statsmodels series when the CSV was
# generated (see gpjax_lite/data/README.md); a guard against the CSV drifting.
ANNUAL_MEAN_1959 = 316.000694
ANNUAL_MEAN_2000 = 369.360833


def _csv_rows():
    """Read the bundled CSV with the csv module -- a second, independent reader."""
    text = (files("gpjax_lite") / "data" / "co2_monthly.csv").read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    rows = [(float(t), float(v)) for t, v in reader]
    return header, rows


def _csv_annual_mean(year):
    _, rows = _csv_rows()
    values = [v for t, v in rows if math.floor(t) == year]
    assert len(values) == 12, f"expected 12 months in {year}, got {len(values)}"
    return sum(values) / len(values)


def test_shapes_are_equal_and_1d():
    X, y = load_co2()
    assert X.ndim == 1 and y.ndim == 1
    assert X.shape == y.shape
    assert X.shape[0] == 521


def test_dtype_is_float64():
    X, y = load_co2()
    assert isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
    assert X.dtype == np.float64
    assert y.dtype == np.float64


def test_x_strictly_increasing():
    X, _ = load_co2()
    assert np.all(np.diff(X) > 0)


def test_x_is_mid_month_grid():
    X, _ = load_co2()
    month_index = X * 12 - 0.5  # year*12 + (month - 1)
    np.testing.assert_allclose(month_index, np.round(month_index), atol=1e-4)


def test_first_point_1958_last_point_2001():
    X, _ = load_co2()
    assert math.floor(X[0]) == 1958
    assert math.floor(X[-1]) == 2001
    # March 1958 and December 2001, mid-month.
    assert X[0] == pytest.approx(1958 + 2.5 / 12, abs=1e-6)
    assert X[-1] == pytest.approx(2001 + 11.5 / 12, abs=1e-6)


def test_all_finite():
    X, y = load_co2()
    assert np.all(np.isfinite(X))
    assert np.all(np.isfinite(y))


def test_ppm_in_plausible_range():
    _, y = load_co2()
    assert y.min() > 310.0
    assert y.max() < 380.0


def test_loader_matches_csv_module_reader():
    X, y = load_co2()
    header, rows = _csv_rows()
    assert header == ["decimal_year", "co2_ppm"]
    assert len(rows) == X.shape[0]
    np.testing.assert_array_equal(X, [t for t, _ in rows])
    np.testing.assert_array_equal(y, [v for _, v in rows])


@pytest.mark.parametrize("year, expected", [(1959, ANNUAL_MEAN_1959), (2000, ANNUAL_MEAN_2000)])
def test_annual_mean_against_csv_module(year, expected):
    X, y = load_co2()
    in_year = (X >= year) & (X < year + 1)
    assert in_year.sum() == 12
    loader_mean = float(y[in_year].mean())
    csv_mean = _csv_annual_mean(year)
    assert loader_mean == pytest.approx(csv_mean, abs=1e-9)
    # Monthly values are rounded to 3 decimals, so the annual mean of the
    # rounded months is within 0.0005 ppm of the unrounded value.
    assert loader_mean == pytest.approx(expected, abs=1e-3)


def test_upward_trend():
    _, y = load_co2()
    assert y[-12:].mean() - y[:12].mean() > 40.0


def test_returns_fresh_arrays():
    X1, y1 = load_co2()
    X1[0] = -1.0
    y1[0] = -1.0
    X2, y2 = load_co2()
    assert X2[0] != -1.0 and y2[0] != -1.0
