"""Contract tests: the emulator's requests and responses for 2024-02-02-preview.

Every shape documented in aca-api.md §1.4 (execute, files), §1.12 (status codes) and
§7 (result semantics, errors, auth, capacity) is pinned here over real HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
from _support.tokens import make_jwt

from kernel_bridge.emulator import Fault

from .conftest import TOKEN, Pool, V

PNG_1x1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5Erk"
    "Jggg=="
)
ISO_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def q(identifier: str = "session-1", version: str = V) -> dict[str, str]:
    return {"api-version": version, "identifier": identifier}


# -- code/execute ---------------------------------------------------------------------------


def test_execute_response_envelope(pool: Pool) -> None:
    response = pool.execute("6 * 7")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["$id"] == "1"
    props = body["properties"]
    assert set(props) == {
        "$id",
        "status",
        "stdout",
        "stderr",
        "result",
        "executionTimeInMilliseconds",
    }
    assert props["status"] == "Success"
    assert props["result"] == 42 and isinstance(props["result"], int)
    assert isinstance(props["executionTimeInMilliseconds"], int)
    assert response.headers["x-ms-session-guid"]
    assert response.headers["operation-id"]


def test_result_semantics(pool: Pool) -> None:
    assert pool.props("True")["result"] is True
    assert pool.props("1.5")["result"] == 1.5
    assert pool.props("'abc'")["result"] == "'abc'"
    assert pool.props("{'a': 1}")["result"] == "{'a': 1}"
    assert pool.props("None")["result"] == ""
    assert pool.props("x = 3")["result"] == ""
    printed = pool.props("print('hi')")
    assert printed["result"] == "" and printed["stdout"] == "hi\n"
    assert pool.props("float('nan')")["result"] == "nan"


def test_image_result(pool: Pool) -> None:
    code = (
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(data=base64.b64decode('{PNG_1x1}')))\n"
    )
    result = pool.props(code)["result"]
    assert result == {"type": "image", "format": "png", "base64_data": PNG_1x1}


def test_user_error_is_failure_with_traceback_in_stderr(pool: Pool) -> None:
    props = pool.props("print('before')\n1/0")
    assert props["status"] == "Failure"
    assert props["stdout"] == "before\n"
    assert props["stderr"].rstrip().splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert "\x1b[" not in props["stderr"]
    assert props["result"] == ""


def test_state_persists_and_sessions_are_isolated(pool: Pool) -> None:
    pool.props("secret = 'mine'", identifier="session-a")
    assert pool.props("secret", identifier="session-a")["result"] == "'mine'"
    other = pool.props("secret", identifier="session-b")
    assert other["status"] == "Failure" and "NameError" in other["stderr"]


def test_enum_case_and_optional_fields(pool: Pool) -> None:
    response = pool.http.post(
        pool.url("code/execute"),
        params=q(),
        json={
            "properties": {
                "codeInputType": "Inline",
                "executionType": "Synchronous",
                "code": "1 + 1",
                "timeoutInSeconds": 100,
            }
        },
    )
    assert response.status_code == 200
    assert response.json()["properties"]["result"] == 2


def test_execution_timeout_reports_failure(pool: Pool) -> None:
    started = time.monotonic()
    props = pool.props("import time\ntime.sleep(30)", timeoutInSeconds=1)
    assert time.monotonic() - started < 20
    assert props["status"] == "Failure"
    assert "TimeoutError" in props["stderr"]
    assert pool.props("1")["result"] == 1  # the session is still usable


def test_any_pool_prefix_is_accepted(pool: Pool) -> None:
    base = pool.emulator.base_url
    for prefix in ("", "/x", "/subscriptions/s/resourceGroups/r/sessionPools/p"):
        response = pool.http.post(
            f"{base}{prefix}/code/execute", params=q(), json={"properties": {"code": "5"}}
        )
        assert response.status_code == 200, prefix
        assert response.json()["properties"]["result"] == 5


def test_bad_requests_get_400(pool: Pool) -> None:
    url = pool.url("code/execute")
    body = {"properties": {"code": "1"}}
    cases = [
        ({"identifier": "session-1"}, body),
        (q(version="2099-01-01"), body),
        ({"api-version": V}, body),
        (q(identifier="a/b"), body),
        (q(), {"properties": {}}),
        (q(), {"code": "1"}),
        (q(), {"properties": {"code": "1", "executionType": "asynchronous"}}),
    ]
    for params, payload in cases:
        response = pool.http.post(url, params=params, json=payload)
        assert response.status_code == 400, (params, payload)
        assert response.json()["error"]["code"]
    response = pool.http.post(url, params=q(), content=b"not json")
    assert response.status_code == 400


# -- authentication -------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401_with_empty_body(pool: Pool) -> None:
    body = {"properties": {"code": "1"}}
    no_header = httpx.post(pool.url("code/execute"), params=q(), json=body)
    assert no_header.status_code == 401 and no_header.content == b""
    wrong = httpx.post(
        pool.url("code/execute"),
        params=q(),
        json=body,
        headers={"Authorization": "Bearer nope"},
    )
    assert wrong.status_code == 401 and wrong.content == b""
    files = httpx.get(pool.url("files"), params=q())
    assert files.status_code == 401
    assert pool.emulator.stats()["executions"] == 0


def test_expired_or_wrong_audience_jwt_is_401(make_pool: Callable[..., Pool]) -> None:
    pool = make_pool(token=None)
    body = {"properties": {"code": "1"}}

    def call(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.post(
            pool.url("code/execute"), params=q(), json=body, headers=headers
        ).status_code

    aud = "https://dynamicsessions.io"
    assert call(make_jwt({"aud": aud, "exp": int(time.time()) - 5})) == 401
    assert call(make_jwt({"aud": "https://management.azure.com", "exp": 2**40})) == 401
    assert call(make_jwt({"aud": aud, "exp": int(time.time()) + 600})) == 200
    assert call("any-opaque-token") == 200
    uses = pool.emulator.tokens.snapshot()
    assert [u.accepted for u in uses] == [False, False, True, True]
    assert uses[0].expired and uses[0].reason == "expired"
    assert all(TOKEN not in u.fingerprint for u in uses)


# -- files ----------------------------------------------------------------------------------


def test_upload_list_download(pool: Pool) -> None:
    upload = pool.http.post(
        pool.url("files/upload"),
        params=q(),
        files={"file": ("test1.txt", b"0123456789abcdef", "application/octet-stream")},
    )
    assert upload.status_code == 200
    entry = upload.json()["value"][0]["properties"]
    assert entry["filename"] == "test1.txt" and entry["size"] == 16
    # absolute /mnt/data names (LlamaIndex, Semantic Kernel) land in the same place
    pool.http.post(
        pool.url("files/upload"),
        params=q(),
        files={"file": ("/mnt/data/b c.txt", b"x", "text/plain")},
    )
    listing = pool.http.get(pool.url("files"), params=q())
    assert listing.status_code == 200
    body = listing.json()
    assert body["$id"] == "1"
    props = [item["properties"] for item in body["value"]]
    assert [p["filename"] for p in props] == ["b c.txt", "test1.txt"]
    for p in props:
        assert set(p) == {"$id", "filename", "size", "lastModifiedTime"}
        assert ISO_7.match(p["lastModifiedTime"])
    content = pool.http.get(pool.url("files/content/b%20c.txt"), params=q())
    assert content.status_code == 200 and content.content == b"x"
    missing = pool.http.get(pool.url("files/content/nope.txt"), params=q())
    assert missing.status_code == 404


def test_code_sees_uploads_at_mnt_data_and_files_it_writes_are_listed(pool: Pool) -> None:
    pool.http.post(
        pool.url("files/upload"), params=q(), files={"file": ("in.txt", b"hello", "text/plain")}
    )
    props = pool.props(
        "open('/mnt/data/out.txt', 'w').write(open('/mnt/data/in.txt').read().upper())"
    )
    assert props["status"] == "Success", props["stderr"]
    assert pool.http.get(pool.url("files/content/out.txt"), params=q()).content == b"HELLO"
    other = pool.http.get(pool.url("files"), params=q(identifier="session-2")).json()
    assert other["value"] == []


def test_file_names_with_paths_are_refused(pool: Pool) -> None:
    bad = pool.http.post(
        pool.url("files/upload"), params=q(), files={"file": ("../escape.txt", b"x", "text/plain")}
    )
    assert bad.status_code == 400
    traversal = pool.http.get(pool.url("files/content/..%2Fetc%2Fpasswd"), params=q())
    assert traversal.status_code == 400


def test_upload_over_limit_is_413(make_pool: Callable[..., Pool]) -> None:
    pool = make_pool(max_upload_bytes=1000)
    response = pool.http.post(
        pool.url("files/upload"),
        params=q(),
        files={"file": ("big.bin", b"x" * 5000, "application/octet-stream")},
    )
    assert response.status_code == 413


# -- capacity and lifetime ------------------------------------------------------------------


def test_pool_full_is_404_for_new_identifiers_only(make_pool: Callable[..., Pool]) -> None:
    pool = make_pool(max_sessions=1)
    assert pool.props("1", identifier="first-session")["result"] == 1
    full = pool.execute("1", identifier="second-session")
    assert full.status_code == 404
    assert pool.props("2", identifier="first-session")["result"] == 2


def test_idle_session_is_silently_replaced(make_pool: Callable[..., Pool]) -> None:
    pool = make_pool(cooldown=1.0)
    pool.props("kept = 1\nopen('/mnt/data/f.txt', 'w').write('x')")
    deadline = time.monotonic() + 20
    while pool.emulator.stats()["sessions_expired"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    props = pool.props("kept")
    assert props["status"] == "Failure" and "NameError" in props["stderr"]
    assert pool.http.get(pool.url("files"), params=q()).json()["value"] == []
    assert pool.emulator.stats()["sessions_created"] == 2


# -- newer api-versions (subset) ------------------------------------------------------------


def test_executions_and_session_routes(pool: Pool) -> None:
    new = pool.http.post(
        pool.url("executions"),
        params=q(version="2025-02-02-preview"),
        json={
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "code": "print(7 * 9)",
            "timeoutInSeconds": 60,
        },
    )
    assert new.status_code == 200
    resource = new.json()
    assert resource["status"] == "Succeeded"
    assert resource["identifier"] == "session-1"
    assert resource["result"]["stdout"] == "63\n" and resource["result"]["executionResult"] == ""
    old = pool.http.post(
        pool.url("executions"), params=q(version="2024-10-02-preview"), json={"code": "1/0"}
    )
    assert old.status_code == 202 and old.json()["status"] == "Failed"
    fetched = pool.http.get(
        pool.url(f"executions/{resource['id']}"), params=q(version="2025-02-02-preview")
    )
    assert fetched.status_code == 200 and fetched.json() == resource
    session = pool.http.get(pool.url("session"), params=q(version="2025-02-02-preview"))
    assert session.status_code == 200
    assert set(session.json()) == {"identifier", "createdAt", "lastAccessedAt", "expireAt", "etag"}
    deleted = pool.http.delete(pool.url("session"), params=q(version="2025-02-02-preview"))
    assert deleted.status_code == 204
    gone = pool.http.get(pool.url("session"), params=q(version="2025-02-02-preview"))
    assert gone.status_code == 404
    # DELETE is not part of 2024-02-02-preview
    assert pool.http.delete(pool.url("session"), params=q()).status_code == 400


# -- fault injection ------------------------------------------------------------------------


def test_faults_status_retry_after_delay_and_drop(pool: Pool) -> None:
    pool.emulator.faults.add(Fault(status=429, retry_after=2))
    throttled = pool.execute("1")
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
    pool.emulator.faults.add(Fault(status=503))
    assert pool.execute("1").status_code == 503
    assert pool.emulator.stats()["executions"] == 0
    pool.emulator.faults.add(Fault(status=500, after=True))
    assert pool.execute("ran = True").status_code == 500
    assert pool.emulator.stats()["executions"] == 1
    pool.emulator.faults.add(Fault(delay=1.0))
    started = time.monotonic()
    assert pool.props("ran")["result"] is True
    assert time.monotonic() - started >= 0.9
    pool.emulator.faults.add(Fault(drop=True))
    try:
        pool.execute("1")
    except httpx.TransportError:
        pass
    else:  # pragma: no cover - the connection must break
        raise AssertionError("the dropped connection returned a response")
    assert pool.emulator.stats()["faults_pending"] == 0


def test_admin_routes(pool: Pool) -> None:
    base = pool.emulator.base_url
    assert httpx.get(f"{base}/_emulator/stats").status_code == 401
    queued = pool.http.post(f"{base}/_emulator/faults", json=[{"status": 503, "times": 2}])
    assert queued.status_code == 200 and queued.json() == {"queued": 1}
    assert pool.execute("1").status_code == 503
    assert pool.execute("1").status_code == 503
    assert pool.execute("1").status_code == 200
    stats = pool.http.get(f"{base}/_emulator/stats").json()
    assert stats["executions"] == 1 and stats["sessions_created"] == 1
    assert all(use["accepted"] for use in stats["tokens"][-3:])
    assert pool.http.post(f"{base}/_emulator/expire").status_code == 204
    assert pool.http.get(f"{base}/_emulator/stats").json()["live_sessions"] == 0
