"""Small real data sets bundled with ``gpjax_lite``.

Two views of one public-domain record: :func:`load_co2_weekly`, the weekly
series (2225 points, for the ``O(n)`` state-space solver), and
:func:`load_co2`, its monthly means. The monthly data set is monthly mean atmospheric CO2 at Mauna Loa Observatory,
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

__all__ = ["load_co2", "load_co2_weekly"]


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
