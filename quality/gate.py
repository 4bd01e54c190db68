"""The data-quality gate: validate the lake's tables with Great Expectations, fail loudly.

Every table of the catalog has a suite (``quality/suites.py``). The gate validates a named
Delta version of each table (the latest, or ``as_of``) and records which; each check is an
``error`` (fails the gate) or a ``warn`` (reported and recorded). Outcomes go to
``ops.quality_results`` (one row per check per table per run: the history that volume and
distribution checks compare against), to a JSON and a Markdown report, and on request to
JUnit XML. A failed check names the table, the column, the expectation, the count of
unexpected rows and a few of their values.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from redline import catalog, lake
from redline.catalog import Table
from redline.quality import suites
from redline.quality.suites import ERROR, WARN, Check

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Unexpected values shown per failed check.
SAMPLES = 5
MISSING = "table has never been written"


@dataclass
class Failure:
    table: str
    expectation: str
    column: str
    detail: str
    severity: str = ERROR


@dataclass
class Outcome:
    """One check's result on one table version."""

    table: str
    version: int | None
    check: Check
    success: bool
    observed: str | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    samples: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def expectation(self) -> str:
        """GX's name of the expectation (snake case)."""
        import re

        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.check.expectation).lower()

    def as_failure(self) -> Failure:
        return Failure(self.table, self.expectation, self.check.column, self.detail,
                       self.check.severity)

    def as_dict(self) -> dict:
        return {"table": self.table, "version": self.version, "check": self.check.id,
                "expectation": self.expectation, "column": self.check.column or None,
                "severity": self.check.severity, "mostly": self.check.kwargs.get("mostly"),
                "success": self.success, "observed_value": self.observed,
                "unexpected_count": self.unexpected_count,
                "unexpected_percent": self.unexpected_percent, "sample_values": self.samples,
                "detail": self.detail}


