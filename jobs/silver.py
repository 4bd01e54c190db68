"""Bronze -> silver: parse against the versioned schema, type, deduplicate, quarantine.

``parse`` is pure: it splits bronze rows into typed good rows and quarantine rows with a
reason code. Nothing is dropped silently: a record is either in silver, in quarantine, or
a duplicate of an ``event_id`` already in silver (counts reconcile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.schemas.payloads import PAYLOADS, Payload, latest

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# Reason codes are part of the contract with `redline quarantine list` and dashboards.
MALFORMED_JSON = "MALFORMED_JSON"
UNKNOWN_SCHEMA_VERSION = "UNKNOWN_SCHEMA_VERSION"
MISSING_REQUIRED = "MISSING_REQUIRED"
TYPE_MISMATCH = "TYPE_MISMATCH"


def parse(bronze: "DataFrame", payload: Payload, source_table: str
          ) -> tuple["DataFrame", "DataFrame"]:
    """Return (good, quarantined) for ``bronze`` rows of ``payload``'s topic.

    A field present in the JSON whose value does not fit its declared type is a
    TYPE_MISMATCH (Spark would otherwise turn it into null); a required field that is
    absent or null is MISSING_REQUIRED.
    """
    return split(classify(bronze, payload), payload, source_table)


def classify(bronze: "DataFrame", payload: Payload) -> "DataFrame":
    """``bronze`` with the parsed payload and a reason code (null = good) per row.

    Persist the result before ``split`` when it is used more than once: Spark pushes the
    ``_code`` filter below this projection and then evaluates ``from_json`` once per check
    in it (dozens of JSON parses per row); a persisted frame parses each row once.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType, StringType

    struct = payload.struct
    text = F.col("value").cast("string")
    known_versions = sorted(PAYLOADS[payload.name])
    df = bronze.select(
        "*", text.alias("_raw"),
        F.from_json(text, struct).alias("_p"),
        F.from_json(text, MapType(StringType(), StringType())).alias("_m"))

    checks: list[tuple[str, "Column", "Column"]] = [
        (MALFORMED_JSON, F.col("_m").isNull(), F.lit("value is not a JSON object")),
        (UNKNOWN_SCHEMA_VERSION,
         ~F.col("_p.schema_version").isin(known_versions),
         F.concat(F.lit("schema_version "), F.coalesce(F.col("_m")["schema_version"],
                                                        F.lit("null")),
                  F.lit(f" is not one of {known_versions}"))),
    ]
    for f in struct.fields:
        raw = F.col("_m")[f.name]
        parsed = F.col(f"_p.{f.name}")
        checks.append((TYPE_MISMATCH, raw.isNotNull() & parsed.isNull(),
                       F.concat(F.lit(f"{f.name}: value "), F.substring(raw, 1, 80),
                                F.lit(f" is not a valid {f.dataType.simpleString()}"))))
        if not f.nullable:
            checks.append((MISSING_REQUIRED, raw.isNull(),
                           F.lit(f"required field {f.name} is missing or null")))

    code = F.lit(None).cast("string")
    reason = F.lit(None).cast("string")
    for c, cond, msg in reversed(checks):  # first failing check wins
        code = F.when(cond, F.lit(c)).otherwise(code)
        reason = F.when(cond, msg).otherwise(reason)
    return df.withColumn("_code", code).withColumn("_reason", reason)


def split(df: "DataFrame", payload: Payload, source_table: str
          ) -> tuple["DataFrame", "DataFrame"]:
    """(good, quarantined) rows of a ``classify`` result."""
    from pyspark.sql import functions as F

    struct = payload.struct
    good = df.where(F.col("_code").isNull()).select(
        *[F.col(f"_p.{f.name}").alias(f.name) for f in struct.fields],
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"))
    bad = df.where(F.col("_code").isNotNull()).select(
        F.lit(source_table).alias("source_table"),
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), F.col("_raw").alias("raw_value"),
        F.col("_code").alias("reason_code"), F.col("_reason").alias("reason"),
        F.current_timestamp().alias("quarantined_at"))
    return good, bad


def dedupe(good: "DataFrame") -> "DataFrame":
    """Keep the first delivery (lowest Kafka coordinates) of every ``event_id``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("event_id").orderBy("kafka_partition", "kafka_offset")
    return good.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")


def run(spark: "SparkSession", lake_root: str, topic: str) -> dict[str, int]:
    """Rebuild silver.<topic> and its quarantine rows from bronze (idempotent)."""
    from pyspark.sql import functions as F

    source = catalog.bronze(topic)
    target = catalog.silver(topic)
    quarantine = catalog.get("silver.quarantine")
    bronze = catalog.read(spark, lake_root, source).cache()
    good, bad = parse(bronze, latest(topic), source.qualified_name)
    good = dedupe(good)
    lake.overwrite(good, lake_root, target)
    (bad.select(*[f.name for f in quarantine.schema().fields])
        .write.format("delta").mode("overwrite")
        .option("replaceWhere", f"source_table = '{source.qualified_name}'")
        .partitionBy(*quarantine.partition_by)
        .save(catalog.location(lake_root, quarantine)))
    counts = {
        "bronze": bronze.count(),
        "silver": catalog.read(spark, lake_root, target).count(),
        "quarantine": catalog.read(spark, lake_root, quarantine)
                             .where(F.col("source_table") == source.qualified_name).count(),
    }
    bronze.unpersist()
    counts["duplicates"] = counts["bronze"] - counts["silver"] - counts["quarantine"]
    return counts
