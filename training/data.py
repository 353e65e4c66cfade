"""Load multi-series data in long format (`unique_id`, `ds`, `y`) and reject bad data early.

Series come back in natural id order ("H2" before "H10"; ties broken by the plain string).
Rows named in error messages are 0-based positions in the frame, header not counted
(row ``r`` of a CSV file is on line ``r + 2``).

Every series lies on one regular grid of the data's frequency (`frequency.py`); stamps missing
from it are gaps, which `fill: error` refuses and the other fill policies fill like NaN values,
so that no training window silently spans a gap.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from stackcast.training.data_errors import (
    DataError,
    DuplicateTimestampError,
    FrequencyMismatchError,
    GapError,
    InvalidKeyError,
    IrregularSpacingError,
    MissingColumnsError,
    MixedFrequencyError,
    NonFiniteValueError,
    NonNumericValueError,
    SeriesTooShortError,
    UndecidableFrequencyError,
    UnsupportedFileError,
    UnsupportedFrequencyError,
)
from stackcast.training.frequency import Frequency, infer_frequency, series_grid

__all__ = [  # the error classes live in data_errors.py; callers import them from here too
    "DataError",
    "DuplicateTimestampError",
    "FillPolicy",
    "FrequencyMismatchError",
    "GapError",
    "InvalidKeyError",
    "IrregularSpacingError",
    "MissingColumnsError",
    "MixedFrequencyError",
    "NonFiniteValueError",
    "NonNumericValueError",
    "SeriesSet",
    "SeriesTooShortError",
    "UndecidableFrequencyError",
    "UnsupportedFileError",
    "UnsupportedFrequencyError",
    "data_fingerprint",
    "frame_to_series",
    "load_series",
    "load_series_set",
    "read_long_frame",
    "read_series",
]

FillPolicy = Literal["error", "ffill", "interpolate", "zero"]
REQUIRED_COLUMNS = ("unique_id", "ds", "y")
_FILLS = ", ".join(repr(p) for p in get_args(FillPolicy) if p != "error")
_MAX_EXAMPLES = 5
_ROWS = "rows 0-based, header not counted"
_SHOWN = 3  # missing stamps shown per series
Stamp = pd.Timestamp | int


def _natural_key(uid: str) -> tuple[str, str]:
    return re.sub(r"\d+", lambda m: m.group().zfill(20), uid), uid


def _fmt(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _listing(parts: list[str], total: int) -> str:
    text = "; ".join(parts[:_MAX_EXAMPLES])
    rest = total - min(len(parts), _MAX_EXAMPLES)
    return f"{text}; ... and {rest} more" if rest > 0 else text


def _rows(bad: pd.DataFrame) -> str:
    """List offending rows as `row R (series 'ID', ds=T, y=V)`, up to `_MAX_EXAMPLES`."""
    head = bad.head(_MAX_EXAMPLES)
    parts = [
        f"row {row} (series {uid!r}, ds={_fmt(ds)}, y={_fmt(y)})"
        for row, uid, ds, y in zip(
            head.index, head["unique_id"], head["ds"], head["y"], strict=True
        )
    ]
    return _listing(parts, len(bad))


@dataclass(frozen=True)
class SeriesSet:
    """Validated series on one regular grid, with what a caller needs besides the values.

    Attributes:
        series: `{series_id: float32 values on the grid, sorted by ds}`, ids in natural order.
        frequency: the data's frequency (inferred, or declared and checked).
        last_ds: `{series_id: last stamp}` (a Timestamp, or an int for integer ds); forecasts
            start one step after it.
        filled_gaps: how many missing stamps were inserted and filled (0 under `fill: error`).
    """

    series: dict[str, np.ndarray]
    frequency: Frequency
    last_ds: dict[str, Stamp]
    filled_gaps: int


def _to_datetime(ds: pd.Series, **kwargs: str) -> pd.Series:
    """Parse dates, unparseable ones to NaT; several UTC offsets (a DST change) go to UTC."""
    try:
        return pd.to_datetime(ds, errors="coerce", **kwargs)  # type: ignore[call-overload,no-any-return]
    except ValueError:
        return pd.to_datetime(ds, errors="coerce", utc=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def _parse_ds(ds: pd.Series) -> pd.Series:
    """Parse `ds`: integers, or datetimes in one format; what does not parse becomes NaN/NaT.

    Numbers must be whole (1.0 is step 1; 1.5 is no step). Text is integers if every value is
    one, else dates: ISO 8601 in any precision ("2024-01-01" next to "2024-01-01 13:00"), or
    one other format inferred from the first value, whichever parses more rows; a value in a
    second format does not parse, so one column cannot mix "2024-01-02" and "01/02/2024".
    """
    if pd.api.types.is_datetime64_any_dtype(ds):
        return ds
    numbers = ds if pd.api.types.is_numeric_dtype(ds) else pd.to_numeric(ds, errors="coerce")
    if numbers.notna().sum() == ds.notna().sum():
        return numbers.where(numbers == numbers.round())
    iso = _to_datetime(ds, format="ISO8601")
    inferred = _to_datetime(ds)
    return iso if iso.notna().sum() >= inferred.notna().sum() else inferred


def _interpolate(y: pd.Series, ids: pd.Series) -> pd.Series:
    """Linear interpolation by position within each series; edge gaps take the nearest value."""
    pos = pd.Series(np.arange(len(y), dtype=np.float64), index=y.index)
    known = pos.where(y.notna())
    prev_pos, next_pos = known.groupby(ids).ffill(), known.groupby(ids).bfill()
    prev_val, next_val = y.groupby(ids).ffill(), y.groupby(ids).bfill()
    span = next_pos - prev_pos
    frac = ((pos - prev_pos) / span.where(span > 0)).fillna(0.0)
    return (prev_val + (next_val - prev_val) * frac).fillna(prev_val).fillna(next_val)


def read_long_frame(path: Path) -> pd.DataFrame:
    """Read a long-format file: CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`).

    `unique_id` is read as text (so "001" keeps its zeros); `y` is left as read, so a stray
    string such as "abc" survives and is reported by `frame_to_series`.

    Args:
        path: the file to read.

    Returns:
        The frame as stored, unvalidated.

    Raises:
        UnsupportedFileError: the suffix is not one of the above.
        FileNotFoundError: the file does not exist.
        DataError: a CSV file is empty or malformed.
    """
    path = Path(path)
    name = path.name.lower()
    is_csv = name.endswith((".csv", ".csv.gz"))
    if not is_csv and not name.endswith((".parquet", ".pq")):
        raise UnsupportedFileError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no suffix)'!r}; "
            "use a CSV (.csv, .csv.gz) or Parquet (.parquet, .pq) file in long format "
            "with columns unique_id, ds, y"
        )
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if not is_csv:
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path, dtype={"unique_id": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read as CSV: {err}") from err


def _validated(frame: pd.DataFrame, fill: FillPolicy) -> pd.DataFrame:
    """Check columns, keys, values and duplicates; `ds` parsed, `y` float64, rows as index."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"missing column(s) {', '.join(map(repr, missing))}; found "
            f"{list(map(str, frame.columns))}. Rename the columns: long format needs one row "
            "per point with unique_id (series id), ds (timestamp) and y (value)"
        )
    if frame.empty:
        raise DataError("the data has no rows; expected one row per (unique_id, ds) point")
    work = frame.loc[:, list(REQUIRED_COLUMNS)].reset_index(drop=True)

    ds = _parse_ds(work["ds"])
    no_id, bad_ds = work["unique_id"].isna(), ds.isna()
    if no_id.any() or bad_ds.any():
        cols = " and ".join(repr(c) for c, m in (("unique_id", no_id), ("ds", bad_ds)) if m.any())
        raise InvalidKeyError(
            f"column {cols} is empty or unparseable in {int((no_id | bad_ds).sum())} row(s) "
            f"({_ROWS}): {_rows(work.loc[no_id | bad_ds])}. Every row needs a series id and a "
            "ds that is a whole-number time index or a date, all dates in one format "
            "(e.g. 2024-01-31 13:00)"
        )
    if pd.api.types.is_numeric_dtype(ds):
        ds = ds.astype(np.int64)
    work["unique_id"], work["ds"] = work["unique_id"].astype(str), ds

    y = work["y"]
    if not pd.api.types.is_numeric_dtype(y):
        numbers = pd.to_numeric(y, errors="coerce")
        bad_y = numbers.isna() & y.notna()
        if bad_y.any():
            raise NonNumericValueError(
                f"column 'y' has {int(bad_y.sum())} value(s) that are not numbers in "
                f"{work.loc[bad_y, 'unique_id'].nunique()} series ({_ROWS}): "
                f"{_rows(work.loc[bad_y])}. Fix them in the file (use '.' as decimal separator); "
                f"leave a cell empty to mark a gap and set data.fill to one of {_FILLS}"
            )
        y = numbers
    work["y"] = y.astype(np.float64)

    dup = work.duplicated(["unique_id", "ds"], keep=False)
    if dup.any():
        bad = work.loc[dup].sort_values(["unique_id", "ds"], kind="stable")
        raise DuplicateTimestampError(
            f"{int(dup.sum())} rows share a (unique_id, ds) pair with another row in "
            f"{bad['unique_id'].nunique()} series ({_ROWS}): {_rows(bad)}. Keep one row per "
            "series and timestamp, e.g. df.groupby(['unique_id', 'ds'], as_index=False)['y'].mean()"
        )

    nonfinite = ~np.isfinite(work["y"])
    if nonfinite.any() and fill == "error":
        raise NonFiniteValueError(
            f"column 'y' has {int(nonfinite.sum())} NaN/inf value(s) in "
            f"{work.loc[nonfinite, 'unique_id'].nunique()} series ({_ROWS}): "
            f"{_rows(work.loc[nonfinite])}. Remove or correct them, or set data.fill "
            f"to one of {_FILLS} to fill gaps instead"
        )
    return work.sort_values(["unique_id", "ds"], kind="stable")


def _add_gaps(work: pd.DataFrame, freq: Frequency, fill: FillPolicy) -> tuple[pd.DataFrame, int]:
    """Add a NaN row for every stamp missing from its series' grid (GapError under `error`)."""
    gaps = []
    for uid, ds in work.groupby("unique_id", sort=False)["ds"]:
        grid = series_grid(ds, freq)
        if len(grid) > len(ds):
            gaps.append((str(uid), grid.difference(pd.Index(ds))))
    if not gaps:
        return work, 0
    total = sum(len(stamps) for _, stamps in gaps)
    if fill == "error":
        gaps.sort(key=lambda gap: _natural_key(gap[0]))
        parts = [
            f"{uid!r} ({len(stamps)} missing, first: {', '.join(map(str, stamps[:_SHOWN]))})"
            for uid, stamps in gaps
        ]
        raise GapError(
            f"{total} timestamp(s) missing from the {freq.describe()} grid (gaps) in "
            f"{len(gaps)} series: {_listing(parts, len(parts))}. A training window must not "
            "span a gap: add the missing rows to the file, or set data.fill to one of "
            f"{_FILLS} to fill them like NaN values"
        )
    added = pd.DataFrame(
        {
            "unique_id": [uid for uid, stamps in gaps for _ in stamps],
            "ds": np.concatenate([stamps.to_numpy() for _, stamps in gaps]),
            "y": np.nan,
        }
    )
    work = pd.concat([work, added], ignore_index=True)
    return work.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True), total


def _fill(work: pd.DataFrame, fill: FillPolicy) -> pd.Series:
    """`y` with NaN/inf filled within each series (`work` sorted by series, then ds)."""
    ids, y = work["unique_id"], work["y"].where(np.isfinite(work["y"]))
    if fill == "ffill":
        y = y.groupby(ids).ffill().groupby(ids).bfill()
    elif fill == "interpolate":
        y = _interpolate(y, ids)
    else:
        y = y.fillna(0.0)
    empty = sorted(ids[y.isna()].unique(), key=_natural_key)
    if empty:
        raise NonFiniteValueError(
            f"{len(empty)} series have no finite y value, so data.fill={fill!r} has "
            f"nothing to fill from: {_listing([repr(u) for u in empty], len(empty))}. "
            "Drop these series or use data.fill='zero'"
        )
    return y


def read_series(
    frame: pd.DataFrame,
    *,
    min_length: int,
    fill: FillPolicy = "error",
    freq: str | Frequency = "auto",
) -> SeriesSet:
    """Validate a long-format frame, find its frequency, handle gaps, split it into series.

    Args:
        frame: columns `unique_id`, `ds` (whole-number index or datetime/date), `y` (numeric);
            other columns are ignored.
        min_length: the fewest points a series may have (counted after filling gaps).
        fill: what to do with NaN/inf in `y` and with gaps (stamps missing from a series'
            grid): `error` raises; `ffill` carries the last value forward (leading NaN take the
            first value); `interpolate` is linear by position within the series (edge NaN take
            the nearest value); `zero` puts 0. Gaps are inserted first, then filled alike.
        freq: `auto`, a frequency name, `Kmin`, or a `Frequency`; see `infer_frequency`.

    Returns:
        The series, their frequency, each series' last stamp and the number of filled gaps.

    Raises:
        MissingColumnsError, InvalidKeyError, NonNumericValueError, DuplicateTimestampError,
        NonFiniteValueError, MixedFrequencyError, IrregularSpacingError,
        FrequencyMismatchError, UndecidableFrequencyError, UnsupportedFrequencyError, GapError,
        SeriesTooShortError: see the classes; all derive from DataError.
        ValueError: `min_length` < 1, an unknown `fill` or an unknown `freq`.
    """
    if min_length < 1:
        raise ValueError(f"min_length must be at least 1, got {min_length}")
    if fill not in get_args(FillPolicy):
        raise ValueError(f"unknown fill policy {fill!r}; use 'error' or one of {_FILLS}")
    work = _validated(frame, fill)
    stamps = dict(iter(work.groupby("unique_id", sort=False)["ds"]))
    frequency = infer_frequency({str(uid): ds for uid, ds in stamps.items()}, freq)
    work, filled = _add_gaps(work, frequency, fill)
    if not np.isfinite(work["y"]).all():
        work["y"] = _fill(work, fill)

    sizes = work.groupby("unique_id").size()
    short = sizes[sizes < min_length]
    if not short.empty:
        order = sorted(short.index, key=_natural_key)
        raise SeriesTooShortError(
            f"{len(short)} series have fewer than min_length={min_length} points: "
            f"{_listing([f'{u!r} ({short[u]} points)' for u in order], len(short))}. "
            "Drop these series or lower min_length (the model's context plus horizon)"
        )

    uid_arr = work["unique_id"].to_numpy()
    starts = np.flatnonzero(uid_arr[1:] != uid_arr[:-1]) + 1
    chunks = np.split(work["y"].to_numpy(dtype=np.float32), starts)
    by_id = dict(zip(uid_arr[np.r_[0, starts]].tolist(), chunks, strict=True))
    order = sorted(by_id, key=_natural_key)
    last = work.groupby("unique_id", sort=False)["ds"].last()
    last_ds = {u: last[u] if frequency.step is None else int(last[u]) for u in order}
    return SeriesSet({u: by_id[u] for u in order}, frequency, last_ds, filled)


def frame_to_series(
    frame: pd.DataFrame,
    *,
    min_length: int,
    fill: FillPolicy = "error",
    freq: str | Frequency = "auto",
) -> dict[str, np.ndarray]:
    """The series of `read_series`, for callers that need only the values.

    Returns:
        `{series_id: float32 values sorted by ds}`, ids in natural order.
    """
    return read_series(frame, min_length=min_length, fill=fill, freq=freq).series


def load_series_set(
    path: Path,
    *,
    min_length: int,
    fill: FillPolicy = "error",
    freq: str | Frequency = "auto",
) -> SeriesSet:
    """Read a long-format file and validate it (`read_long_frame` + `read_series`).

    Args:
        path: CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`) file.
        min_length: the fewest points a series may have.
        fill: NaN/inf and gap policy, see `read_series`.
        freq: `auto`, a frequency name, `Kmin`, or a `Frequency`; see `infer_frequency`.

    Returns:
        The series, their frequency, each series' last stamp and the number of filled gaps.

    Raises:
        DataError: a subclass naming the problem; the message starts with the path.
        FileNotFoundError: the file does not exist.
    """
    frame = read_long_frame(path)
    try:
        return read_series(frame, min_length=min_length, fill=fill, freq=freq)
    except DataError as err:
        raise type(err)(f"{path}: {err}") from err


def load_series(
    path: Path, *, min_length: int, fill: FillPolicy = "error"
) -> dict[str, np.ndarray]:
    """Read a long-format file and validate it; the series of `load_series_set`.

    Args:
        path: CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`) file.
        min_length: the fewest points a series may have.
        fill: NaN/inf and gap policy, see `read_series`.

    Returns:
        `{series_id: float32 values sorted by ds}`, ids in natural order.

    Raises:
        DataError: a subclass naming the problem; the message starts with the path.
        FileNotFoundError: the file does not exist.
    """
    return load_series_set(path, min_length=min_length, fill=fill).series


def data_fingerprint(series: dict[str, np.ndarray]) -> str:
    """A short stable digest of the data, so a run records exactly which data it saw.

    Args:
        series: `{series_id: values}`; the dict order does not matter.

    Returns:
        The first 16 hex characters of a sha256 over the ids and float32 values.
    """
    digest = hashlib.sha256()
    for uid in sorted(series):
        values = np.ascontiguousarray(series[uid], dtype="<f4")
        key = uid.encode()
        digest.update(len(key).to_bytes(8, "little") + key)
        digest.update(values.size.to_bytes(8, "little") + values.tobytes())
    return digest.hexdigest()[:16]
