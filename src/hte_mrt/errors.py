"""One exception hierarchy for the whole package.

Every error says *where* (column, row count, first offending ids) and *what to do*.

    HteMrtError
    ├── DataError                 bad or inconsistent input data
    │   ├── MissingColumnError
    │   ├── MissingValueError
    │   ├── ProbabilityError
    │   ├── TreatmentError
    │   ├── DuplicateRowError
    │   └── OutcomeTypeError
    ├── FormulaError              a formula that cannot be evaluated on the data
    ├── DesignError               the estimand does not fit the design (e.g. too few participants)
    │   └── PriorError            invalid prior specification (names the key)
    └── EstimationError           a solver that did not converge / singular system

    HteMrtWarning                 (UserWarning)
    ├── ConvergenceWarning        divergent or unconverged fits
    └── DegenerateDataWarning     legal but degenerate data (constant outcome, ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HteMrtError(Exception):
    """Base class of every error raised by hte_mrt."""


class HteMrtWarning(UserWarning):
    """Base class of every warning issued by hte_mrt."""


class DataError(HteMrtError, ValueError):
    """Input data are missing, malformed or inconsistent.

    Attributes
    ----------
    column : the offending column (or None)
    n_rows : how many rows are affected
    examples : up to five offending ids, e.g. ``[(id, decision), ...]``
    """

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        n_rows: int | None = None,
        examples: Sequence[Any] = (),
    ) -> None:
        self.column = column
        self.n_rows = n_rows
        self.examples = list(examples)
        super().__init__(message)


class MissingColumnError(DataError, KeyError):
    """A column named in a role or a formula is not in the data."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class MissingValueError(DataError):
    """NaN where a value is required."""


class ProbabilityError(DataError):
    """Randomization probabilities outside (0, 1) or not summing to 1."""


class TreatmentError(DataError):
    """Treatment values not among the levels, or treatment given while unavailable."""


class DuplicateRowError(DataError):
    """More than one row for the same (participant, decision point)."""


class OutcomeTypeError(DataError):
    """Outcome that is not numeric (or not 0/1 for a binary analysis)."""


class FormulaError(HteMrtError, ValueError):
    """A moderator / control formula that cannot be built from the data."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        self.column = column
        super().__init__(message)


class DesignError(HteMrtError, ValueError):
    """The requested analysis does not fit the trial design (e.g. too few participants)."""


class PriorError(DesignError):
    """A prior specification that cannot be used (unknown key or distribution, bad parameter)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)


class ConvergenceWarning(HteMrtWarning):
    """MCMC diagnostics (divergences, R-hat, ESS, BFMI) indicate an unreliable fit."""


class DegenerateDataWarning(HteMrtWarning):
    """Legal but degenerate data (a constant outcome, a binary outcome that never varies, a
    participant never available, ...): the result is returned, and its summary says why an
    estimate is missing or uninformative (never an unexplained NaN)."""


class PartitionWarning(HteMrtWarning):
    """A partitioned trial (``MRTData.from_parquet`` / ``from_dask``) whose partitions split
    participants: it is shuffled by participant once (time and disk), the estimates are
    unaffected."""


class EstimationError(HteMrtError, RuntimeError):
    """A numerical solve failed (singular bread, no convergence)."""


class UnseenLevelError(DataError):
    """A categorical covariate level, at prediction time, that was not seen when fitting."""


class UncleanedCodeError(DataError):
    """A dataset's documented missing-value codes (e.g. BMI = 0, 999) are still in the data."""


class PlanError(HteMrtError, ValueError):
    """An analysis plan (``models/*.toml``) that cannot be run: names the key and its line."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None) -> None:
        self.key = key
        self.line = line
        where = f"{key}" + (f" (line {line})" if line else "") if key else ""
        super().__init__(f"{where}: {message}" if where else message)
