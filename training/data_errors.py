"""The named errors for input data that cannot be used; each message says where and what to set.

They live apart from `data.py` and `frequency.py` because both raise them (and `data.py` calls
`frequency.py`); `data.py` re-exports every class, so `stackcast.training.data.DataError` and
friends keep working.
"""

from __future__ import annotations


class DataError(ValueError):
    """The input data cannot be used for training; the message says where and how to fix it."""


class MissingColumnsError(DataError):
    """A required column (`unique_id`, `ds`, `y`) is absent."""


class InvalidKeyError(DataError):
    """A `unique_id` is empty or a `ds` is empty, unparseable or in a second date format."""


class DuplicateTimestampError(DataError):
    """A series has more than one row for the same `ds`."""


class NonNumericValueError(DataError):
    """A `y` value cannot be parsed as a number."""


class NonFiniteValueError(DataError):
    """A `y` is NaN/inf under fill `error`, or a series has no finite value to fill from."""


class SeriesTooShortError(DataError):
    """A series has fewer than `min_length` points."""


class UnsupportedFileError(DataError):
    """The file suffix is not a supported format."""


class GapError(DataError):
    """A series misses timestamps on its regular grid and `data.fill` is `error`."""


class MixedFrequencyError(DataError):
    """Series disagree on the frequency (e.g. some hourly, some daily)."""


class IrregularSpacingError(DataError):
    """A series' timestamps are not on one regular grid (not even one with gaps)."""


class FrequencyMismatchError(DataError):
    """The declared `data.freq` contradicts the timestamps."""


class UndecidableFrequencyError(DataError):
    """The timestamps do not decide the frequency (or what a season is): `data.freq` must say."""


class UnsupportedFrequencyError(DataError):
    """The series are on a regular grid that has no defaults here (e.g. every 2 hours)."""
