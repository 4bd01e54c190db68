"""`redline demo`: every component, end to end, on the local default."""

from __future__ import annotations

import time

from redline import catalog
from redline.config import Config
from redline.credentials import all_credentials


def _number(value) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def _since(began: float) -> str:
    elapsed = time.monotonic() - began
    return f"{elapsed // 60:.0f}m{elapsed % 60:02.0f}s"


def _step(n: int, total: int, text: str, began: float) -> None:
    """A step's header, with the time since the demo began (where a slow run spends it)."""
    print(f"\n== [{n}/{total}] {text} (at {_since(began)})", flush=True)


def run_demo(cfg: Config, vehicles: int = 200, days: int = 90, seed: int = 7,
             units_per_line_day: int | None = None) -> int:
    """Everything end to end; ``units_per_line_day`` None: the simulator's factory
    (``FACTORY_UNITS_PER_LINE_DAY``)."""
    from redline.dashboards.deploy import deploy
    from redline.dashboards.screenshot import capture_many
    from redline.ml import run
    from redline.pipeline import run_jobs
    from redline.quality.gate import auditor, run_gate
    from redline.quality.suites import freshness_limits
    from redline.schemas.payloads import SIMULATED_TOPICS
    from redline.services import managed, start_all
    from redline.services.pipeline import PipelineService
    from redline.services.thrift import ThriftServer
    from redline.spark import build_session
    from redline.streaming import ingest
    from redline.streaming.producer import simulate

    began = time.monotonic()
    total = 10
    _step(1, total, "starting services", began)
    pipeline = PipelineService(cfg)
    if pipeline.running():
        # A demo run again: its batch ingest needs the checkpoints the pipeline holds. The
        # pipeline starts again at step 10, from where this run leaves them.
        print("  the continuous pipeline of an earlier demo is running: stopping it until "
              "step 10")
        pipeline.stop()
    start_all(managed(cfg))
    _step(2, total, "simulating the fleet and plants into Kafka", began)
    produced = simulate(cfg, vehicles, days, seed, rate=0.0,
                        units_per_line_day=units_per_line_day)
    _step(3, total, "starting Spark", began)
    spark = build_session(cfg, app_name="redline-demo")
    _step(4, total, "ingesting Kafka into bronze and silver (available-now)", began)
    ingested = ingest.run(spark, cfg, cfg.lake_root, list(SIMULATED_TOPICS), available_now=True)
    print("; ".join(f"{t}: " + ", ".join(f"{k}={n:,}" for k, n in r.items())
                    for t, r in ingested.items()))
    freshness = freshness_limits(cfg.quality.freshness_hours)
    reports = cfg.home / "reports" / "quality"
    _step(5, total, "gold jobs (each output audited before it is published)", began)
    run_jobs(spark, cfg.lake_root, ["gold"], ingest=cfg.ingest, analysis=cfg.analysis,
             audit=auditor(reports, freshness) if cfg.quality.audit_gold else None)
    _step(6, total, "quality gate over every table", began)
    gate = run_gate(spark, cfg.lake_root, reports, freshness=freshness,
                    docs_root=cfg.home / "quality")
    print(gate.table_rows())
    print(gate.summary())
    _step(7, total, "training the failure model and scoring the fleet", began)
    model = run.train(spark, cfg, "vehicle")
    promotion = run.promote(spark, cfg, "vehicle")
    print(("promoted: " if promotion.promoted else "not promoted: ") + promotion.reason)
    scored = run.score(spark, cfg, ["vehicle"])["vehicle"]
    _step(8, total, "registering tables in the Thrift Server and deploying dashboards", began)
    tables = [t for t in catalog.TABLES.values() if catalog.exists(spark, cfg.lake_root, t)]
    ThriftServer(cfg).register_tables(cfg.lake_root, tables)
    deployed = deploy(cfg)
    shots = cfg.home / "reports" / "dashboards"
    pages = {url: shots / f"{url.rstrip('/').rsplit('/', 1)[-1]}.png"
             for url in deployed.urls.values()}
    print(f"rendering the {len(pages)} dashboards to {shots}/ (at {_since(began)}) ...",
          flush=True)
    capture_many(cfg, pages)
    _step(9, total, "summary", began)
    counts = {t.qualified_name: catalog.read(spark, cfg.lake_root, t).count() for t in tables}
    print(f"\nredline demo finished in {time.monotonic() - began:.0f}s")
    print(f"  events produced to Kafka: {produced.total:,}")
    print("  rows per table:")
    for name, n in counts.items():
        print(f"    {name:<32} {n:>10,}")
    print(f"  quality gate: {'PASSED' if gate.success else 'FAILED'} "
          f"({gate.evaluated - len(gate.failures)}/{gate.evaluated} on "
          f"{len(gate.versions)} tables, {len(gate.warnings)} warnings); "
          f"report {gate.report_md}")
    if gate.docs_index is not None:
        print(f"    Data Docs: {gate.docs_index}")
    print(f"  model {model.model_name} v{model.version} "
          f"({'champion' if promotion.promoted else 'challenger'}): "
          + ", ".join(f"{k}={_number(v)}" for k, v in model.metrics.items()))
    print(f"  scored vehicle rows: {scored} (review queue: `redline ml review-queue`)")
    print("  Superset dashboards:")
    for title, url in deployed.urls.items():
        print(f"    {title:<24} {url}")
    print(f"    screenshots: {shots}/")
    print(f"  MLflow: {cfg.mlflow.uri}")
    print(f"  Spark Thrift Server (HiveServer2): {cfg.thrift.host}:{cfg.thrift.port}")
    print(f"  Kafka: {cfg.kafka.servers}")
    print(f"  lake: {cfg.lake_root}")
    print("  credentials (each password is in its file, mode 0600; `redline credentials`):")
    for c in all_credentials(cfg):
        print(f"    {c.service:<13} {c.user:<10} {c.path(cfg)}")
    _step(10, total, "starting the continuous pipeline", began)
    # From here on new events reach silver, gold, the dashboards' tables and the alert
    # webhook by themselves (docs/continuous.md); it resumes from the checkpoints and
    # watermarks the steps above left, so nothing is read twice.
    pipeline.start()
    print(f"  pipeline: running (log {pipeline.log_file}); `redline status` shows its "
          f"stages, `redline down pipeline` stops it")
    print("  stop everything with `redline down`")
    return 0 if gate.success else 1
