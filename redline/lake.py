"""Writing to the lake: the edges of jobs. Transforms stay pure; these do the I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline.catalog import Table, location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def overwrite(df: "DataFrame", lake_root: str, table: Table) -> None:
    """Replace ``table`` with ``df`` (schema enforced by selecting the catalog's columns)."""
    schema = table.schema()
    (df.select(*[f.name for f in schema.fields])
       .write.format("delta").mode("overwrite").option("overwriteSchema", "true")
       .partitionBy(*table.partition_by)
       .save(location(lake_root, table)))


def append(df: "DataFrame", lake_root: str, table: Table, txn: tuple[str, int] | None = None,
           merge_schema: bool = False) -> None:
    """Append ``df``; with ``txn`` (app id, version) Delta skips a replayed write.

    ``merge_schema`` lets a column the catalog added since the table was created (a new
    optional payload field) be added to the table; rows written before have it null.
    """
    schema = table.schema()
    writer = df.select(*[f.name for f in schema.fields]).write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    writer.partitionBy(*table.partition_by).save(location(lake_root, table))
