"""From simulated events in Kafka to the deployed dashboard, through every real component.

Runs `redline demo` (the same code path a user runs) against the real broker, Spark with
Delta, MLflow, the Thrift Server and Superset, then checks what a user would check.
"""

import json

import pytest

from redline.cli import main
from redline.streaming.simulator import SimulationSpec, Simulator

pytestmark = pytest.mark.e2e

VEHICLES, DAYS, SEED = 120, 50, 7


@pytest.fixture(scope="module")
def demo(cfg, spark, kafka_broker, mlflow_server, thrift_server, superset_server):
    from redline.demo import run_demo

    code = run_demo(cfg, vehicles=VEHICLES, days=DAYS, seed=SEED)
    return code


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
    assert set(services) == {"kafka", "mlflow", "spark-thrift", "superset"}
    for name, s in services.items():
        assert s["healthy"], name
        assert s["address"].startswith("127.0.0.1:"), name
    assert services["kafka"]["version"] == "4.3.1"
    assert services["spark-thrift"]["version"] == "spark 4.2.0"
    assert services["mlflow"]["version"].startswith("mlflow 3.17")
    assert services["superset"]["version"] == "superset 6.1.0"


def test_counts_reconcile_from_kafka_to_silver(demo, capsys):
    expected = {}
    for e in Simulator(SimulationSpec(vehicles=VEHICLES, days=DAYS, seed=SEED)).events():
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
    assert gold["units"] == VEHICLES * 4  # every vehicle visits four stations once first
    scores = _sql(capsys, "SELECT count(*) AS n, min(failure_probability) AS lo, "
                          "max(failure_probability) AS hi FROM gold.vehicle_risk_scores")[0]
    assert scores["n"] > 0 and 0.0 <= scores["lo"] <= scores["hi"] <= 1.0


def test_every_dashboard_was_rendered(demo, cfg):
    from PIL import Image

    from redline.dashboards.deploy import known_dashboards

    for slug in known_dashboards():
        png = cfg.home / "reports" / "dashboards" / f"{slug}.png"
        assert png.exists(), slug
        img = Image.open(png).convert("RGB")
        colours = img.getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50, slug  # charts, not a blank page
