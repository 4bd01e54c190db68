"""From simulated events in Kafka to the deployed dashboard, through every real component.

Runs `redline demo` (the same code path a user runs) against the real broker, Spark with
Delta, MLflow, the Thrift Server and Superset, then checks what a user would check.
"""

import json
from pathlib import Path

import pytest

from redline.cli import main
from redline.streaming.simulator import FACTORY_UNITS_PER_LINE_DAY, SimulationSpec, Simulator

pytestmark = pytest.mark.e2e

VEHICLES, DAYS, SEED = 120, 50, 7
#: What the demo simulates: its fleet among the factory's units.
SPEC = SimulationSpec(vehicles=VEHICLES, days=DAYS, seed=SEED,
                      units_per_line_day=FACTORY_UNITS_PER_LINE_DAY)


@pytest.fixture(scope="module")
def webhook():
    """A chat webhook the demo's continuous pipeline posts to: its URL is in the
    environment before the demo starts the pipeline (no restart to give it one)."""
    from webhook_receiver import Receiver

    with Receiver() as receiver, pytest.MonkeyPatch.context() as env:
        env.setenv("REDLINE_ALERTS_WEBHOOK_URL_ENV", "REDLINE_E2E_WEBHOOK")
        env.setenv("REDLINE_E2E_WEBHOOK", receiver.url)
        yield receiver


@pytest.fixture(scope="module")
def demo(cfg, spark, kafka_broker, mlflow_server, thrift_server, superset_server, webhook):
    from redline.demo import run_demo
    from redline.services.pipeline import PipelineService

    try:
        yield run_demo(cfg, vehicles=VEHICLES, days=DAYS, seed=SEED)
    finally:
        # The demo leaves the continuous pipeline running; the modules after this one do
        # not need it on their machine's two cores.
        PipelineService(cfg).stop(progress=lambda _: None)


