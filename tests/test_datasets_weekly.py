"""gpjax_lite.datasets.load_co2_weekly: the bundled weekly Mauna Loa CO2 series."""

import csv
import hashlib
import io
from importlib.resources import files

import numpy as np

from gpjax_lite.datasets import load_co2, load_co2_weekly

SHA256 = "7f843fca953bfc8477f94730010e5958016e24b8aeb822b31dab12e59aae38ef"


def _rows():
    text = (files("gpjax_lite") / "data" / "co2_weekly.csv").read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    return next(reader), list(reader)


def test_file_is_the_documented_one():
    data = (files("gpjax_lite") / "data" / "co2_weekly.csv").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256


def test_loader_matches_csv_module_and_dates():
    header, rows = _rows()
    assert header == ["date", "decimal_year", "co2_ppm"]
    X, y = load_co2_weekly()
    assert X.shape == y.shape == (2225,) and X.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(X, [float(r[1]) for r in rows])
    np.testing.assert_array_equal(y, [float(r[2]) for r in rows])
    # decimal_year is the middle of the ISO date's day.
    for r in rows[:: len(rows) // 20]:
        day = np.datetime64(r[0])
        year = int(r[0][:4])
        start = np.datetime64(f"{year}-01-01")
        days_in_year = int((np.datetime64(f"{year + 1}-01-01") - start).astype(int))
        day_of_year = int((day - start).astype(int)) + 1
        assert abs(float(r[1]) - (year + (day_of_year - 0.5) / days_in_year)) < 1e-6


def test_weekly_steps_increasing_and_consistent_with_monthly_means():
    X, y = load_co2_weekly()
    steps = np.diff(X) * 365.25
    assert np.all(steps > 0)
    assert np.median(steps) == np.float64(np.median(steps)) and abs(np.median(steps) - 7) < 0.1
    assert np.all(np.isfinite(y)) and 310 < y.min() and y.max() < 380
    # The monthly file is the mean of these weeks per calendar month: check a year's mean.
    Xm, ym = load_co2()
    year = (X >= 1990) & (X < 1991)
    month_year = (Xm >= 1990) & (Xm < 1991)
    assert abs(y[year].mean() - ym[month_year].mean()) < 0.2
