"""Small real data sets bundled with ``gpjax_lite``.

* :func:`load_co2` — regression (below), and :func:`load_co2_weekly`, the
  weekly series behind it (2225 points, for the ``O(n)`` state-space solver);
* :func:`load_coal_mining_disasters` — yearly counts of British coal-mining
  disasters, 1851–1962 (a Poisson example);
* :func:`load_iris_binary` — Fisher's iris measurements, versicolor against
  virginica (a binary classification example).

See ``gpjax_lite/data/README.md`` for the provenance of every file.

The first data set is monthly mean atmospheric CO2 at Mauna Loa Observatory,
Hawaii, March 1958 – December 2001 (``gpjax_lite/data/co2_monthly.csv``). It
is derived from the weekly series distributed with statsmodels as
``statsmodels.datasets.co2`` -- measurements of the Scripps Institution of
Oceanography CO2 programme (C. D. Keeling), as published by the Carbon Dioxide
Information Analysis Center (citation: Keeling, C.D. and T.P. Whorf, 2004,
*Trends: A Compendium of Data on Global Change*, CDIAC, Oak Ridge National
Laboratory) -- which statsmodels documents as public domain. Weeks with
missing values were dropped and the remaining weekly values averaged per
calendar month; see ``gpjax_lite/data/README.md`` for the full provenance and
the steps to regenerate the file. statsmodels is *not* a dependency of this
package: the CSV is shipped as package data and read with the standard library
and NumPy only.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np

__all__ = ["load_co2", "load_co2_weekly", "load_coal_mining_disasters", "load_iris_binary"]


def load_co2() -> tuple[np.ndarray, np.ndarray]:
    """Monthly mean atmospheric CO2 at Mauna Loa, March 1958 – December 2001.

    The classic Gaussian-process regression example (a smooth rising trend plus
    a yearly cycle). Each point is the mean, over one calendar month, of the
    weekly averages of continuous in-situ measurements at Mauna Loa
    Observatory, Hawaii (Scripps Institution of Oceanography CO2 programme,
    via the weekly series bundled with ``statsmodels.datasets.co2``).

    * **Units**: ``X`` is time in decimal years; ``y`` is the CO2 mole
      fraction in dry air in parts per million (ppm), rounded to 3 decimals.
    * **Sampling**: one point per calendar month, placed at mid-month,
      ``X = year + (month - 0.5) / 12`` (so March 1958 is ``1958.2083...``).
    * **Gaps**: 521 points. Weeks with missing values were dropped before
      averaging; five months have no data at all and are simply absent
      (1958-06, 1958-10, 1964-02, 1964-03, 1964-04), so ``X`` is strictly
      increasing but not perfectly evenly spaced. There are no NaNs.
    * **Source / licence**: Keeling, C.D. and T.P. Whorf (2004), CDIAC, Oak
      Ridge National Laboratory; documented by statsmodels as public domain.
      See ``gpjax_lite/data/README.md``.

    The arrays are plain NumPy ``float64``; no JAX array is created here, so
    you choose the precision when converting. GP work usually wants double
    precision::

        jax.config.update("jax_enable_x64", True)
        X, y = load_co2()
        X, y = jnp.asarray(X)[:, None], jnp.asarray(y)

    Without ``jax_enable_x64``, ``jnp.asarray`` yields ``float32``. Centre or
    rescale ``X`` (e.g. ``X - 1958``) and ``y`` before fitting for better
    conditioning.

    Returns:
        ``(X, y)``: ``X`` is a ``float64`` array of shape ``(n,)`` of decimal
        years (mid-month); ``y`` is a ``float64`` array of shape ``(n,)`` of
        CO2 in ppm. Fresh arrays on every call, safe to modify.
    """
    resource = files("gpjax_lite") / "data" / "co2_monthly.csv"
    with resource.open("r", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    X = np.ascontiguousarray(data[:, 0])
    y = np.ascontiguousarray(data[:, 1])
    return X, y


def _read_csv(name: str, **kwargs) -> np.ndarray:
    resource = files("gpjax_lite") / "data" / name
    with resource.open("r", encoding="utf-8") as f:
        return np.loadtxt(f, delimiter=",", skiprows=1, ndmin=1, **kwargs)


def load_coal_mining_disasters() -> tuple[np.ndarray, np.ndarray]:
    """Yearly counts of British coal-mining disasters (explosions with ≥ 10 deaths), 1851–1962.

    Built from the 191 disaster dates of Jarrett (1979), *A note on the
    intervals between coal-mining disasters*, Biometrika 66, 191–193 (which
    corrects Maguire, Pearson & Wynn 1952), as distributed with the R package
    ``boot`` (data set ``coal``; Davison & Hinkley 1997). The dates are in
    ``gpjax_lite/data/coal_disasters.csv``; this function counts them per
    calendar year (the integer part of each decimal date).

    * **Units**: ``years`` are calendar years (``1851.0`` … ``1962.0``); ``counts``
      are disasters per year (non-negative integers stored as floats).
    * **Size**: 112 years, 191 disasters in all; the first date is
      15 March 1851, the last 22 March 1962 (so 1962 covers under 3 months).

    Returns:
        ``(years, counts)``, two ``float64`` arrays of shape ``(112,)``; fresh
        on every call.
    """
    dates = _read_csv("coal_disasters.csv", dtype=np.float64)
    years = np.arange(1851, 1963, dtype=np.float64)
    counts = np.array(
        [np.count_nonzero(np.floor(dates) == year) for year in years], dtype=np.float64
    )
    return years, counts


def load_iris_binary() -> tuple[np.ndarray, np.ndarray]:
    """Fisher's iris data, *Iris versicolor* (``y = 0``) against *Iris virginica* (``y = 1``).

    Four measurements in centimetres per flower (sepal length, sepal width,
    petal length, petal width), 50 flowers of each species (Anderson 1935;
    Fisher 1936, *The use of multiple measurements in taxonomic problems*,
    Annals of Eugenics 7, 179–188). The two species overlap, so no classifier
    is perfect: a good test of calibrated probabilities. The bundled file
    ``gpjax_lite/data/iris.csv`` holds all three species (as in R's ``iris``
    and scikit-learn's copy); setosa, which is linearly separable from the
    others, is left out here.

    Returns:
        ``(X, y)``: ``X`` ``float64`` of shape ``(100, 4)`` in cm; ``y``
        ``float64`` of shape ``(100,)`` in ``{0, 1}``.
    """
    resource = files("gpjax_lite") / "data" / "iris.csv"
    with resource.open("r", encoding="utf-8") as f:
        rows = [line.strip().split(",") for line in f.readlines()[1:] if line.strip()]
    keep = [row for row in rows if row[4] in ("versicolor", "virginica")]
    X = np.array([[float(v) for v in row[:4]] for row in keep], dtype=np.float64)
    y = np.array([row[4] == "virginica" for row in keep], dtype=np.float64)
    return X, y


def load_co2_weekly() -> tuple[np.ndarray, np.ndarray]:
    """Weekly atmospheric CO2 at Mauna Loa, 29 March 1958 – 29 December 2001.

    The weekly series behind :func:`load_co2`, without the monthly averaging:
    each point is one week's average of continuous in-situ measurements at
    Mauna Loa Observatory, Hawaii (Scripps Institution of Oceanography CO2
    programme; Keeling & Whorf 2004, CDIAC), as bundled with
    ``statsmodels.datasets.co2`` (public domain). Long enough (2225 points)
    that the dense solver's ``O(n³)`` starts to cost, and one input column:
    the use case of :class:`gpjax_lite.solvers.StateSpace`.

    * **Units**: ``X`` is time in decimal years (the middle of the sample day,
      ``year + (day_of_year - 0.5) / days_in_year``); ``y`` is the CO2 mole
      fraction in dry air, ppm, with one decimal.
    * **Gaps**: the 59 weeks that statsmodels marks missing are dropped (no
      NaNs), so ``X`` is strictly increasing with steps of one week except at
      the gaps (the longest, mid-1958 and early 1964, last a few months).
    * **Source / licence**: see ``gpjax_lite/data/README.md``
      (``co2_weekly.csv``), with the SHA-256 and the script that regenerates it.

    Returns:
        ``(X, y)``: ``float64`` arrays of shape ``(2225,)``, decimal years and
        ppm. Fresh arrays on every call.
    """
    resource = files("gpjax_lite") / "data" / "co2_weekly.csv"
    with resource.open("r", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.float64, ndmin=2)
    return np.ascontiguousarray(data[:, 0]), np.ascontiguousarray(data[:, 1])
