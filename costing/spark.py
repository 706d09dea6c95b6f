"""The same engine on Apache Spark: each patient's records priced and windowed together.

Every output row depends on one patient's records and the small tables, so Spark splits the
records by a hash of ``patient_id`` and each part goes through the unchanged
:func:`costing.price` and :func:`costing.cost_by_window` (Arrow in, polars inside, Arrow out),
with the tables broadcast. Nothing is written twice: the rules are those of the polars engine.

PySpark is imported only when a function here is called (install ``costing[spark]``, or use
the PySpark a platform such as Databricks brings). Spark 4 is used as it is; on Spark 3.3-3.5
the cogrouped steps go through ``applyInPandas`` instead of ``applyInArrow`` (see
``docs/spark.md``).

Three things differ from the polars engine, by design:

- Enum and Categorical columns (``pod``, ``status_name``, the editions, ...) are strings and
  ``UInt32`` counts are ``bigint``: Spark has neither dictionary nor unsigned types
  (:func:`spark_schema`).
- Rows come out in no particular order; sort by ``record_id`` (or ``source_row``).
- ``source_row`` is kept when the input has it. Otherwise it is added before the shuffle as
  ``monotonically_increasing_id() + 1``: unique and increasing in the input's order, but not a
  line number (:func:`read_activity` gives the row number of a Parquet file exactly).

Example (needs PySpark and Java 17+)::

    from costing import spark as cs
    session = cs.session("local[*]")
    activity = session.read.parquet("activity/")        # canonical columns
    priced = cs.price(activity, config=costing.CostingConfig(perspective="provider"))
    windows = cs.cost_by_window(priced, session.read.parquet("cohort.parquet"))
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from costing.config import CostingConfig
from costing.errors import ConfigError, ConservationError, CostingError, InputError
from costing.schema import ACTIVITY_SCHEMA, COHORT_SCHEMA
from costing.tables import TableSet, load_tables
from costing.windows import DEFAULT_WINDOWS, Assign, By, _spec

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "price",
    "cost_by_window",
    "price_and_window",
    "read_activity",
    "spark_schema",
    "session",
    "worker_errors",
    "default_partitions",
    "ROWS_PER_PARTITION",
    "MIN_SPARK",
]

# A call of costing.price costs about 80 ms whatever its size, and a Python worker holds
# about 0.7 KB a row: parts of about a million rows keep the fixed cost small and a worker
# under 1 GB (docs/spark.md, "Sizing").
ROWS_PER_PARTITION = 1_000_000
# mapInArrow came with Spark 3.3; cogrouped applyInArrow with 4.0 (applyInPandas before).
MIN_SPARK = (3, 3)
_ARROW_COGROUP = (4, 0)
BUCKET = "_bucket"
_SOURCE_ROW = "source_row"
_SOURCE_FILE = "source_file"
_FILE = "__costing_source_file__"  # the source file of each row, as Spark read it
_READ_ORDER = "__costing_read_order__"  # the position of a row's input in read_activity's list
_FIRST = "__costing_first__"  # the first record of a repeated record id
# Spark settings costing sets on a session it starts (a user's conf overrides them).
_DEFAULT_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


# --------------------------------------------------------------------------------------
# PySpark, the session and partitions
# --------------------------------------------------------------------------------------


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _pyspark_version() -> tuple[int, int]:
    """PySpark's (major, minor); ConfigError saying how to install it when absent or too old."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError(
            "the Spark engine needs PySpark and Java 17+: pip install 'costing[spark]' (on "
            "Databricks PySpark is already there: install the costing wheel only)"
        ) from None
    version = _version(pyspark.__version__)
    if version < MIN_SPARK:
        raise ConfigError(
            f"the Spark engine needs Spark {'.'.join(map(str, MIN_SPARK))} or later (mapInArrow); "
            f"this is PySpark {pyspark.__version__}"
        )
    return version


def _cogroup_api() -> str:
    """``arrow`` (Spark 4: cogrouped applyInArrow) or ``pandas`` (Spark 3.3-3.5 fallback)."""
    return "arrow" if _pyspark_version() >= _ARROW_COGROUP else "pandas"


