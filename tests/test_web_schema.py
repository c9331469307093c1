"""Property-based tests of the JSON API against its own OpenAPI description (schemathesis):
generated requests, valid and invalid, on SQLite and MariaDB; every answer must match the
description (status, content type, schema) and none may be a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from awe.dpu import Processor
from tests.webserver import TIMEOUT, WebServer, alice_processor, running_server

#: Generated requests per operation (the machine is shared; more find little more here).
EXAMPLES = 15


@pytest.fixture
def server(awe_home: Path, database_url: str) -> Iterator[WebServer]:
    alice: Processor = alice_processor(awe_home, database_url)
    jobs = [alice.run("Outcomes"), alice.run("MakeImage", i="WFI", C=1)]
    alice.wait(jobs, timeout=TIMEOUT)
    alice.get_job_result(jobs[1])  # commit its product
    with running_server(awe_home, database_url) as web:
        yield web


def test_api_matches_its_description(server: WebServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case) -> None:
            case.call_and_validate(timeout=60)

        conforms()
