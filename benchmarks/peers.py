"""The peers: tinygp, GPJax, scikit-learn and GPyTorch (CPU), each optional.

Each peer is a small class with one builder per case it can run; a builder
does the setup and returns a zero-argument callable that the harness times.
A peer that is not installed (or fails to import) is reported as such and
skipped; a case a peer cannot do is simply absent from its class.

Conventions (RBF + noise model, see :mod:`benchmarks.data`) are mapped onto
each library's own parameterisation. The Periodic kernels differ slightly
between libraries (sum over columns of sin² vs sin² of a distance; the
lengthscale's factor): same cost class, so the timings are comparable.
GPyTorch runs with ``max_cholesky_size`` raised so that it uses exact
Cholesky algebra like everyone else (its default switches to CG/Lanczos above
n = 800).
"""

from __future__ import annotations

import contextlib
import importlib
import math

import numpy as np


def _jax_backend() -> str:
    """JAX's default backend (``cpu``, ``gpu``, ``tpu``): where the JAX rows run."""
    import jax

    return jax.default_backend()


def _import(name):
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip this peer"
        return None, f"{type(exc).__name__}: {exc}"


class Peer:
    """A peer library: ``module`` (``None`` when it cannot be imported, with ``error``
    saying why) and its ``version``. Subclasses add one small method per case."""

    name = ""

    def __init__(self):
        self.module, self.error = _import(self.name)
        self.version = getattr(self.module, "__version__", None)


# ============================================================================ tinygp
class TinyGP(Peer):
    name = "tinygp"

    @staticmethod
    def _kernel(name, h):
        from tinygp import kernels

        v, ls = h["variance"], h["lengthscale"]
        rbf = v * kernels.ExpSquared(scale=ls)
        # L2 distance: tinygp's Matérn default is the L1 distance, another kernel at d > 1.
        m52 = v * kernels.Matern52(scale=ls, distance=kernels.distance.L2Distance())
        per = v * kernels.ExpSineSquared(scale=h.get("period", 2.0), gamma=2.0 / ls**2)
        return {"rbf": rbf, "matern52": m52, "periodic": per, "sum3": rbf + m52 + per}[name]

    def gram(self, name, X, hypers):
        import jax
        import jax.numpy as jnp

        Xj = jnp.asarray(X)
        k = self._kernel(name, {key: jnp.asarray(v, Xj.dtype) for key, v in hypers.items()})
        f = jax.jit(lambda k, X: k(X, X))
        return lambda: f(k, Xj)

    @staticmethod
    def _loss(p, X, y):
        import jax.numpy as jnp
        from tinygp import GaussianProcess, kernels

        k = jnp.exp(p["log_variance"]) * kernels.ExpSquared(scale=jnp.exp(p["log_lengthscale"]))
        return -GaussianProcess(k, X, diag=jnp.exp(p["log_noise"])).log_probability(y)

    @staticmethod
    def _params(h, dtype):
        import jax.numpy as jnp

        return {
            f"log_{k}": jnp.log(jnp.asarray(h[k], dtype))
            for k in ("variance", "lengthscale", "noise")
        }

    @staticmethod
    def _hypers(p):
        return {
            k: float(math.exp(float(p[f"log_{k}"]))) for k in ("variance", "lengthscale", "noise")
        }

    def mll_grad(self, X, y, hypers):
        import jax
        import jax.numpy as jnp

        Xj, yj = jnp.asarray(X), jnp.asarray(y)
        p = self._params(hypers, Xj.dtype)
        f = jax.jit(jax.value_and_grad(self._loss))
        return lambda: f(p, Xj, yj)

    def mll_grad_lowered(self, X, y, hypers, terms=1):
        import jax
        import jax.numpy as jnp
        from tinygp import GaussianProcess, kernels

        Xj, yj = jnp.asarray(X), jnp.asarray(y)
        p = self._params(hypers, Xj.dtype)

        def loss(p, X, y):
            v, ls = jnp.exp(p["log_variance"]), jnp.exp(p["log_lengthscale"])
            parts = [
                v * kernels.ExpSquared(scale=ls),
                v * kernels.Matern52(scale=ls),
                v * kernels.ExpSineSquared(scale=2.0, gamma=2.0 / ls**2),
                v * kernels.Matern32(scale=ls),
                v * kernels.RationalQuadratic(scale=ls, alpha=1.0),
            ][:terms]
            k = parts[0]
            for part in parts[1:]:
                k = k + part
            return -GaussianProcess(k, X, diag=jnp.exp(p["log_noise"])).log_probability(y)

        f = jax.jit(jax.value_and_grad(loss))
        return lambda: f.lower(p, Xj, yj), (p, Xj, yj)

    def fit_adam(self, X, y, init, steps, lr):
        import jax
        import jax.numpy as jnp
        import optax

        Xj, yj = jnp.asarray(X), jnp.asarray(y)
        p0 = self._params(init, Xj.dtype)
        opt = optax.adam(lr)
        vg = jax.value_and_grad(self._loss)

        @jax.jit
        def run_fit(p, X, y):
            def step(carry, _):
                p, state = carry
                _, g = vg(p, X, y)
                updates, state = opt.update(g, state, p)
                return (optax.apply_updates(p, updates), state), None

            (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), None, length=steps)
            return p

        return lambda: self._hypers(run_fit(p0, Xj, yj))

    def predict(self, X, y, hypers, Xt):
        """tinygp has no cached posterior: every call refactorises K and builds the m × m
        conditioned covariance (its ``condition`` is O(m²) memory)."""
        import jax
        import jax.numpy as jnp
        from tinygp import GaussianProcess, kernels

        Xj, yj, Xtj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(Xt)
        h = {k: jnp.asarray(v, Xj.dtype) for k, v in hypers.items()}

        @jax.jit
        def pred(h, X, y, Xt):
            k = h["variance"] * kernels.ExpSquared(scale=h["lengthscale"])
            return GaussianProcess(k, X, diag=h["noise"]).predict(y, Xt, return_var=True)

        return lambda: pred(h, Xj, yj, Xtj)

    predict_memory = "m2"  # needs an m × m matrix

    def batched_mll_grad(self, Xb, yb, hypers):
        import jax
        import jax.numpy as jnp

        Xj, yj = jnp.asarray(Xb), jnp.asarray(yb)
        p = self._params(hypers, Xj.dtype)
        f = jax.jit(jax.vmap(jax.value_and_grad(self._loss), in_axes=(None, 0, 0)))
        return lambda: f(p, Xj, yj)


