"""Print every gold table of each lake root given, as JSON: {root: {table: rows}}, and
under "_bronze" each bronze table's row count and distinct Kafka coordinates.

Run as its own process (``python gold_rows.py ROOT ...``) with the environment of the
lake to read: a Spark driver gets the S3A jars and keys of an ``s3a://`` lake when its JVM
starts, so the test's own session cannot read one. Rows are sorted and their columns
taken by name; floats are kept to 10 significant digits (sums in another order differ in
the last bits), dates and timestamps become ISO strings.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal

from redline import catalog
from redline.config import load
from redline.spark import build_session


def normal(value):
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, Decimal):
        return float(f"{float(value):.10g}")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normal(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "asDict"):
        return normal(value.asDict())
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


def gold_rows(spark, root: str) -> dict[str, list | None]:
    out: dict[str, list | None] = {}
    for table in catalog.TABLES.values():
        if table.layer is not catalog.Layer.GOLD:
            continue
        if not catalog.exists(spark, root, table):
            out[table.qualified_name] = None
            continue
        df = catalog.read(spark, root, table)
        columns = sorted(df.columns)
        rows = [normal(list(r)) for r in df.select(columns).collect()]
        out[table.qualified_name] = sorted(rows, key=lambda r: json.dumps(r, default=str))
    return out


def bronze_counts(spark, root: str) -> dict[str, list[int]]:
    """[rows, distinct (topic, partition, offset)] of every bronze table that exists."""
    out = {}
    for table in catalog.TABLES.values():
        if table.layer is catalog.Layer.BRONZE and catalog.exists(spark, root, table):
            df = catalog.read(spark, root, table)
            out[table.qualified_name] = [
                df.count(), df.select("topic", "partition", "offset").distinct().count()]
    return out


def main(roots: list[str]) -> None:
    spark = build_session(load(), app_name="gold-rows")
    lakes = {root: gold_rows(spark, root) for root in roots}
    lakes["_bronze"] = {root: bronze_counts(spark, root) for root in roots}
    print(json.dumps(lakes, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
