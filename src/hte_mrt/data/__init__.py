"""Data room: the MRT schema, validation, bundled datasets and the trial simulator."""

from hte_mrt.data.crt import CRTData
from hte_mrt.data.schema import MRTData, TrialSummary

__all__ = ["CRTData", "MRTData", "TrialSummary"]
