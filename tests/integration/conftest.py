"""Real services for integration tests: started once per test session, stopped at the end.

Each fixture starts its service in the test state folder on the test ports (see
tests/conftest.py) the first time a test asks for it.
"""

from __future__ import annotations

import pytest


def _service(request, svc):
    svc.start()
    request.addfinalizer(svc.stop)
    return svc


@pytest.fixture(scope="session")
def kafka_broker(request, cfg):
    from redline.services.kafka import KafkaBroker

    return _service(request, KafkaBroker(cfg))


@pytest.fixture(scope="session")
def mlflow_server(request, cfg):
    from redline.services.mlflow_server import MlflowServer

    return _service(request, MlflowServer(cfg))


@pytest.fixture(scope="session")
def thrift_server(request, cfg):
    from redline.services.thrift import ThriftServer

    return _service(request, ThriftServer(cfg))


@pytest.fixture(scope="session")
def superset_server(request, cfg):
    from redline.services.superset import SupersetServer

    return _service(request, SupersetServer(cfg))