# ============================================================================= GPJax
class GPJax(Peer):
    name = "gpjax"

    @staticmethod
    def _kernel(name, h):
        import gpjax as gpx

        v, ls = h["variance"], h["lengthscale"]
        rbf = gpx.kernels.RBF(lengthscale=ls, variance=v)
        m52 = gpx.kernels.Matern52(lengthscale=ls, variance=v)
        per = gpx.kernels.Periodic(lengthscale=ls, variance=v, period=h.get("period", 2.0))
        return {"rbf": rbf, "matern52": m52, "periodic": per, "sum3": rbf + m52 + per}[name]

    def gram(self, name, X, hypers):
        import equinox as eqx
        import jax.numpy as jnp

        Xj = jnp.asarray(X)
        k = self._kernel(name, {key: jnp.asarray(v, Xj.dtype) for key, v in hypers.items()})
        f = eqx.filter_jit(lambda k, X: k.gram(X).as_matrix())
        return lambda: f(k, Xj)

    @staticmethod
    def _model(h, dtype, kernel=None):
        import gpjax as gpx
        import jax.numpy as jnp

        if kernel is None:
            kernel = gpx.kernels.RBF(
                lengthscale=jnp.asarray(h["lengthscale"], dtype),
                variance=jnp.asarray(h["variance"], dtype),
            )
        prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Zero(), kernel=kernel)
        lik = gpx.likelihoods.Gaussian(obs_stddev=jnp.sqrt(jnp.asarray(h["noise"], dtype)))
        return prior * lik

    @staticmethod
    def _nmll(model, data):
        import gpjax as gpx

        return -gpx.objectives.conjugate_mll(model, data)

    @staticmethod
    def _data(X, y):
        import gpjax as gpx
        import jax.numpy as jnp

        return gpx.Dataset(X=jnp.asarray(X), y=jnp.asarray(y).reshape(-1, 1))

    def mll_grad(self, X, y, hypers):
        import equinox as eqx

        data = self._data(X, y)
        model = self._model(hypers, data.X.dtype)
        f = eqx.filter_jit(eqx.filter_value_and_grad(self._nmll))
        return lambda: f(model, data)

    def mll_grad_lowered(self, X, y, hypers, terms=1):
        import equinox as eqx
        import gpjax as gpx
        import jax

        data = self._data(X, y)
        dt = data.X.dtype
        parts = [
            gpx.kernels.RBF(),
            gpx.kernels.Matern52(),
            gpx.kernels.Periodic(period=2.0),
            gpx.kernels.Matern32(),
            gpx.kernels.RationalQuadratic(),
        ][:terms]
        kernel = parts[0]
        for part in parts[1:]:
            kernel = kernel + part
        model = self._model(hypers, dt, kernel)
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def loss(params, X, y):
            return self._nmll(eqx.combine(params, static), gpx.Dataset(X=X, y=y))

        f = jax.jit(jax.value_and_grad(loss))
        return lambda: f.lower(params, data.X, data.y), (params, data.X, data.y)

    def fit_adam(self, X, y, init, steps, lr):
        import gpjax as gpx
        import optax

        data = self._data(X, y)
        model = self._model(init, data.X.dtype)

        def run():
            fitted, _ = gpx.fit(
                model=model,
                objective=self._nmll,
                train_data=data,
                optim=optax.adam(lr),
                num_iters=steps,
                verbose=False,
            )
            return self._hypers(fitted)

        return run

    @staticmethod
    def _hypers(model):
        import paramax

        m = paramax.unwrap(model)
        return {
            "variance": float(m.prior.kernel.variance),
            "lengthscale": float(m.prior.kernel.lengthscale),
            "noise": float(m.likelihood.obs_stddev) ** 2,
        }

    def predict(self, X, y, hypers, Xt):
        """Conditioned once (GPJax caches the factor in its ``ExactPosterior``), diagonal covariance."""
        import jax
        import jax.numpy as jnp

        data = self._data(X, y)
        model = self._model(hypers, data.X.dtype)
        posterior = model.condition(data)  # its Dataset field does not survive eqx partitioning,
        Xtj = jnp.asarray(Xt)  # so the jitted function closes over it instead

        @jax.jit
        def pred(Xt):
            dist = posterior(Xt, covariance="diagonal")
            return dist.mean, dist.variance

        return lambda: pred(Xtj)

    predict_memory = "nm"

    def batched_mll_grad(self, Xb, yb, hypers):
        import equinox as eqx
        import gpjax as gpx
        import jax
        import jax.numpy as jnp

        Xj, yj = jnp.asarray(Xb), jnp.asarray(yb)[..., None]
        model = self._model(hypers, Xj.dtype)
        vg = eqx.filter_value_and_grad(lambda m, X, y: self._nmll(m, gpx.Dataset(X=X, y=y)))
        f = eqx.filter_jit(lambda m, X, y: jax.vmap(vg, in_axes=(None, 0, 0))(m, X, y))
        return lambda: f(model, Xj, yj)

    def svgp_step(self, X, y, Z, batch_size, steps, seed):
        """``steps`` Adam steps (learning rate 0.02) of GPJax's whitened SVGP with inducing
        inputs ``Z``, through its own compiled ``gpx.fit`` loop (``lax.scan``)."""
        import equinox as eqx
        import gpjax as gpx
        import jax
        import jax.numpy as jnp
        import optax

        dtype = jnp.asarray(X).dtype
        data = gpx.Dataset(X=jnp.asarray(X), y=jnp.asarray(y)[:, None])
        kernel = gpx.kernels.RBF(
            lengthscale=jnp.ones(X.shape[1], dtype), variance=jnp.asarray(1.0, dtype)
        )
        prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Zero(), kernel=kernel)
        posterior = prior * gpx.likelihoods.Gaussian(obs_stddev=jnp.sqrt(jnp.asarray(0.1, dtype)))
        q = gpx.variational_families.WhitenedVariationalGaussian(
            model=posterior, inducing_inputs=jnp.asarray(Z)
        )
        optimiser = optax.adam(0.02)

        def loss(model, batch):
            return -gpx.objectives.elbo(model, batch)

        # gpx.fit is not jitted as a whole (it traces a fresh scan on every call), so it is
        # wrapped once: calls after the first then time GPJax's steps without compiling.
        compiled = eqx.filter_jit(
            lambda q, data, key: gpx.fit(
                model=q,
                objective=loss,
                train_data=data,
                optim=optimiser,
                num_iters=steps,
                batch_size=batch_size,
                key=key,
                verbose=False,
                safe=False,
            )
        )
        return lambda: compiled(q, data, jax.random.key(seed))