def _sql(capsys, query):
    capsys.readouterr()
    assert main(["sql", query, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_demo_succeeds(demo):
    assert demo == 0


def test_status_lists_every_service_healthy_with_version(demo, capsys):
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    services = {s["name"]: s for s in status["services"]}
    assert set(services) == {"kafka", "mlflow", "spark-thrift", "superset", "pipeline"}
    pipeline = services.pop("pipeline")  # the continuous pipeline the demo left running
    assert pipeline["healthy"] and set(pipeline["stages"]) == {"ingest", "spc", "gold",
                                                                     "alerts"}
    for name, s in services.items():
        assert s["healthy"], name
        assert s["address"].startswith("127.0.0.1:"), name
    assert services["kafka"]["version"] == "4.3.1"
    assert services["spark-thrift"]["version"] == "spark 4.2.0"
    assert services["mlflow"]["version"].startswith("mlflow 3.17")
    assert services["superset"]["version"] == "superset 6.1.0"


def test_counts_reconcile_from_kafka_to_silver(demo, capsys):
    expected = {}
    for e in Simulator(SPEC).events():
        expected[e.topic] = expected.get(e.topic, 0) + 1
    for topic, n in expected.items():
        bronze = _sql(capsys, f"SELECT count(*) AS n FROM bronze.{topic}")[0]["n"]
        silver = _sql(capsys, f"SELECT count(*) AS n FROM silver.{topic}")[0]["n"]
        assert bronze == n, topic
        assert silver == n, topic  # simulator events are all valid and unique


def test_sql_reads_every_layer_and_the_scores(demo, capsys):
    bronze = _sql(capsys, "SELECT topic, offset FROM bronze.station_results LIMIT 3")
    assert len(bronze) == 3 and bronze[0]["topic"] == "redline.station_results"
    silver = _sql(capsys, "SELECT DISTINCT station FROM silver.station_results ORDER BY station")
    assert [r["station"] for r in silver] == ["S010", "S020", "S030", "S040"]
    gold = _sql(capsys, "SELECT min(fpy) AS lo, max(fpy) AS hi, sum(units) AS units "
                        "FROM gold.first_pass_yield")[0]
    assert 0.0 <= gold["lo"] <= gold["hi"] <= 1.0
    # Three lines build 100 units a day over the first 25 of the 50 days, and every unit
    # visits four stations once first: 3 * 100 * 25 * 4.
    assert gold["units"] == 30_000
    scores = _sql(capsys, "SELECT count(*) AS n, min(failure_probability) AS lo, "
                          "max(failure_probability) AS hi FROM gold.vehicle_risk_scores")[0]
    assert scores["n"] > 0 and 0.0 <= scores["lo"] <= scores["hi"] <= 1.0


def test_capability_has_no_index_from_too_few_points_and_an_interval_for_each(demo, capsys):
    (found,) = _sql(capsys, """
        SELECT count_if(status = 'ok') AS ok, min(min_n) AS lo, max(min_n) AS hi,
               count_if(cpk IS NOT NULL AND n < 30) AS index_below_minimum,
               count_if(cpk IS NOT NULL AND NOT (cpk_ci_low < cpk AND cpk < cpk_ci_high))
                   AS cpk_outside_its_interval,
               count_if(ppk IS NOT NULL AND NOT (ppk_ci_low < ppk AND ppk < ppk_ci_high))
                   AS ppk_outside_its_interval
        FROM gold.capability""")
    # The demo's days have about 100 first-pass readings per series: indices there.
    assert found["ok"] > 0 and found["lo"] == found["hi"] == 30, found
    assert found["index_below_minimum"] == 0, found
    assert found["cpk_outside_its_interval"] == found["ppk_outside_its_interval"] == 0, found


def test_first_look_in_a_browser_a_long_pareto_and_charts_by_time(demo, cfg, capsys,
                                                                    tmp_path):
    """What a quality engineer sees first, read from what a real chromium's charts were
    given: the Pareto by defect code has the factory's long tail, the I chart is drawn
    against dates, one point per reading."""
    from datetime import UTC, datetime

    from chart_requests import wait_for_query

    from redline.dashboards.links import dashboard_url, spc_dashboard_url
    from redline.dashboards.screenshot import browser, login, open_dashboard

    def pareto_by_code(query):
        """asking for the Pareto by defect code"""
        return ({"col": "pareto", "op": "==", "val": "defect_code"} in query["filters"]
                and "defect_count" in json.dumps(query["metrics"]))

    def i_chart(query):
        """asking for the I chart's readings"""
        return "measured_value" in json.dumps(query.get("metrics"))

    driver = browser(tmp_path / "chromium", network_log=True)
    try:
        login(driver, cfg, 300)
        driver.get_log("performance")
        open_dashboard(driver, dashboard_url(cfg.superset.url, "manufacturing-quality", {}),
                       300)
        _, bars = wait_for_query(driver, pareto_by_code)
        counts = sorted((r["defect_count"] for r in bars), reverse=True)
        assert len(counts) >= 10, bars
        assert 0.65 <= sum(counts[:3]) / sum(counts) <= 0.85, counts  # a long tail

        open_dashboard(driver, spc_dashboard_url(cfg, "PLT-A", "L1", "S010",
                                                 "bolt_torque_nm"), 300)
        query, points = wait_for_query(driver, i_chart)
    finally:
        driver.quit()
    (axis,) = [c for c in query["columns"] if isinstance(c, dict)
               and c.get("columnType") == "BASE_AXIS"]
    assert axis["sqlExpression"] == "event_time" and not axis.get("timeGrain"), axis
    days = {datetime.fromtimestamp(p["event_time"] / 1000, UTC).date() for p in points}
    (found,) = _sql(capsys, """
        SELECT count(*) AS n, count(DISTINCT to_date(event_time)) AS days
        FROM gold.spc_points WHERE plant = 'PLT-A' AND line = 'L1' AND station = 'S010'
          AND characteristic = 'bolt_torque_nm'""")
    assert len(points) == found["n"] and len(days) == found["days"] >= 25, (len(points), found)
    assert min(days) == SPEC.start


def test_every_dashboard_was_rendered(demo, cfg):
    """Every dashboard's screenshot has charts; they are kept in test-output/demo/ (or
    ``$REDLINE_TEST_OUTPUT/demo``) for a person to look at."""
    import os
    import shutil

    from PIL import Image

    from redline.config import PROJECT_ROOT
    from redline.dashboards.deploy import known_dashboards

    kept = Path(os.environ.get("REDLINE_TEST_OUTPUT", PROJECT_ROOT / "test-output")) / "demo"
    kept.mkdir(parents=True, exist_ok=True)
    for slug in known_dashboards():
        png = cfg.home / "reports" / "dashboards" / f"{slug}.png"
        assert png.exists(), slug
        shutil.copy(png, kept / png.name)
        img = Image.open(png).convert("RGB")
        colours = img.getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50, slug  # charts, not a blank page


def test_a_console_record_reaches_gold_and_the_webhook_by_itself(
        demo, webhook, cfg, spark, kafka_broker, tmp_path, capsys):
    """The pipeline the demo left running, with a webhook: one torque reading far out of
    control, produced with Kafka's own console producer, reaches gold.spc_points and the
    webhook with no other command. (Last in this module: it adds a row to silver.)"""
    import subprocess
    import time
    import uuid
    from datetime import UTC, datetime

    from redline import catalog
    from redline.services.pipeline import PipelineService
    from redline.streaming.kafka_options import topic_name

    event_id = f"e2e-ooc-{uuid.uuid4().hex[:8]}"
    record = {"event_id": event_id,
              "event_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "schema_version": 1, "unit_serial": "RDLE2EOUTOFCTRL01", "plant": "PLT-A",
              "line": "L1", "station": "S010", "operation": "chassis_bolting", "shift": "A",
              "attempt": 1, "result": "FAIL", "cycle_time_s": 55.0,
              "defect_codes": ["D-TORQUE"],
              "measurements": [{"characteristic": "bolt_torque_nm", "value": 80.0,
                                "unit": "Nm", "lsl": 45.0, "usl": 55.0, "target": 50.0}]}
    service = PipelineService(cfg)
    assert service.running()
    settings = tmp_path / "producer.properties"
    assert main(["kafka", "client-config", "--user", "producer", "--out",
                 str(settings)]) == 0
    done = subprocess.run(
        kafka_broker.java("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server",
                          cfg.kafka.servers, "--command-config", str(settings),
                          "--topic", topic_name(cfg, "station_results")),
        input=json.dumps(record) + "\n", text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr

    def waited(what, found, timeout=600.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = found()
            if result:
                return result
            time.sleep(2)
        raise AssertionError(f"{what} not within {timeout:.0f}s; pipeline log:\n"
                             f"{service.log_file.read_text()[-3000:]}")

    def point():
        return (catalog.read(spark, cfg.lake_root, catalog.SPC_POINTS)
                .where(f"event_id = '{event_id}'").collect())

    (p,) = waited("the reading in gold.spc_points", point)
    assert p.value == 80.0 and p.value > p.ucl
    # Its episode (Nelson rule 1 on that one point) reaches the webhook.
    mine = f"Nelson rule 1 (1 point beyond 3 sigma): 1 point (#{p.seq})"
    texts = waited("its alert", lambda: [t for t in webhook.texts
                                          if "PLT-A/L1/S010" in t and mine in t])
    assert len(texts) == 1
    # `redline status` shows each stage's last run.
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    (shown,) = [s for s in json.loads(capsys.readouterr().out)["services"]
                if s["name"] == "pipeline"]
    assert shown["healthy"] and shown["rss_bytes"] > 0
    stages = shown["stages"]
    assert stages["spc"]["result"] == stages["alerts"]["result"] == "ok", stages
    assert stages["ingest"]["result"] == "running", stages
    # The other gold jobs run in their own lane: done, or not yet (never failed).
    assert stages["gold"]["result"] in ("ok", "not run yet"), stages
    # A stop ends it between batches: its queries end before its Spark driver does.
    assert main(["down", "pipeline"]) == 0
    log = service.log_file.read_text(errors="replace")
    ending = log[log.rindex("SIGTERM, stopping"):]
    assert "redline pipeline: stopped" in ending and "Traceback" not in ending, \
        ending[-3000:]
    silver = catalog.read(spark, cfg.lake_root, catalog.silver("station_results"))
    assert silver.where(f"event_id = '{event_id}'").count() == 1
