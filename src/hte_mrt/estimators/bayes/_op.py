"""A pytensor Op wrapping the numba kernel (value and analytic gradient in one call).

Why an Op and not a plain pytensor graph: nutpie compiles the whole log-density into one numba
``cfunc`` per model and LLVM re-optimizes every inlined pytensor kernel on each run (~10-15 s
for the graph version of this model). The Op's kernel is one small loop that numba caches on
disk, and all data travel in ONE shared float vector (nutpie's per-shared-variable unpacking
code costs ~0.5 s of compile each), so compile time drops to nutpie's floor (~5 s). The graph
version (:func:`.collapsed.collapsed_logp`) stays as the readable reference used in the tests.

Outputs: (logp, dtheta, dsd, dsd_b, dsd_u, drho, dsd_c). The pullback of logp returns the
gradient outputs of the same Apply node, so one kernel call gives both. No second derivatives.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from hte_mrt.estimators.bayes import _kernel
from hte_mrt.estimators.bayes._kernel import value_and_grad_packed

N_PARAMS = 6  # theta, sd, sd_b, sd_u, rho, sd_c


def _source_version() -> int:
    """Hash of the kernel and Op sources: part of pytensor's numba cache key, so an edited
    kernel is never served from a stale on-disk cache entry (the key is otherwise only the
    Op's class and props)."""
    import hashlib
    import inspect
    import sys

    src = inspect.getsource(_kernel) + inspect.getsource(sys.modules[__name__])
    return int(hashlib.sha256(src.encode()).hexdigest()[:15], 16)


class CollapsedLogp(Op):
    """Inputs: theta (d,), sd, sd_b, sd_u, rho, sd_c (scalars), packed data (``_kernel.pack``)."""

    __props__ = ("correlated", "clusters")

    def __init__(self, correlated: bool, clusters: bool):
        self.correlated = bool(correlated)
        self.clusters = bool(clusters)

    def make_node(self, theta, sd, sd_b, sd_u, rho, sd_c, packed):
        ins = [
            pt.cast(pt.as_tensor_variable(x), "float64")
            for x in (theta, sd, sd_b, sd_u, rho, sd_c, packed)
        ]
        for x, nd in zip(ins, [1, 0, 0, 0, 0, 0, 1], strict=True):
            if x.type.ndim != nd:
                raise TypeError(f"input {x} has {x.type.ndim} dimensions, expected {nd}.")
        outs = [pt.dscalar(), pt.dvector(), *[pt.dscalar() for _ in range(5)]]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage):
        theta, sd, sd_b, sd_u, rho, sd_c, packed = inputs
        res = value_and_grad_packed(
            np.ascontiguousarray(theta), float(sd), float(sd_b), float(sd_u), float(rho),
            float(sd_c), self.correlated, self.clusters, np.ascontiguousarray(packed),
        )  # fmt: skip
        for store, val in zip(output_storage, res, strict=True):
            store[0] = np.asarray(val, dtype="float64")

    def infer_shape(self, node, input_shapes):
        return [(), input_shapes[0], (), (), (), (), ()]

    def connection_pattern(self, node):
        return [[True] * 7] * N_PARAMS + [[False] * 7]

    def pullback(self, inputs, outputs, cotangents):
        if any(not isinstance(g.type, DisconnectedType) for g in cotangents[1:]):
            raise NotImplementedError("second derivatives of the collapsed log-density")
        g = cotangents[0]
        return [g * o for o in outputs[1:]] + [disconnected_type()]


@register_funcify_default_op_cache_key(CollapsedLogp)
def _numba_funcify_collapsed(op, node, **kwargs):
    correlated = op.correlated
    clusters = op.clusters

    @numba_njit
    def collapsed_logp(theta, sd, sd_b, sd_u, rho, sd_c, packed):
        lp, gt, gsd, gsb, gsu, grho, gsc = value_and_grad_packed(
            theta, sd.item(), sd_b.item(), sd_u.item(), rho.item(), sd_c.item(), correlated,
            clusters, packed,
        )  # fmt: skip
        return (
            np.asarray(lp), gt, np.asarray(gsd), np.asarray(gsb), np.asarray(gsu),
            np.asarray(grho), np.asarray(gsc),
        )  # fmt: skip

    return collapsed_logp, _source_version()


def collapsed_logp_op(packed, theta, sd, sd_b, sd_u, rho=None, sd_c=None):
    """logp (pytensor scalar) through the Op; ``packed`` from :func:`.collapsed.packed_data`."""
    op = CollapsedLogp(correlated=rho is not None, clusters=sd_c is not None)
    zero = pt.constant(0.0)
    outs = op(
        theta, sd, sd_b, sd_u, zero if rho is None else rho, zero if sd_c is None else sd_c,
        packed,
    )  # fmt: skip
    return outs[0]