@dataclass
class GateResult:
    success: bool
    report_json: Path
    report_md: Path
    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)
    """Failed error checks (and tables that could not be validated)."""
    warnings: list[Failure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Tables asked for that have never been written: the gate could not run on them."""
    outcomes: list[Outcome] = field(default_factory=list)
    run_id: str = ""
    versions: dict[str, int | None] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """Optional tables not written yet (replayed data sets, scores): nothing to check."""
    docs_index: Path | None = None
    """GX Data Docs site of the file-backed context (every run so far), when built."""

    @property
    def exit_code(self) -> int:
        """0 passed, 1 failed, 2 could not run (a table missing)."""
        if self.missing:
            return 2
        return 0 if self.success else 1

    def summary(self) -> str:
        state = {0: "PASSED", 1: "FAILED", 2: "COULD NOT RUN"}[self.exit_code]
        passed = sum(o.success for o in self.outcomes)
        head = (f"quality gate {state}: {passed}/{self.evaluated} expectations met on "
                f"{len(self.versions)} table(s), {len(self.failures)} error(s), "
                f"{len(self.warnings)} warning(s)")
        lines = [head]
        lines += [f"  MISSING {t}: {MISSING}; run the job or ingest that writes it"
                  for t in self.missing]
        lines += [f"  FAIL {f.table} {f.expectation} column={f.column or '-'}: {f.detail}"
                  for f in self.failures if f.detail != MISSING]
        lines += [f"  warn {f.table} {f.expectation} column={f.column or '-'}: {f.detail}"
                  for f in self.warnings]
        lines.append(f"report: {self.report_md} (full results: {self.report_json})")
        if self.docs_index is not None:
            lines.append(f"Data Docs: {self.docs_index}")
        return "\n".join(lines)

    def table_rows(self) -> str:
        """A short terminal table: one line per table."""
        by: dict[str, list[Outcome]] = {}
        for o in self.outcomes:
            by.setdefault(o.table, []).append(o)
        lines = [f"{'table':<30} {'version':>7} {'checks':>6} {'errors':>6} {'warns':>5}"]
        for name, version in self.versions.items():
            rows = by.get(name, [])
            errors = sum(not o.success and o.check.severity == ERROR for o in rows)
            warns = sum(not o.success and o.check.severity == WARN for o in rows)
            lines.append(f"{name:<30} {'' if version is None else version:>7} "
                         f"{len(rows):>6} {errors:>6} {warns:>5}")
        lines += [f"{t:<30} {'-':>7} {'':>6} {'MISSING':>6}" for t in self.missing]
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {"run_id": self.run_id, "success": self.success, "exit_code": self.exit_code,
                "tables": self.versions, "missing": self.missing, "skipped": self.skipped,
                "evaluated": self.evaluated,
                "errors": [o.as_dict() for o in self.outcomes
                           if not o.success and o.check.severity == ERROR],
                "warnings": [o.as_dict() for o in self.outcomes
                             if not o.success and o.check.severity == WARN],
                "results": [o.as_dict() for o in self.outcomes]}

    def junit_xml(self) -> str:
        """JUnit XML: a test suite per table, a test case per check; failed errors are
        failures, failed warnings are test cases with a warning in their output."""
        by: dict[str, list[Outcome]] = {}
        for o in self.outcomes:
            by.setdefault(o.table, []).append(o)
        out = ['<?xml version="1.0" encoding="UTF-8"?>',
               f'<testsuites name="redline quality gate" tests="{self.evaluated}" '
               f'failures="{len(self.failures)}">']
        for name in [*self.versions, *self.missing]:
            rows = by.get(name, [])
            fails = sum(not o.success and o.check.severity == ERROR for o in rows)
            if name in self.missing:
                out.append(f'  <testsuite name={quoteattr(name)} tests="1" failures="0" '
                           f'errors="1"><testcase classname={quoteattr(name)} '
                           f'name="table exists"><error message={quoteattr(MISSING)}/>'
                           f'</testcase></testsuite>')
                continue
            out.append(f'  <testsuite name={quoteattr(name)} tests="{len(rows)}" '
                       f'failures="{fails}">')
            for o in rows:
                out.append(f'    <testcase classname={quoteattr(name)} '
                           f'name={quoteattr(f"[{o.check.severity}] {o.check.id}")}>')
                if not o.success and o.check.severity == ERROR:
                    out.append(f'      <failure message={quoteattr(o.detail)}/>')
                elif not o.success:
                    out.append(f'      <system-out>{escape("warning: " + o.detail)}'
                               f'</system-out>')
                out.append('    </testcase>')
            out.append('  </testsuite>')
        out.append('</testsuites>')
        return "\n".join(out) + "\n"


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


def _context(docs_root: Path | None):
    _quiet_gx()
    import great_expectations as gx

    ctx = (gx.get_context(mode="ephemeral") if docs_root is None
           else gx.get_context(mode="file", project_root_dir=str(docs_root)))
    ctx.variables.progress_bars = {"globally": False}
    return ctx


def validate(df: DataFrame, table: str, expectations: Sequence[Check | tuple[str, dict]],
             result_format: str = "SUMMARY", context=None) -> dict:
    """Run ``expectations`` on ``df`` in one GX validation; return GX's result as a
    JSON-able dict. Each expectation's ``meta`` carries its check id. With a file-backed
    ``context`` (``_context(docs_root)``) the suite and the result are kept in it, for
    Data Docs."""
    import great_expectations as gx

    ctx = context or _context(None)
    source = ctx.data_sources.add_or_update_spark(name="lake")
    try:
        asset = source.get_asset(table)
    except LookupError:
        asset = source.add_dataframe_asset(name=table)
    try:
        batch_def = asset.get_batch_definition("whole")
    except KeyError:
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=table)
    for entry in expectations:
        check = entry if isinstance(entry, Check) else Check(entry[0], entry[1])
        suite.add_expectation(getattr(gx.expectations, check.expectation)(
            **check.kwargs, meta={"check": check.id}))
    suite = ctx.suites.add_or_update(suite)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"gate:{table}", data=batch_def, suite=suite))
    fmt = {"result_format": result_format, "partial_unexpected_count": SAMPLES}
    if context is None:
        return vd.run(batch_parameters={"dataframe": df}, result_format=fmt).to_json_dict()
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=f"gate:{table}", validation_definitions=[vd], actions=[], result_format=fmt))
    run = checkpoint.run(batch_parameters={"dataframe": df})
    return next(iter(run.run_results.values())).to_json_dict()


def _text(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _outcome(table: str, version: int | None, check: Check, r: dict) -> Outcome:
    res = r.get("result", {}) or {}
    exc = r.get("exception_info", {}) or {}
    samples = [str(v) for v in (res.get("partial_unexpected_list") or [])[:SAMPLES]]
    count = res.get("unexpected_count")
    percent = res.get("unexpected_percent")
    observed = _text(res.get("observed_value"))
    where = f"{table}" + (f" column {check.column}" if check.column else "")
    label = f" ({check.label})" if check.label else ""
    if exc.get("raised_exception"):
        detail = f"{where}: {check.expectation}{label} could not run: " + str(
            exc.get("exception_message"))[:300]
    elif count is not None and not r["success"]:
        mostly = check.kwargs.get("mostly")
        detail = (f"{where}: {check.expectation}{label}: {count:,} unexpected row(s) "
                  f"({percent or 0:.2f}%"
                  + (f", over the {1 - float(mostly):.0%} allowed by mostly={mostly}"
                     if mostly is not None else "")
                  + f"), e.g. {samples}")
    elif not r["success"]:
        bounds = {k: check.kwargs[k] for k in ("min_value", "max_value")
                  if check.kwargs.get(k) is not None}
        detail = f"{where}: {check.expectation}{label}: observed {observed}, expected {bounds}"
    else:
        detail = ""
    return Outcome(table, version, check, bool(r["success"]), observed, count,
                   None if percent is None else float(percent), samples, detail)


def _previous(spark: SparkSession, lake_root: str) -> dict[str, dict[str, object]]:
    """Per table, the values observed at its latest passing volume and distribution
    checks (``row_count``, ``mean:<column>``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not catalog.exists(spark, lake_root, catalog.QUALITY_RESULTS):
        return {}
    rows = (catalog.read(spark, lake_root, catalog.QUALITY_RESULTS)
            .where(F.col("success") & F.col("observed_value").isNotNull()
                   & (F.col("check").endswith(" volume")
                      | F.col("check").endswith(" distribution")))
            .withColumn("_n", F.row_number().over(
                Window.partitionBy("table", "check").orderBy(F.col("validated_at").desc())))
            .where("_n = 1").select("table", "check", "column", "observed_value").collect())
    out: dict[str, dict[str, object]] = {}
    for r in rows:
        key = "row_count" if r.check.endswith(" volume") else f"mean:{r.column}"
        try:
            out.setdefault(r.table, {})[key] = float(r.observed_value)
        except ValueError:
            continue
    return out


def _with_virtual_columns(spark: SparkSession, lake_root: str, table: Table,
                          df: DataFrame, checks: list[Check],
                          references: Collection[str] | None = None
                          ) -> tuple[DataFrame, list[Check], list[tuple[Check, str]]]:
    """``df`` with the columns the checks need (age, orphans), the checks that can run,
    and those that cannot with why (a referenced table not written yet, or, when
    ``references`` names the tables a reference may be checked against, one outside it)."""
    from pyspark.sql import functions as F

    cannot: list[tuple[Check, str]] = []
    runnable: list[Check] = []
    needed = {str(c.kwargs.get("column")) for c in checks}
    if suites.AGE_HOURS in needed and table.arrival:
        df = df.withColumn(suites.AGE_HOURS, (F.unix_timestamp(F.current_timestamp())
                                              - F.unix_timestamp(F.col(table.arrival))) / 3600.0)
    present: set[str] = set()
    outside: set[str] = set()
    for columns, other, other_columns in suites.references(table):
        name = suites.orphan_column(other.qualified_name)
        if name not in needed:
            continue
        if references is not None and other.qualified_name not in references:
            outside.add(name)
            continue
        if not catalog.exists(spark, lake_root, other):
            continue
        ref = (catalog.read(spark, lake_root, other)
               .select(*[F.col(c).alias(f"_ref{i}") for i, c in enumerate(other_columns)])
               .distinct().withColumn("_hit", F.lit(True)))
        cond = None
        for i, c in enumerate(columns):
            term = df[c].eqNullSafe(ref[f"_ref{i}"])
            cond = term if cond is None else cond & term
        df = (df.join(F.broadcast(ref) if other.layer.value == "gold" else ref, cond, "left")
              .withColumn(name, F.when(F.col("_hit").isNull(),
                                       F.concat_ws("/", *[F.col(c).cast("string")
                                                          for c in columns])))
              .drop("_hit", *[f"_ref{i}" for i in range(len(columns))]))
        present.add(name)
    for c in checks:
        column = str(c.kwargs.get("column"))
        if column in outside:
            cannot.append((c, "the referenced table is neither an input of the job nor "
                              "refreshed by this run (`redline gate` checks it)"))
        elif column.startswith("_orphan_") and column not in present:
            cannot.append((c, "the referenced table has never been written"))
        else:
            runnable.append(c)
    return df, runnable, cannot


def validate_table(spark: SparkSession, lake_root: str, table: Table,
                   version: int | None = None, previous: Mapping[str, object] | None = None,
                   freshness_hours: float | None = None,
                   severities: Sequence[str] = (ERROR, WARN), context=None,
                   references: Collection[str] | None = None
                   ) -> tuple[int, list[Outcome]]:
    """Validate ``table`` at Delta ``version`` (default: its latest); return the version
    validated and one outcome per check. ``context``: a file-backed GX context that keeps
    the result for Data Docs. ``references``: the only tables references are checked
    against (default: all); the others are reported as not checked."""
    version = lake.table_version(spark, lake_root, table) if version is None else version
    df = (spark.read.format("delta").option("versionAsOf", version)
          .load(catalog.location(lake_root, table)))
    checks = [c for c in suites.checks_for(table, previous, freshness_hours)
              if c.severity in severities]
    if table.qualified_name in suites.MAY_BE_EMPTY and df.limit(1).count() == 0:
        # Nothing to look at: only the row count and the key checks mean anything.
        checks = [c for c in checks if c.label in ("", "volume")]
    df, runnable, cannot = _with_virtual_columns(spark, lake_root, table, df, checks,
                                                 references)
    # A reference that cannot be checked yet is a warning, not an error: the table itself
    # may be fine, and the gate reports that it was not checked.
    outcomes = [Outcome(table.qualified_name, version, replace(c, severity=WARN), False,
                        detail=f"{table.qualified_name}: {c.label}: not checked, {why}")
                for c, why in cannot]
    df = df.cache()
    try:
        result = validate(df, table.qualified_name, runnable, context=context)
    finally:
        df.unpersist()
    by_id = {c.id: c for c in runnable}
    for r in result["results"]:
        check = by_id[r["expectation_config"]["meta"]["check"]]
        outcomes.append(_outcome(table.qualified_name, version, check, r))
    return version, outcomes


def record(spark: SparkSession, lake_root: str, run_id: str, outcomes: Sequence[Outcome]
           ) -> None:
    """Append ``outcomes`` to ops.quality_results."""
    if not outcomes:
        return
    from redline.schemas.tables import QUALITY_RESULTS

    now = datetime.now(UTC)
    rows = [{**{k: v for k, v in o.as_dict().items() if k != "version"},
             "run_id": run_id, "validated_at": now, "delta_version": o.version,
             "mostly": None if o.check.kwargs.get("mostly") is None
             else float(o.check.kwargs["mostly"])} for o in outcomes]
    lake.append(spark.createDataFrame(rows, QUALITY_RESULTS), lake_root,
                catalog.QUALITY_RESULTS)


def run_gate(spark: SparkSession, lake_root: str, report_dir: Path,
             tables: Sequence[str] | None = None,
             progress: Callable[[str], None] = print, as_of: int | None = None,
             freshness: Mapping[str, float] | None = None, history: bool = True,
             severities: Sequence[str] = (ERROR, WARN),
             docs_root: Path | None = None,
             references: Collection[str] | None = None) -> GateResult:
    """Validate ``tables`` (default: every table of the catalog; optional ones not written
    yet are skipped, other missing ones make the gate unable to run) at their latest
    Delta version, or ``as_of`` (one table). With ``history`` the outcomes are appended to
    ops.quality_results and volume and distribution compare with earlier runs. With
    ``docs_root`` the results are also kept in a file-backed GX context there and its Data
    Docs site is rebuilt (every run so far: the history). ``references``: the only tables
    references are checked against (a job's audit: its inputs and what its run refreshed);
    default all."""
    from redline.errors import RedlineError

    named = bool(tables)
    wanted = suites.tables(tables)
    if as_of is not None and len(wanted) != 1:
        raise RedlineError("QUALITY_AS_OF", "--as-of names a Delta version of one table: "
                                            "give exactly one table with --tables")
    freshness = dict(freshness or {})
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    run_id = str(uuid.uuid4())
    previous = _previous(spark, lake_root) if history else {}
    context = None if docs_root is None else _context(docs_root)
    # The run id in the name too: the pipeline's two lanes can audit in the same second.
    report_name = f"gate-{stamp}-{run_id[:8]}"
    gate = GateResult(True, report_dir / f"{report_name}.json", report_dir / f"{report_name}.md",
                      run_id=run_id)
    for i, table in enumerate(wanted, 1):
        name = table.qualified_name
        if not catalog.exists(spark, lake_root, table):
            if table.optional and not named:
                gate.skipped.append(name)
                progress(f"quality: [{i}/{len(wanted)}] {name}: not written yet (optional)")
                continue
            gate.missing.append(name)
            gate.failures.append(Failure(name, "table exists", "", MISSING))
            gate.evaluated += 1
            progress(f"quality: [{i}/{len(wanted)}] {name}: MISSING ({MISSING})")
            continue
        version, outcomes = validate_table(spark, lake_root, table, as_of,
                                           previous.get(name), freshness.get(name),
                                           severities, context, references)
        gate.versions[name] = version
        gate.outcomes += outcomes
        gate.evaluated += len(outcomes)
        bad = [o for o in outcomes if not o.success]
        gate.failures += [o.as_failure() for o in bad if o.check.severity == ERROR]
        gate.warnings += [o.as_failure() for o in bad if o.check.severity == WARN]
        progress(f"quality: [{i}/{len(wanted)}] {name} v{version}: {len(outcomes)} checks, "
                 f"{sum(o.check.severity == ERROR for o in bad)} error(s), "
                 f"{sum(o.check.severity == WARN for o in bad)} warning(s)")
    gate.success = not gate.failures
    if context is not None and gate.versions:
        context.build_data_docs()
        sites = context.get_docs_sites_urls()
        if sites:
            gate.docs_index = Path(sites[0]["site_url"].removeprefix("file://"))
    if history:
        record(spark, lake_root, run_id, gate.outcomes)
    gate.report_json.write_text(json.dumps(gate.as_json(), indent=1, default=str))
    md = [f"# Quality gate {stamp}: {'PASSED' if gate.success else 'FAILED'}", "",
          f"run {run_id}; tables and Delta versions: "
          + ", ".join(f"{t} v{v}" for t, v in gate.versions.items()), "",
          "| severity | table | expectation | column | detail |", "|---|---|---|---|---|"]
    md += [f"| {f.severity} | {f.table} | {f.expectation} | {f.column} | {f.detail} |"
           for f in [*gate.failures, *gate.warnings]]
    gate.report_md.write_text("\n".join(md) + "\n")
    return gate


def auditor(report_dir: Path, freshness: Mapping[str, float] | None = None,
            progress: Callable[[str], None] = lambda _: None
            ) -> Callable[..., str | None]:
    """The write-audit-publish check of gold jobs: the error-severity checks of the tables
    a job just wrote, recorded in ops.quality_results like any gate run. Returns None when
    they pass, else the failures, one per line. References are checked only against
    ``references`` when given (the job's inputs and outputs and the tables its run
    refreshed): a table another job writes, not refreshed by this run, may lag behind for
    reasons that are not this job's (`jobs run gold_spc` after a new station)."""

    def audit(spark: SparkSession, lake_root: str, tables: Sequence[Table],
              references: Collection[str] | None = None) -> str | None:
        gate = run_gate(spark, lake_root, report_dir, [t.qualified_name for t in tables],
                        progress=progress, freshness=freshness, severities=(ERROR,),
                        references=references)
        if gate.success:
            return None
        return "\n".join(f"{f.table} {f.expectation} column={f.column or '-'}: {f.detail}"
                         for f in gate.failures) + f"\nreport: {gate.report_md}"

    return audit