# ====================================================================== scikit-learn
class SKLearn(Peer):
    name = "sklearn"

    def __init__(self):
        self.module, self.error = _import("sklearn.gaussian_process")
        sk, _ = _import("sklearn")
        self.version = getattr(sk, "__version__", None)

    @staticmethod
    def _kernel(name, h):
        from sklearn.gaussian_process import kernels as K

        v, ls = h["variance"], h["lengthscale"]
        rbf = K.ConstantKernel(v) * K.RBF(ls)
        m52 = K.ConstantKernel(v) * K.Matern(ls, nu=2.5)
        per = K.ConstantKernel(v) * K.ExpSineSquared(ls, h.get("period", 2.0))
        return {"rbf": rbf, "matern52": m52, "periodic": per, "sum3": rbf + m52 + per}[name]

    def gram(self, name, X, hypers):
        if X.dtype != np.float64:
            raise NotImplementedError("scikit-learn kernels compute in float64 only")
        k = self._kernel(name, hypers)
        return lambda: k(X)

    @staticmethod
    def _gp_kernel(h, fixed=False):
        from sklearn.gaussian_process import kernels as K

        bounds = "fixed" if fixed else (1e-5, 1e5)
        return K.ConstantKernel(h["variance"], bounds) * K.RBF(
            h["lengthscale"], bounds
        ) + K.WhiteKernel(h["noise"], bounds)

    def _regressor(self, h, **kw):
        from sklearn.gaussian_process import GaussianProcessRegressor

        return GaussianProcessRegressor(kernel=self._gp_kernel(h), alpha=1e-10, **kw)

    def mll_grad(self, X, y, hypers):
        if X.dtype != np.float64:
            raise NotImplementedError("scikit-learn runs in float64 only")
        gpr = self._regressor(hypers, optimizer=None).fit(X, y)
        theta = gpr.kernel_.theta
        return lambda: gpr.log_marginal_likelihood(theta, eval_gradient=True, clone_kernel=False)

    def fit_lbfgs(self, X, y, init, restarts=0):
        def run():
            gpr = self._regressor(init, n_restarts_optimizer=restarts, random_state=0).fit(X, y)
            return self._hypers(gpr.kernel_)

        return run

    @staticmethod
    def _hypers(k):
        return {
            "variance": float(k.k1.k1.constant_value),
            "lengthscale": float(k.k1.k2.length_scale),
            "noise": float(k.k2.noise_level),
        }

    def predict(self, X, y, hypers, Xt):
        """Fitted once with ``optimizer=None`` (factor cached in ``L_``); predict mean and std.

        (Its variance includes the WhiteKernel noise: the same cost as the latent one.)
        """
        from sklearn.gaussian_process import GaussianProcessRegressor

        gpr = GaussianProcessRegressor(
            kernel=self._gp_kernel(hypers, fixed=True), optimizer=None, alpha=1e-10
        )
        gpr.fit(X, y)
        return lambda: gpr.predict(Xt, return_std=True)

    predict_memory = "nm"

    def batched_mll_grad(self, Xb, yb, hypers):
        gprs = [self._regressor(hypers, optimizer=None).fit(X, y) for X, y in zip(Xb, yb)]
        theta = gprs[0].kernel_.theta

        def run():
            return [
                g.log_marginal_likelihood(theta, eval_gradient=True, clone_kernel=False)
                for g in gprs
            ]

        return run

    def batched_fit(self, Xb, yb, init):
        def run():
            hs = [
                self._hypers(self._regressor(init, random_state=0).fit(X, y).kernel_)
                for X, y in zip(Xb, yb)
            ]
            return {k: np.array([h[k] for h in hs]) for k in ("variance", "lengthscale", "noise")}

        return run

    # The laplace case (benchmarks/laplace.py): GaussianProcessClassifier, the same Laplace approximation.
    @staticmethod
    def _classifier(start, optimizer):
        from sklearn.gaussian_process import GaussianProcessClassifier
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel

        kernel = ConstantKernel(start[0], (1e-5, 1e5)) * RBF(start[1], (1e-5, 1e5))
        return GaussianProcessClassifier(kernel, optimizer=optimizer)

    def laplace_lml_grad(self, X, y, start):
        """Its log marginal likelihood and gradient at ``θ = log(start)`` (variance, lengthscale)."""
        gpc = self._classifier(start, None).fit(X, y)
        theta = np.log(start)
        return lambda: gpc.log_marginal_likelihood(theta, eval_gradient=True)

    def laplace_fit(self, X, y, start):
        """Its default fit (L-BFGS-B, no restarts) from ``start``; returns the fitted classifier."""
        return lambda: self._classifier(start, "fmin_l_bfgs_b").fit(X, y)


