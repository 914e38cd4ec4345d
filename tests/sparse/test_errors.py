"""Bad input raises ValueError/TypeError naming the argument, before any compiled work."""

import jax
import numpy as np
import pytest
from conftest import naming

from gpjax_lite import sparse
from gpjax_lite.kernels import RBF

from . import problems

X, Y = problems.regression_2d(n=20)
Z = X[:4]


def svgp(**kwargs):
    return sparse.SVGP(RBF(), Z, noise=0.1, **kwargs)


def fit(**kwargs):
    args = dict(batch_size=4, num_steps=3, key=jax.random.key(0))
    args.update(kwargs)
    return sparse.fit_svgp(svgp(), X, Y, **args)


@pytest.mark.parametrize("cls", [sparse.SGPR, sparse.SVGP])
def test_inducing_inputs_with_the_wrong_number_of_columns(cls):
    model = cls(RBF(), np.ones((4, 3)), noise=0.1)
    with pytest.raises(ValueError, match="inducing_inputs"):
        model.elbo(X, Y)
    post = model.condition(X[:, :1].repeat(3, 1), Y) if cls is sparse.SGPR else model
    with pytest.raises(ValueError, match="`Xt`.*inducing_inputs"):
        post.predict(X)


@pytest.mark.parametrize("cls", [sparse.SGPR, sparse.SVGP])
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(inducing_inputs=np.ones((2, 2, 2))), "inducing_inputs"),
        (dict(inducing_inputs=np.ones((0, 2))), "inducing_inputs"),
        (dict(inducing_inputs=np.array([[0.0, np.nan]])), "inducing_inputs"),
        (dict(noise=-1.0), "noise"),
        (dict(noise=np.ones(20)), "noise"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_bad_model_arguments(cls, kwargs, name):
    args = dict(kernel=RBF(), inducing_inputs=Z, noise=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        cls(**args)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(q_mu=np.ones(3)), "q_mu"),
        (dict(q_sqrt=np.ones((4, 4))), "q_sqrt"),
        (dict(q_sqrt=-np.eye(4)), "q_sqrt"),
        (dict(q_sqrt=np.eye(3)), "q_sqrt"),
    ],
)
def test_bad_variational_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        svgp(**kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="`y`"):
        svgp().elbo(X, Y[:-1])
    with pytest.raises(ValueError, match="`X`"):
        svgp().elbo(np.where(X > 1, np.nan, X), Y)
    with pytest.raises(ValueError, match="`num_data`"):
        svgp().elbo(X, Y, num_data=5)
    with pytest.raises(ValueError, match="`y`"):
        sparse.SGPR(RBF(), Z).elbo(X, Y[:, None])


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=21), ValueError, "batch_size"),
        (dict(batch_size=2.5), TypeError, "batch_size"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(key=None), TypeError, "key"),
    ],
)
def test_bad_fit_svgp_arguments(kwargs, error, name):
    with pytest.raises(error, match=naming(name)):
        fit(**kwargs)


def test_fit_svgp_wrong_model_type():
    with pytest.raises(TypeError, match=naming("model")):
        sparse.fit_svgp(problems.exact_gp(), X, Y, batch_size=4, num_steps=1, key=jax.random.key(0))


def test_inducing_initialisers():
    key = jax.random.key(0)
    Zs = sparse.inducing_subset(key, X, 5)
    assert Zs.shape == (5, 2) and len({tuple(r) for r in np.asarray(Zs)}) == 5
    Zk = sparse.inducing_kmeans(key, X, 5, num_iters=5)
    assert Zk.shape == (5, 2) and np.all(np.isfinite(Zk))
    with pytest.raises(ValueError, match="`num_inducing`"):
        sparse.inducing_subset(key, X, 21)
