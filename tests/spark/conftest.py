"""One local[2] SparkSession for every Spark test (marked ``spark``: ``pytest -m spark``).

The tests skip, saying why, where PySpark or Java is missing; with COSTING_REQUIRE_SPARK=1
(as .ci/run sets) they fail instead, so CI never skips them silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest


def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'costing[spark]'; make test installs it)"
    java = shutil.which("java") or (os.environ.get("JAVA_HOME") and os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    if not java:
        return "no Java on PATH or JAVA_HOME: Spark needs Java 17+ (.ci/run installs it)"
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    return None if out else f"{java} -version printed nothing"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    why = _missing()
    if why:
        if os.environ.get("COSTING_REQUIRE_SPARK") == "1":
            pytest.fail(f"COSTING_REQUIRE_SPARK=1 but {why}")
        pytest.skip(why)
    from costing import spark as cs

    session = cs.session("local[2]", {
        "spark.sql.shuffle.partitions": "4",
        # partitions span many Arrow batches: a spell whose episodes sit in two batches must
        # still be priced as one spell
        "spark.sql.execution.arrow.maxRecordsPerBatch": "1000",
        "spark.ui.enabled": "false",
        "spark.driver.memory": "1g",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
    }, app_name="costing-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def collect(df: Any) -> pl.DataFrame:
    """A Spark DataFrame as a polars frame (through Arrow)."""
    out = pl.from_arrow(df.toArrow())
    assert isinstance(out, pl.DataFrame)
    return out
