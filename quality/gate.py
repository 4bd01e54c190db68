"""The data-quality gate: validate gated tables with Great Expectations, fail loudly.

Writes a JSON report (the full GX results) and a Markdown summary that names the table,
the column and sample unexpected values of every failed expectation.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from redline import catalog
from redline.quality.suites import SUITES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass
class Failure:
    table: str
    expectation: str
    column: str
    detail: str


@dataclass
class GateResult:
    success: bool
    report_json: Path
    report_md: Path
    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        head = (f"quality gate {'PASSED' if self.success else 'FAILED'}: "
                f"{self.evaluated - len(self.failures)}/{self.evaluated} expectations met")
        lines = [head] + [f"  FAIL {f.table} {f.expectation} column={f.column or '-'}: {f.detail}"
                          for f in self.failures]
        lines.append(f"report: {self.report_md} (full results: {self.report_json})")
        return "\n".join(lines)


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


def validate(df: DataFrame, table: str, expectations: Sequence[tuple[str, dict]]) -> dict:
    """Run ``expectations`` on ``df``; return GX's result as a JSON-able dict."""
    _quiet_gx()
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    asset = ctx.data_sources.add_spark(name="lake").add_dataframe_asset(name=table)
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=table)
    for cls_name, kwargs in expectations:
        suite.add_expectation(getattr(gx.expectations, cls_name)(**kwargs))
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"gate:{table}", data=batch_def, suite=suite))
    return vd.run(batch_parameters={"dataframe": df}).to_json_dict()


def failures_of(table: str, result: dict) -> list[Failure]:
    out = []
    for r in result["results"]:
        if r["success"]:
            continue
        cfg = r["expectation_config"]
        kwargs = cfg.get("kwargs", {})
        res = r.get("result", {}) or {}
        if r.get("exception_info", {}).get("raised_exception"):
            detail = "error: " + str(r["exception_info"].get("exception_message"))[:200]
        elif "observed_value" in res:
            detail = f"observed {res['observed_value']}"
        else:
            detail = (f"{res.get('unexpected_count', '?')} unexpected rows "
                      f"({res.get('unexpected_percent', 0) or 0:.2f}%), e.g. "
                      f"{res.get('partial_unexpected_list', [])[:5]}")
        column = kwargs.get("column") or ",".join(
            str(kwargs.get(k)) for k in ("column_A", "column_B", "column_list") if k in kwargs)
        out.append(Failure(table, cfg["type"], column, detail))
    return out


def run_gate(spark: SparkSession, lake_root: str, report_dir: Path,
             tables: Sequence[str] | None = None,
             progress: Callable[[str], None] = print) -> GateResult:
    """Validate ``tables`` (default: every suite); a missing table is a failure."""
    tables = list(tables or SUITES)
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    results: dict[str, dict] = {}
    failures: list[Failure] = []
    evaluated = 0
    for name in tables:
        table = catalog.get(name)
        progress(f"quality: validating {name} ({len(SUITES[name])} expectations)")
        if not catalog.exists(spark, lake_root, table):
            failures.append(Failure(name, "table exists", "", "table has never been written"))
            evaluated += 1
            continue
        df = catalog.read(spark, lake_root, table).cache()
        result = validate(df, name, SUITES[name])
        df.unpersist()
        results[name] = result
        evaluated += len(result["results"])
        failures.extend(failures_of(name, result))
    report_json = report_dir / f"gate-{stamp}.json"
    report_md = report_dir / f"gate-{stamp}.md"
    gate = GateResult(not failures, report_json, report_md, evaluated, failures)
    report_json.write_text(json.dumps(
        {"success": gate.success, "tables": tables, "results": results}, indent=1, default=str))
    md = [f"# Quality gate {stamp}: {'PASSED' if gate.success else 'FAILED'}", "",
          "| table | expectation | column | detail |", "|---|---|---|---|"]
    md += [f"| {f.table} | {f.expectation} | {f.column} | {f.detail} |" for f in failures]
    report_md.write_text("\n".join(md) + "\n")
    return gate
