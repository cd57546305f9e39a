"""Estimands: what is estimated, and the design matrices that estimate it."""

from hte_mrt.estimands.excursion import Design, ExcursionEffect, build_design

__all__ = ["Design", "ExcursionEffect", "build_design"]
