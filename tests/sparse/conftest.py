"""Session fixtures: results of compiled programs that several sparse tests check."""

import numpy as np
import pytest

from . import problems


@pytest.fixture(scope="session")
def z_is_x():
    X, y = problems.regression_1d()
    Xt = np.linspace(-5.0, 5.0, 23)
    return problems.z_is_x(X, y, Xt)


@pytest.fixture(scope="session")
def shared_fit():
    return problems.shared_svgp_fit()
