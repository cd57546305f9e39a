"""nutpie on a PyTensor-compiled log-density (PyTensor's own linker, cached on disk).

``nutpie.compile_pymc_model`` turns the whole log-density into one numba ``cfunc``; numba
cannot cache it (it closes over dynamic globals), so every new Python process pays ~9 s of
LLVM work even for the small collapsed model. Here the same PyMC log-density and gradient
are compiled by PyTensor with its default linker (numba in PyTensor 3, whose compiled
kernels PyTensor caches on disk: ~0.5 s per process once warm) and handed to nutpie's
Python-callable model interface, the one nutpie itself uses for its JAX backend. BayesMRT's
collapsed likelihood Op has a registered numba kernel (GIL released); Ops with a Python
``perform`` (the additive mixed model's, which calls its own GIL-free numba kernel) are
compiled with ``Mode(linker="cvm")`` instead, since numba would wrap them in slow object mode.

Each chain gets its own copy of the compiled function (separate intermediate storage, shared
data), so chains running in nutpie's threads never share scratch buffers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class CFunctions:
    """PyTensor functions (logp + gradient, expand) and nutpie's variable layout for a model."""

    n_dim: int
    logp_fn: Any
    expand_fn: Any
    initial_point_fn: Any
    names: list[str]
    shapes: list[tuple[int, ...]]
    dims: dict
    coords: dict
    shared: dict[str, Any]

    def set_data(self, values: dict[str, np.ndarray]) -> None:
        """Refit to new data of the same structure: overwrite the shared variables by name."""
        unknown = set(values) - set(self.shared)
        if unknown:
            raise KeyError(f"unknown shared variables {sorted(unknown)}")
        for name, val in values.items():
            self.shared[name].set_value(np.asarray(val, dtype=float))

    def nutpie_model(self):
        """A nutpie model whose chains each call their own copy of the compiled function."""
        from nutpie.compiled_pyfunc import from_pyfunc

        names, shapes = self.names, self.shapes
        logp_fn, expand_fn = self.logp_fn, self.expand_fn

        def make_logp():
            f = logp_fn.copy()

            def logp(x):
                lp, grad = f(x)
                return float(lp), grad

            return logp

        def make_expand(seed1, seed2, chain):
            f = expand_fn.copy()

            def expand(x):
                vals = f(x)
                return {
                    n: np.asarray(v, dtype="float64", order="C").reshape(s)
                    for n, v, s in zip(names, vals, shapes, strict=True)
                }

            return expand

        return from_pyfunc(
            ndim=self.n_dim,
            make_logp_fn=make_logp,
            make_expand_fn=make_expand,
            make_initial_point_fn=self.initial_point_fn,
            expanded_dtypes=[np.dtype("float64")] * len(names),
            expanded_shapes=shapes,
            expanded_names=names,
            # nutpie consumes these while sampling: hand each run its own copy
            dims=copy.deepcopy(self.dims),
            coords=copy.deepcopy(self.coords),
        )


def compile_c(model, mode: Any = "FAST_RUN") -> CFunctions | None:
    """Compile ``model``'s log-density for nutpie with PyTensor (``mode``: PyTensor's default
    linker, or e.g. ``Mode(linker="cvm")`` for graphs whose Ops run in Python); None if nutpie's
    layout helpers are unavailable (then the caller uses ``nutpie.compile_pymc_model``)."""
    try:
        import pymc as pm
        from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords
    except ImportError:  # pragma: no cover - other nutpie versions
        return None

    # as nutpie.compile_pymc_model: support points jittered per chain (a zero gradient
    # component at an unjittered start makes nutpie reject the initial point)
    ipfn = pm.initial_point.make_initial_point_fn(
        model=model,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    try:
        from nutpie.compile_pymc import _wrap_with_lock

        ipfn = _wrap_with_lock(ipfn)
    except ImportError:  # pragma: no cover
        pass
    try:
        n_dim, _, logp_pt, expand_pt, init_fn, shape_info, reparam = _make_functions(
            model,
            mode=mode,
            compute_grad=True,
            join_expanded=False,
            pymc_initial_point_fn=ipfn,
            var_names=None,
        )
        dims, coords = _prepare_dims_and_coords(model, shape_info, reparam)
    except TypeError as exc:  # pragma: no cover - signature changed in another nutpie version
        import warnings

        warnings.warn(
            f"nutpie's model helpers did not accept the PyTensor-compiled call ({exc}); falling "
            "back to nutpie.compile_pymc_model (numba, slower to compile).",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    logp_pt.trust_input = True
    expand_pt.trust_input = True
    names, _, shapes = shape_info
    shared = {v.name: v for v in [*logp_pt.get_shared(), *expand_pt.get_shared()]}
    return CFunctions(
        n_dim=n_dim,
        logp_fn=logp_pt,
        expand_fn=expand_pt,
        initial_point_fn=init_fn,
        names=list(names),
        shapes=[tuple(s) for s in shapes],
        dims=dims,
        coords=coords,
        shared=shared,
    )


def sample_model(
    model,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    progress: bool = False,
    target_accept: float = 0.8,
    cores: int | None = 1,
    mode: Any = "FAST_RUN",
):
    """Sample a PyMC model with nutpie on a PyTensor-compiled log-density (PyMC's NUTS when nutpie
    is not installed). Returns the ArviZ DataTree. ``cores=1`` by default: Python-callable
    chains share the GIL, so threads only help when a GIL-free kernel dominates."""
    from importlib.util import find_spec

    if find_spec("nutpie") is not None:
        import nutpie

        compiled = compile_c(model, mode=mode)
        sampler_model = (
            compiled.nutpie_model()
            if compiled is not None
            else nutpie.compile_pymc_model(model, freeze_model=False)
        )
        return nutpie.sample(
            sampler_model, draws=draws, tune=tune, chains=chains, seed=seed,
            progress_bar=progress, save_warmup=False, target_accept=target_accept,
            cores=cores if compiled is not None else None,
        )  # fmt: skip
    import pymc as pm

    with model:
        return pm.sample(
            draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progress,
            target_accept=target_accept, cores=1,
        )  # fmt: skip