# ========================================================================== GPyTorch
class GPyTorch(Peer):
    name = "gpytorch"

    def __init__(self):
        self.module, self.error = _import("gpytorch")
        self.torch, torch_error = _import("torch")
        self.error = self.error or torch_error
        self.version = getattr(self.module, "__version__", None)
        self.device = None
        if self.module is not None:
            import os

            if os.environ.get("OMP_NUM_THREADS") == "1":
                self.torch.set_num_threads(1)
            # On a GPU machine GPyTorch runs on the GPU too: the GPU table compares
            # accelerator against accelerator (scikit-learn has no GPU path).
            cuda = self.torch.cuda.is_available() and _jax_backend() == "gpu"
            self.device = self.torch.device("cuda" if cuda else "cpu")

    def _sync(self, value=None):
        """Wait for queued CUDA work (torch dispatches it asynchronously, like JAX)."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
        return value

    def _tensor(self, array, dt):
        return self.torch.as_tensor(array, dtype=dt, device=self.device)

    @staticmethod
    def _numpy(tensor):
        return tensor.detach().cpu().numpy()

    def _dtype(self, dtype):
        return self.torch.float64 if np.dtype(dtype) == np.float64 else self.torch.float32

    def _exact(self):
        gpytorch = self.module
        stack = contextlib.ExitStack()
        stack.enter_context(gpytorch.settings.max_cholesky_size(10**9))
        return stack

    def _base_kernel(self, name, h, dt, batch_shape=None):
        gpytorch, torch = self.module, self.torch
        kw = {"batch_shape": batch_shape} if batch_shape is not None else {}

        def scaled(base):
            k = gpytorch.kernels.ScaleKernel(base, **kw).to(dt)
            k.outputscale = torch.tensor(h["variance"], dtype=dt)
            return k

        rbf = gpytorch.kernels.RBFKernel(**kw).to(dt)
        rbf.lengthscale = torch.tensor(h["lengthscale"], dtype=dt)
        if name == "rbf":
            return scaled(rbf)
        m52 = gpytorch.kernels.MaternKernel(nu=2.5, **kw).to(dt)
        m52.lengthscale = torch.tensor(h["lengthscale"], dtype=dt)
        per = gpytorch.kernels.PeriodicKernel(**kw).to(dt)
        per.lengthscale = torch.tensor(h["lengthscale"], dtype=dt)
        per.period_length = torch.tensor(h.get("period", 2.0), dtype=dt)
        return {
            "matern52": scaled(m52),
            "periodic": scaled(per),
            "sum3": scaled(rbf) + scaled(m52) + scaled(per),
        }[name]

    def gram(self, name, X, hypers):
        torch = self.torch
        dt = self._dtype(X.dtype)
        k = self._base_kernel(name, hypers, dt).to(self.device)
        Xt = self._tensor(X, dt)

        def run():
            with torch.no_grad():
                return self._sync(k(Xt).to_dense())

        return run

    def _model(self, X, y, h, batch_shape=None):
        gpytorch, torch = self.module, self.torch
        dt = self._dtype(X.dtype)
        Xt, yt = self._tensor(X, dt), self._tensor(y, dt)
        kw = {"batch_shape": batch_shape} if batch_shape is not None else {}
        likelihood = gpytorch.likelihoods.GaussianLikelihood(**kw).to(dt)
        likelihood.noise = torch.tensor(h["noise"], dtype=dt)
        likelihood = likelihood.to(self.device)
        kernel = self._base_kernel("rbf", h, dt, batch_shape).to(self.device)

        class ExactGP(gpytorch.models.ExactGP):
            def __init__(self):
                super().__init__(Xt, yt, likelihood)
                self.mean_module = gpytorch.means.ZeroMean(**kw)
                self.covar_module = kernel

            def forward(self, x):
                return gpytorch.distributions.MultivariateNormal(
                    self.mean_module(x), self.covar_module(x)
                )

        model = ExactGP().to(device=self.device, dtype=dt)
        return model, likelihood, Xt, yt

    def _loss_fn(self, model, likelihood, Xt, yt):
        gpytorch = self.module
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        n = yt.shape[-1]

        def loss():
            out = model(Xt)
            return -(mll(out, yt) * n).sum()  # GPyTorch divides by n; undo it

        return loss

    def mll_grad(self, X, y, hypers, **model_kw):
        model, likelihood, Xt, yt = self._model(X, y, hypers, **model_kw)
        model.train()
        likelihood.train()
        loss_fn = self._loss_fn(model, likelihood, Xt, yt)

        def run():
            with self._exact():
                model.zero_grad()
                loss = loss_fn()
                loss.backward()
                return self._sync(float(loss.detach()))

        return run

    def _adam(self, X, y, init, steps, lr, **model_kw):
        """A fresh model trained by ``steps`` Adam steps; its hyperparameters as flat arrays."""
        torch = self.torch
        model, likelihood, Xt, yt = self._model(X, y, init, **model_kw)
        model.train()
        likelihood.train()
        loss_fn = self._loss_fn(model, likelihood, Xt, yt)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        with self._exact():
            for _ in range(steps):
                opt.zero_grad()
                loss_fn().backward()
                opt.step()
        return {
            "variance": self._numpy(model.covar_module.outputscale).reshape(-1).copy(),
            "lengthscale": self._numpy(model.covar_module.base_kernel.lengthscale)
            .reshape(-1)
            .copy(),
            "noise": self._numpy(likelihood.noise).reshape(-1).copy(),
        }

    def fit_adam(self, X, y, init, steps, lr):
        def run():
            return {k: float(v[0]) for k, v in self._adam(X, y, init, steps, lr).items()}

        return run

    def predict(self, X, y, hypers, Xt_np):
        """Exact predictive mean and variance (no LOVE); training caches warmed up before timing."""
        torch = self.torch
        model, likelihood, Xt, yt = self._model(X, y, hypers)
        model.eval()
        likelihood.eval()
        Xs = self._tensor(Xt_np, Xt.dtype)

        def run():
            with torch.no_grad(), self._exact():
                pred = model(Xs)
                return self._sync((pred.mean, pred.variance))

        return run

    predict_memory = "nm"

    def batched_mll_grad(self, Xb, yb, hypers):
        """GPyTorch's batch mode: one model with ``batch_shape`` = the number of datasets."""
        return self.mll_grad(Xb, yb, hypers, batch_shape=self.torch.Size([Xb.shape[0]]))

    def batched_fit(self, Xb, yb, init, steps=100, lr=0.1):
        batch_shape = self.torch.Size([Xb.shape[0]])
        return lambda: self._adam(Xb, yb, init, steps, lr, batch_shape=batch_shape)

    def svgp_step(self, X, y, Z, batch_size, steps, seed):
        """``steps`` Adam steps (learning rate 0.02) of GPyTorch's whitened SVGP
        (``VariationalStrategy``, Cholesky ``q(u)``) with inducing inputs ``Z``: minibatches
        drawn with ``torch.randint`` from tensors held in memory, a Python loop."""
        gpytorch, torch = self.module, self.torch
        dt = self._dtype(X.dtype)
        torch.manual_seed(seed)
        Xt, yt = self._tensor(X, dt), self._tensor(y, dt)

        class Model(gpytorch.models.ApproximateGP):
            def __init__(self, Z):
                dist = gpytorch.variational.CholeskyVariationalDistribution(Z.shape[0])
                strategy = gpytorch.variational.VariationalStrategy(
                    self, Z, dist, learn_inducing_locations=True
                )
                super().__init__(strategy)
                self.mean_module = gpytorch.means.ZeroMean()
                self.covar_module = gpytorch.kernels.ScaleKernel(
                    gpytorch.kernels.RBFKernel(ard_num_dims=Z.shape[1])
                )

            def forward(self, x):
                return gpytorch.distributions.MultivariateNormal(
                    self.mean_module(x), self.covar_module(x)
                )

        model = Model(self._tensor(Z, dt)).to(device=self.device, dtype=dt)
        likelihood = gpytorch.likelihoods.GaussianLikelihood().to(device=self.device, dtype=dt)
        objective = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=len(yt))
        optimizer = torch.optim.Adam(
            list(model.parameters()) + list(likelihood.parameters()), lr=0.02
        )
        model.train()
        likelihood.train()

        def run():
            for _ in range(steps):
                idx = torch.randint(len(yt), (batch_size,), device=self.device)
                optimizer.zero_grad()
                loss = -objective(model(Xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
            self._sync()

        return run


ALL_PEERS = (TinyGP, GPJax, SKLearn, GPyTorch)


def load_peers(names=None):
    """Instantiate the requested peers (all by default); unavailable ones keep their error."""
    peers = [cls() for cls in ALL_PEERS if names is None or cls.name in names]
    return peers