def session(master: str | None = None, conf: Mapping[str, str] | None = None,
            app_name: str = "costing") -> SparkSession:
    """A SparkSession whose Python workers run this Python (the one costing is installed in).

    Args:
        master: ``local[*]``, ``spark://host:7077``, ``yarn``, ...; None: the active session
            if there is one (Databricks), else ``local[*]``.
        conf: Spark settings, e.g. ``{"spark.executor.memory": "8g"}``.
        app_name: the application's name in the Spark UI.

    ``PYSPARK_PYTHON`` is set to ``sys.executable`` unless already set: workers running
    another Python would not find costing, or would find another version of it.
    """
    _pyspark_version()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and master is None and not conf:
        return active
    builder = SparkSession.builder.appName(app_name).master(master or "local[*]")
    for key, value in {**_DEFAULT_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def default_partitions(rows: int) -> int:
    """Partitions (patient buckets) for a number of input rows: about
    ``ROWS_PER_PARTITION`` rows each, at least one.

    >>> default_partitions(0), default_partitions(1_000_000), default_partitions(1_700_000_000)
    (1, 1, 1700)
    """
    return max(1, math.ceil(rows / ROWS_PER_PARTITION))


# --------------------------------------------------------------------------------------
# types: polars <-> Spark
# --------------------------------------------------------------------------------------

# Spark has no unsigned integers: each is widened to the signed type that holds it.
_WIDER = {pl.UInt8: pl.Int16, pl.UInt16: pl.Int32, pl.UInt32: pl.Int64}


def _sendable(dtype: pl.DataType) -> pl.DataType:
    """The polars dtype a column is cast to before it goes to Spark."""
    if isinstance(dtype, (pl.Enum, pl.Categorical)) or dtype == pl.Null:
        return pl.String()
    for unsigned, signed in _WIDER.items():
        if dtype == unsigned:
            return signed()
    return dtype


def _spark_type(name: str, dtype: pl.DataType) -> DataType:
    from pyspark.sql import types as T

    simple: dict[Any, Callable[[], DataType]] = {
        pl.String: T.StringType, pl.Boolean: T.BooleanType, pl.Int8: T.ByteType,
        pl.Int16: T.ShortType, pl.Int32: T.IntegerType, pl.Int64: T.LongType,
        pl.Float32: T.FloatType, pl.Float64: T.DoubleType, pl.Date: T.DateType,
        pl.Binary: T.BinaryType,
    }
    for polars_type, spark_type in simple.items():
        if dtype == polars_type:
            return spark_type()
    if isinstance(dtype, pl.Datetime):
        return T.TimestampType() if dtype.time_zone else T.TimestampNTZType()
    if isinstance(dtype, pl.Decimal):
        return T.DecimalType(dtype.precision or 38, dtype.scale or 0)
    raise InputError(
        f"column {name!r}: polars type {dtype} has no Spark type; cast it to a string, "
        "number, boolean or date first"
    )


def spark_schema(polars_schema: Mapping[str, pl.DataType]) -> StructType:
    """The Spark schema of a polars frame as the Spark engine sends it.

    Enum, Categorical and Null become ``string``; ``UInt8``/``UInt16``/``UInt32`` become
    ``smallint``/``int``/``bigint``; the rest map one to one. Every field is nullable.

    Example (needs PySpark)::

        >>> from costing.schema import PRICED_COLUMNS
        >>> schema = spark_schema(PRICED_COLUMNS)  # doctest: +SKIP
        >>> schema["status_name"].dataType.simpleString()  # doctest: +SKIP
        'string'
    """
    from pyspark.sql import types as T

    return T.StructType([T.StructField(n, _spark_type(n, _sendable(t)), True)
                         for n, t in polars_schema.items()])


def _sendable_schema(schema: Mapping[str, pl.DataType]) -> dict[str, pl.DataType]:
    return {n: _sendable(t) for n, t in schema.items()}


def _arrow_schema(struct: StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(struct)


def _send(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], arrow: pa.Schema) -> pa.Table:
    """A polars frame as an Arrow table of the declared (pinned) output schema."""
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise CostingError(f"spark: output lacks column(s) {missing}; a bug in costing, please report it")
    return frame.select(pl.col(c).cast(t) for c, t in schema.items()).to_arrow().cast(arrow)


def _polars(table: pa.Table) -> pl.DataFrame:
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out


def _whole(batches: Iterable[pa.RecordBatch]) -> pl.DataFrame | None:
    """Every Arrow batch of a partition as one frame (None when it has none).

    Spark hands a partition over in batches of ``spark.sql.execution.arrow.maxRecordsPerBatch``
    rows (10,000 by default). Pricing them one by one would split spells whose episodes sit in
    two batches: the whole partition is priced at once.
    """
    import pyarrow as pa

    got = list(batches)
    if not got:
        return None
    return _polars(pa.Table.from_batches(got))


def _empty(struct: StructType) -> pl.DataFrame:
    """An empty polars frame with a Spark schema's columns and types."""
    return _polars(_arrow_schema(struct).empty_table())


def _patient_key(column: str = "patient_id") -> Column:
    """The patient id as pricing reads it (surrounding blanks stripped), for partitioning."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.col(column), r"^\s+|\s+$", "")


def _bucket(n: int, column: str = "patient_id") -> Column:
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(_patient_key(column)), F.lit(n)).cast("int")


def _with_source_row(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    if _SOURCE_ROW in df.columns:
        return df
    return df.withColumn(_SOURCE_ROW, F.monotonically_increasing_id() + 1)


def _spark_frame(spark: SparkSession, frame: pl.DataFrame) -> DataFrame:
    """A (small) polars frame as a Spark DataFrame of its sendable schema."""
    struct = spark_schema(frame.schema)
    table = _send(frame, _sendable_schema(frame.schema), _arrow_schema(struct))
    if _pyspark_version() >= _ARROW_COGROUP:
        return spark.createDataFrame(table, schema=struct)  # Spark 4 takes Arrow as it is
    return spark.createDataFrame(table.to_pandas(date_as_object=True, integer_object_nulls=True),
                                 schema=struct)


def _cohort_frame(spark: SparkSession, cohort: DataFrame | pl.DataFrame) -> DataFrame:
    if isinstance(cohort, pl.DataFrame):
        from costing.cohort import validate_cohort

        return _spark_frame(spark, validate_cohort(cohort))
    return cohort


# --------------------------------------------------------------------------------------
# the two shapes of a job: one frame by partition, two cogrouped by patient bucket
# --------------------------------------------------------------------------------------


def _by_partition(df: DataFrame, n: int, out: Mapping[str, pl.DataType],
                  work: Callable[[pl.DataFrame], pl.DataFrame]) -> DataFrame:
    """``df`` split into ``n`` partitions by patient, each whole partition through ``work``."""
    struct = spark_schema(out)
    schema, arrow = _sendable_schema(out), _arrow_schema(struct)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        frame = _whole(batches)
        if frame is None or frame.height == 0:  # an empty partition: nothing to price
            return
        yield from _send(work(frame), schema, arrow).to_batches()

    return df.repartition(n, _patient_key()).mapInArrow(run, struct)


def _cogrouped(left: DataFrame, right: DataFrame, n: int, out: Mapping[str, pl.DataType],
               work: Callable[[int, pl.DataFrame, pl.DataFrame], pl.DataFrame]) -> DataFrame:
    """``left`` and ``right`` cogrouped by patient bucket (one shuffle), each bucket's two
    frames whole through ``work(bucket, left, right)``."""
    struct = spark_schema(out)
    schema, arrow = _sendable_schema(out), _arrow_schema(struct)
    lb = left.withColumn(BUCKET, _bucket(n))
    rb = right.withColumn(BUCKET, _bucket(n))
    grouped = lb.groupBy(BUCKET).cogroup(rb.groupBy(BUCKET))

    def apply(key: tuple[Any, ...], a: pl.DataFrame, b: pl.DataFrame) -> pa.Table:
        return _send(work(int(key[0]), a.drop(BUCKET), b.drop(BUCKET)), schema, arrow)

    if _cogroup_api() == "arrow":
        def arrow_udf(key: tuple[Any, ...], a: pa.Table, b: pa.Table) -> pa.Table:
            return apply(key, _polars(a), _polars(b))

        return grouped.applyInArrow(arrow_udf, struct)
    return _pandas_cogroup(grouped, lb.schema, rb.schema, struct, apply)


def _pandas_cogroup(grouped: Any, left: StructType, right: StructType, struct: StructType,
                    apply: Callable[[tuple[Any, ...], pl.DataFrame, pl.DataFrame], pa.Table]) -> DataFrame:
    """Spark 3.3-3.5: the same through ``applyInPandas``, each side read back to Arrow with
    its Spark schema (pandas turns an integer column with nulls into floats)."""
    import pyarrow as pa

    la, ra = _arrow_schema(left), _arrow_schema(right)

    def pandas_udf(key: tuple[Any, ...], a: Any, b: Any) -> Any:
        ta = pa.Table.from_pandas(a, schema=la, preserve_index=False)
        tb = pa.Table.from_pandas(b, schema=ra, preserve_index=False)
        return apply(key, _polars(ta), _polars(tb)).to_pandas(date_as_object=True,
                                                              integer_object_nulls=True)

    return grouped.applyInPandas(pandas_udf, struct)


def _partitions(df: DataFrame, partitions: int | None) -> int:
    if partitions is not None:
        if partitions < 1:
            raise ConfigError(f"partitions must be at least 1; got {partitions}")
        return partitions
    return default_partitions(df.count())


# --------------------------------------------------------------------------------------
# per bucket: the checks that make a failing bucket name its patients
# --------------------------------------------------------------------------------------


def _patients(ids: pl.Series, shown: int = 100) -> str:
    """How many patients, and the first ``shown`` of their ids in order."""
    unique = ids.drop_nulls().unique().sort()
    head = ", ".join(unique.head(shown).to_list())
    return f"{unique.len()} patient(s): {head}" + (", ..." if unique.len() > shown else "")


def in_bucket(bucket: int, patients: pl.Series, step: Callable[[], Any]) -> Any:
    """``step()``; a ConservationError it raises names the bucket and its patients."""
    try:
        return step()
    except ConservationError as exc:
        raise ConservationError(f"spark bucket {bucket} ({_patients(patients)}): {exc}") from None


def check_rows(bucket: int, rows_in: int, priced: pl.DataFrame) -> None:
    """Every input row of a bucket comes out priced (a spell counts its episodes)."""
    episodes = int(priced["n_episodes"].sum()) if priced.height else 0
    if episodes != rows_in:
        raise ConservationError(
            f"spark bucket {bucket} ({_patients(priced['patient_id'])}): {rows_in} records in "
            f"but {episodes} priced (episodes counted in spells); a bug in costing, please report it"
        )


_WORKER_ERROR = re.compile(r"^costing\.errors\.(\w+): (.*)", re.M | re.S)


@contextmanager
def worker_errors() -> Iterator[None]:
    """Around a Spark action: a costing error raised in a Python worker is raised again here
    as a costing error with its message (Spark reports it as a PythonException carrying the
    worker's traceback), so the CLI shows the message, not a traceback."""
    from costing import errors

    try:
        yield
    except Exception as exc:
        if type(exc).__name__ != "PythonException":
            raise
        found = _WORKER_ERROR.search(str(exc))
        if found is None:
            raise
        name, message = found.group(1), found.group(2).strip()
        cls = getattr(errors, name, CostingError)
        for kind in (c for c in cls.__mro__ if issubclass(c, CostingError)):
            try:  # the nearest kind made from a message alone (ValidationError needs its rows)
                raised = kind(message)
            except TypeError:
                continue
            raise raised from None
        raise


# --------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------


def _tables(tables: TableSet | None) -> TableSet:
    return tables if tables is not None else load_tables()


def priced_schema(activity: StructType, tables: TableSet, config: CostingConfig) -> pl.Schema:
    """The polars schema ``costing.price`` gives records of a Spark schema (found by pricing
    none of them)."""
    from costing.pricing import price as price_frame

    return price_frame(_empty(activity), tables, config).schema


def price(df: DataFrame, tables: TableSet | None = None, config: CostingConfig | None = None,
          *, partitions: int | None = None) -> DataFrame:
    """:func:`costing.price` on Spark: records split by patient, each part priced whole.

    Args:
        df: canonical activity (``costing.schema.ACTIVITY_SCHEMA`` columns, absent optional
            ones allowed), e.g. read with :func:`read_activity`.
        tables: a TableSet (a user's editions too), broadcast to the workers; default the
            shipped tables.
        config: a CostingConfig; default purchaser perspective, dated editions.
        partitions: how many parts; default one per ``ROWS_PER_PARTITION`` input rows (which
            counts the input once).

    Returns:
        A Spark DataFrame with the columns and values of ``costing.price`` (Enum and
        Categorical columns as strings), rows in no particular order.
    """
    from costing.pricing import price as price_frame

    _pyspark_version()
    cfg, ts = config or CostingConfig(), _tables(tables)
    df = _with_source_row(df)
    n = _partitions(df, partitions)
    shared = df.sparkSession.sparkContext.broadcast((ts, cfg))

    def work(frame: pl.DataFrame) -> pl.DataFrame:
        t, c = shared.value
        return price_frame(frame, t, c)

    return _by_partition(df, n, priced_schema(df.schema, ts, cfg), work)


def _window_schema(by: By) -> pl.Schema:
    from costing.pricing import price as price_frame
    from costing.windows import cost_by_window as windows_frame

    nothing = price_frame(pl.DataFrame(schema=ACTIVITY_SCHEMA))
    return windows_frame(nothing, pl.DataFrame(schema=COHORT_SCHEMA), by=by).schema


def cost_by_window(priced: DataFrame, cohort: DataFrame | pl.DataFrame,
                   windows: Sequence[int] = DEFAULT_WINDOWS, months: int = 6,
                   assign: Assign = "admission", by: By = "category",
                   *, partitions: int | None = None) -> DataFrame:
    """:func:`costing.cost_by_window` on Spark: priced records and cohort cogrouped by
    patient bucket, each bucket windowed whole and checked (money and rows conserved; a
    failing bucket fails the job naming its patients).

    Args:
        priced: the output of :func:`price` (or priced records read back).
        cohort: the cohort, a Spark DataFrame or a polars frame (validated here).
        windows, months, assign, by: as for :func:`costing.cost_by_window`.
        partitions: patient buckets; default the priced frame's partitions.

    Returns:
        A Spark DataFrame with the rows and columns of ``costing.cost_by_window`` (counts as
        bigint), in no particular order.
    """
    spec = _spec(windows, months, assign, by)
    from costing.windows import cost_by_window as windows_frame

    n = partitions or priced.rdd.getNumPartitions()
    used = [c for c in ("patient_id", "setting", "activity_date", "discharge_date", "cost", "status",
                        spec.category_column) if c in priced.columns]

    def work(bucket: int, records: pl.DataFrame, coh: pl.DataFrame) -> pl.DataFrame:
        return in_bucket(bucket, coh["patient_id"], lambda: windows_frame(
            records, coh, windows=spec.windows, months=months, assign=assign, by=by))

    return _cogrouped(priced.select(*used), _cohort_frame(priced.sparkSession, cohort), n,
                      _window_schema(by), work)


def price_and_window(activity: DataFrame, cohort: DataFrame | pl.DataFrame,
                     tables: TableSet | None = None, config: CostingConfig | None = None,
                     windows: Sequence[int] = DEFAULT_WINDOWS, months: int = 6,
                     assign: Assign = "admission", by: By = "category",
                     *, partitions: int | None = None) -> DataFrame:
    """:func:`price` then :func:`cost_by_window` in one shuffle: activity and cohort cogrouped
    by patient bucket, each bucket priced and windowed whole. Moving the priced columns into
    Spark and back is what costs most, and this never does it.

    Same arguments as the two; ``partitions`` defaults to one per ``ROWS_PER_PARTITION``
    activity rows. Returns the window costs.
    """
    from costing.pricing import price as price_frame
    from costing.windows import cost_by_window as windows_frame

    spec = _spec(windows, months, assign, by)
    _pyspark_version()
    cfg, ts = config or CostingConfig(), _tables(tables)
    activity = _with_source_row(activity)
    n = _partitions(activity, partitions)
    shared = activity.sparkSession.sparkContext.broadcast((ts, cfg))

    def work(bucket: int, records: pl.DataFrame, coh: pl.DataFrame) -> pl.DataFrame:
        t, c = shared.value
        priced = price_frame(records, t, c)
        check_rows(bucket, records.height, priced)
        return in_bucket(bucket, coh["patient_id"], lambda: windows_frame(
            priced, coh, windows=spec.windows, months=months, assign=assign, by=by))

    return _cogrouped(activity, _cohort_frame(activity.sparkSession, cohort), n, _window_schema(by), work)


# --------------------------------------------------------------------------------------
# reading extracts with Spark
# --------------------------------------------------------------------------------------


# The charsets Spark's CSV reader takes, by Python codec name (``codecs.lookup(...).name``).
_CHARSETS = {"utf-8": "UTF-8", "iso8859-1": "ISO-8859-1", "ascii": "US-ASCII", "utf-16": "UTF-16",
             "utf-16-be": "UTF-16BE", "utf-16-le": "UTF-16LE", "utf-32": "UTF-32"}


def _charset(encoding: str) -> str:
    """Spark's name for a CSV encoding given as the polars reader takes it (``utf8``, ``latin1``)."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = encoding
    if name not in _CHARSETS:
        raise ConfigError(f"encoding {encoding!r}: Spark reads CSV as one of "
                          f"{', '.join(sorted(set(_CHARSETS)))} (e.g. utf8, latin1)")
    return _CHARSETS[name]


def _raw(spark: SparkSession, path: str, encoding: str) -> DataFrame:
    """One extract with every column as a string, plus the row number and the source file.

    ``table:NAME`` reads a table of the catalogue; a ``.csv``/``.tsv`` file or folder is read
    as CSV (RFC 4180 quoting: a quote inside a field is doubled); anything else as Parquet,
    whose row number within its file Spark gives exactly.
    """
    from pyspark.sql import functions as F

    from costing.io import _ROW

    row_id = F.monotonically_increasing_id() + 1
    if path.startswith("table:"):
        df = spark.table(path.removeprefix("table:"))
        source, row = F.lit(path), row_id
    elif Path(path).suffix.lower() in (".csv", ".tsv"):
        df = (spark.read.option("header", True).option("encoding", _charset(encoding))
              .option("sep", "\t" if path.lower().endswith(".tsv") else ",")
              .option("quote", '"').option("escape", '"').csv(path))
        first = df.columns[0] if df.columns else ""
        if first.startswith("\ufeff"):  # a byte-order mark read as part of the first name
            df = df.withColumnRenamed(first, first.removeprefix("\ufeff"))
        source, row = F.lit(path), row_id
    elif Path(path).suffix.lower() in (".xlsx", ".xlsm", ".xlsb", ".xls"):
        raise ConfigError(f"{path}: the Spark engine reads CSV, Parquet or a table (table:NAME); "
                          "save the sheet as CSV, or run with the polars engine")
    else:
        df = spark.read.parquet(path)
        source = F.col("_metadata.file_path") if Path(path).is_dir() else F.lit(path)
        row = F.col("_metadata.row_index") + 1
    strings = [F.col(f"`{c}`").cast("string").alias(c) for c in df.columns]
    return df.select(*strings, row.cast("long").alias(_ROW), source.alias(_FILE))


def read_activity(spark: SparkSession, path: str | Path | Sequence[str | Path], setting: str,
                  columns: str | Mapping[str, Any] | Path = "hes", *, encoding: str = "utf8",
                  hrg_version: str | None = None, date_format: str | None = None) -> DataFrame:
    """:func:`costing.read_activity` with Spark: the same canonical columns, values and
    ``invalid_reason`` (the column preset applied by the same code, a part at a time; a
    record id repeating an earlier record's marked over the whole read, as the polars reader
    marks it).

    Args:
        spark: the session.
        path: a CSV or Parquet file or folder, ``table:NAME`` for a table of the catalogue, or
            a list of these (columns missing from some are null).
        setting, columns, hrg_version, date_format: as for :func:`costing.read_activity`.
        encoding: the CSV encoding.

    ``source_row`` is the 1-based row of a Parquet file; for CSV and tables it is unique
    and increasing but not the line number.
    """
    from pyspark.sql import functions as F

    from costing.io import _ROW
    from costing.presets import resolve_preset

    _pyspark_version()
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise InputError("read_activity: no input given")
    preset = resolve_preset(columns, setting, hrg_version=hrg_version, date_format=date_format)
    out: DataFrame | None = None
    for i, p in enumerate(paths):
        raw = _raw(spark, str(p), encoding)
        headers = [c for c in raw.columns if c not in (_ROW, _FILE)]
        # typed here on no rows first, so a missing column is an error before any job runs
        empty = pl.LazyFrame(schema={**dict.fromkeys(headers, pl.String), _ROW: pl.Int64, _FILE: pl.String})
        schema = _canonicalise(empty, headers, preset, str(p)).collect_schema()

        def typed(frame: pl.DataFrame, headers: list[str] = headers, where: str = str(p)) -> pl.DataFrame:
            return _canonicalise(frame.lazy(), headers, preset, where).collect()

        frame = _narrow(raw, schema, typed).withColumn(_READ_ORDER, F.lit(i))
        out = frame if out is None else out.unionByName(frame, allowMissingColumns=True)
    assert out is not None
    return _with_duplicates(out).drop(_READ_ORDER)


def _with_duplicates(df: DataFrame) -> DataFrame:
    """``costing.read_activity``'s mark on a record whose id an earlier record of the read
    (every file, in the order given, each in its row order) already has: ``DUPLICATE_REASON``
    appended to its ``invalid_reason``, so that pricing gives it the duplicate_record status.
    The first record of each repeated id is found by an aggregate over the ids (a shuffle of
    the ids alone) joined back to the records."""
    from pyspark.sql import functions as F

    from costing.activity import DUPLICATE_REASON

    if "record_id" not in df.columns:
        return df
    order = F.struct(F.col(_READ_ORDER), F.col(_SOURCE_FILE), F.col("source_row"))
    firsts = (df.where(F.col("record_id").isNotNull()).groupBy("record_id")
              .agg(F.count(F.lit(1)).alias("_n"), F.min(order).alias(_FIRST))
              .where(F.col("_n") > 1).drop("_n"))
    dup = F.col(_FIRST).isNotNull() & (order != F.col(_FIRST))
    reason = F.when(dup, F.concat_ws("; ", F.col("invalid_reason"), F.lit(DUPLICATE_REASON)))
    return (df.join(firsts, on="record_id", how="left")
            .withColumn("invalid_reason", reason.otherwise(F.col("invalid_reason")))
            .select(*df.columns))


def _canonicalise(frame: pl.LazyFrame, headers: list[str], preset: Any, where: str) -> pl.LazyFrame:
    """The polars reader's typing of rows of one extract, each keeping its source file."""
    from costing.io import _canonical_frame, _plan, _Strings

    plan = _plan(_Strings(frame, headers, where), preset, "")
    plan.extras[_FILE] = _FILE
    return _canonical_frame(plan).with_columns(pl.col(_FILE).alias(_SOURCE_FILE)).drop(_FILE)


def _narrow(df: DataFrame, out: Mapping[str, pl.DataType],
            work: Callable[[pl.DataFrame], pl.DataFrame]) -> DataFrame:
    """Each Arrow batch of ``df`` through a row-wise ``work`` (no shuffle)."""
    struct = spark_schema(out)
    schema, arrow = _sendable_schema(out), _arrow_schema(struct)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield from _send(work(_polars(_table(batch))), schema, arrow).to_batches()

    return df.mapInArrow(run, struct)


def _table(batch: pa.RecordBatch) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_batches([batch])
