"""Contract of the newer api-versions' execution shapes (aca-api.md §1.7-1.9).

Asynchronous executions (202, ``Running``, ``Operation-Location``, polled to a terminal
state), the execution cap applying to synchronous executions only, and
``outputStreamsMaxLength`` cutting each stream (default 4096, no flag).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .conftest import Pool

NEWEST = "2025-10-02-preview"


def q(version: str = NEWEST, identifier: str = "session-1") -> dict[str, str]:
    return {"api-version": version, "identifier": identifier}


def body(code: str, kind: str = "Synchronous", **extra: Any) -> dict[str, Any]:
    return {
        "codeInputType": "Inline",
        "executionType": kind,
        "code": code,
        "timeoutInSeconds": 60,
        **extra,
    }


def poll(pool: Pool, location: str, deadline: float = 30.0) -> tuple[dict[str, Any], list[str]]:
    """GET the execution until it is terminal; return it and the states seen."""
    states: list[str] = []
    ends = time.monotonic() + deadline
    while True:
        resource = pool.http.get(pool.emulator.base_url + location).json()
        states.append(resource["status"])
        if resource["status"] not in ("Running", "NotStarted"):
            return resource, states
        assert time.monotonic() < ends, states
        time.sleep(0.1)


def test_asynchronous_execution_answers_at_once_and_is_polled(pool: Pool) -> None:
    started = time.monotonic()
    response = pool.http.post(
        pool.url("executions"),
        params=q(),
        json=body("import time\ntime.sleep(1.5)\nprint('late')", "Asynchronous"),
    )
    assert time.monotonic() - started < 1.5
    assert response.status_code == 202
    resource = response.json()
    assert resource["status"] == "Running" and resource["executionType"] == "Asynchronous"
    assert response.headers["operation-id"] == resource["id"]
    location = response.headers["operation-location"]
    assert location.startswith("/") and f"/executions/{resource['id']}?" in location
    assert f"api-version={NEWEST}" in location and "identifier=session-1" in location
    final, states = poll(pool, location)
    assert states[0] == "Running" and final["status"] == "Succeeded"
    assert final["result"]["stdout"] == "late\n"
    unknown = pool.http.get(pool.url("executions/nope"), params=q())
    assert unknown.status_code == 404
    assert unknown.headers["x-ms-error-code"] == "ExecutionNotFound"


def test_execution_cap_applies_to_synchronous_executions_only(
    make_pool: Callable[..., Pool],
) -> None:
    pool = make_pool(execution_cap=1.0)
    code = "import time\ntime.sleep(2.5)\nprint('done')"
    legacy = pool.props(code)
    assert legacy["status"] == "Failure"
    assert "TimeoutError" in legacy["stderr"] and "1 s limit of synchronous" in legacy["stderr"]
    sync = pool.http.post(pool.url("executions"), params=q(), json=body(code))
    assert sync.json()["status"] == "Failed"
    assert "limit of synchronous executions" in sync.json()["result"]["stderr"]
    started = pool.http.post(pool.url("executions"), params=q(), json=body(code, "Asynchronous"))
    final, _ = poll(pool, started.headers["operation-location"])
    assert final["status"] == "Succeeded" and final["result"]["stdout"] == "done\n"


def test_output_streams_max_length_cuts_each_stream_without_a_flag(pool: Pool) -> None:
    code = "import sys\nprint('o' * 5000)\nsys.stderr.write('e' * 5000)"
    default = pool.http.post(pool.url("executions"), params=q(), json=body(code)).json()
    assert default["status"] == "Succeeded"
    assert default["result"]["stdout"] == "o" * 4096
    assert default["result"]["stderr"] == "e" * 4096
    asked = pool.http.post(
        pool.url("executions"), params=q(), json=body(code, outputStreamsMaxLength=100)
    ).json()
    assert asked["result"]["stdout"] == "o" * 100
    large = pool.http.post(
        pool.url("executions"), params=q(), json=body(code, outputStreamsMaxLength=10_000)
    ).json()
    assert large["result"]["stdout"] == "o" * 5000 + "\n"
    # versions before 2025-10-02-preview neither take nor apply the cap [INF]
    older = pool.http.post(
        pool.url("executions"), params=q("2025-02-02-preview"), json=body(code)
    ).json()
    assert len(older["result"]["stdout"]) == 5001
    bad = pool.http.post(
        pool.url("executions"), params=q(), json=body(code, outputStreamsMaxLength=0)
    )
    assert bad.status_code == 400


def test_the_largest_output_length_is_capped_by_the_pool(make_pool: Callable[..., Pool]) -> None:
    pool = make_pool(max_output_length=300)
    code = "print('o' * 1000)"
    resource = pool.http.post(
        pool.url("executions"), params=q(), json=body(code, outputStreamsMaxLength=10_000)
    ).json()
    assert resource["result"]["stdout"] == "o" * 300


def test_execution_type_is_checked(pool: Pool) -> None:
    response = pool.http.post(pool.url("executions"), params=q(), json=body("1", "Later"))
    assert response.status_code == 400
    assert "executionType" in response.json()["error"]["message"]


def test_polls_take_their_own_faults(pool: Pool) -> None:
    from kernel_bridge.emulator import Fault

    started = pool.http.post(pool.url("executions"), params=q(), json=body("1", "Asynchronous"))
    pool.emulator.faults.add(Fault(operation="poll", status=503))
    failed = pool.http.get(pool.emulator.base_url + started.headers["operation-location"])
    assert failed.status_code == 503
    final, _ = poll(pool, started.headers["operation-location"])
    assert final["status"] == "Succeeded"
