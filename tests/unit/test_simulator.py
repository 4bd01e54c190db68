import collections
import json

from redline.schemas.payloads import DATASET_TOPICS, PAYLOADS, SIMULATED_TOPICS
from redline.streaming.simulator import PLANTED, SimulationSpec, Simulator

SMALL = SimulationSpec(vehicles=60, days=30, seed=11)


def _events(spec=SMALL):
    return list(Simulator(spec).events())


def test_same_seed_same_events_other_seed_other_events():
    a, b = _events(), _events()
    assert [e.payload for e in a] == [e.payload for e in b]
    c = _events(SimulationSpec(vehicles=60, days=30, seed=12))
    assert [e.payload["event_id"] for e in a[:50]] != [e.payload["event_id"] for e in c[:50]]


def test_every_topic_is_produced_with_its_schema_fields():
    events = _events()
    by_topic = collections.defaultdict(list)
    for e in events:
        by_topic[e.topic].append(e.payload)
    assert set(by_topic) == set(SIMULATED_TOPICS)
    # every topic is fed by the simulator or by a replayed data set, never both
    assert set(SIMULATED_TOPICS) | set(DATASET_TOPICS) == set(PAYLOADS)
    assert not set(SIMULATED_TOPICS) & set(DATASET_TOPICS)
    versions = collections.Counter()
    for topic, payloads in by_topic.items():
        for p in payloads:
            # each event has exactly the fields of the version it declares
            declared = {f.name for f in PAYLOADS[topic][p["schema_version"]].struct.fields}
            assert set(p) == declared, (topic, p["schema_version"])
            versions[topic, p["schema_version"]] += 1
        json.dumps(payloads[:20])  # JSON-serialisable as produced
    # telemetry comes in both versions: FW-3.1.4 vehicles send v1, newer firmware v2
    assert versions["vehicle_telemetry", 1] > 0 and versions["vehicle_telemetry", 2] > 0


def test_event_ids_unique_and_builds_one_per_vehicle():
    events = _events()
    ids = [e.payload["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    builds = [e for e in events if e.topic == "vehicle_builds"]
    assert len(builds) == SMALL.vehicles


def test_planted_bad_lot_fails_more_at_its_station():
    sim = Simulator(SimulationSpec(vehicles=300, days=30, seed=3))
    lot = PLANTED["bad_lot"]
    lot_of = {v["vin"]: next(c["lot"] for c in v["components"]
                             if c["component"] == lot["component"]) for v in sim.vehicles}
    tries = collections.Counter()
    fails = collections.Counter()
    for e in sim.events():
        p = e.payload
        if e.topic == "station_results" and p["station"] == lot["station"] and p["attempt"] == 1:
            bad = lot_of[p["unit_serial"]] == lot["lot"]
            tries[bad] += 1
            fails[bad] += p["result"] == "FAIL"
    assert tries[True] > 20 and tries[False] > 100
    assert fails[True] / tries[True] > 0.3 > 0.1 > fails[False] / tries[False]


def test_planted_hazard_component_dominates_claims():
    claims = [e.payload for e in _events(SimulationSpec(vehicles=200, days=60, seed=5))
              if e.topic == "warranty_claims"]
    by_component = collections.Counter(c["component"] for c in claims)
    assert by_component.most_common(1)[0][0] == PLANTED["hazard"]["component"]


def test_rejects_empty_simulation():
    import pytest

    with pytest.raises(ValueError, match="at least 1 vehicle"):
        Simulator(SimulationSpec(vehicles=0))
