"""Folding the engine's pull stream into a few lines, and wording pull failures.

The items are the engine's own JSON shapes (as dockerd 20.10 sends them); the pulls
themselves are tested against a real registry in tests/kernel/test_docker_registry.py.
"""

from __future__ import annotations

from kernel_bridge.executors.docker._pull import PullProgress, pull_error, registry_of

IMAGE = "127.0.0.1:5000/team/py:2024.06"


def test_progress_is_one_line_per_layer_and_a_total() -> None:
    progress = PullProgress(IMAGE, "unix:///var/run/docker.sock")
    items = [
        {"status": "Pulling from team/py", "id": "2024.06"},
        {"status": "Already exists", "progressDetail": {}, "id": "4ef126170c92"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "8f02c2fa7359"},
    ]
    assert [progress.feed(i) for i in items] == [False, True, True]
    downloading = {"status": "Downloading", "id": "8f02c2fa7359"}
    assert progress.feed({**downloading, "progressDetail": {"current": 10**6, "total": 5 * 10**7}})
    # byte counts alone are not a change of state (the caller rate-limits those)
    assert not progress.feed(
        {**downloading, "progressDetail": {"current": 2 * 10**7, "total": 5 * 10**7}}
    )
    text = progress.render()
    assert text.splitlines() == [
        f"Pulling {IMAGE} onto the Docker engine at unix:///var/run/docker.sock",
        "  4ef126170c92  Already exists",
        "  8f02c2fa7359  Downloading  20.0 MB / 50.0 MB",
        text.splitlines()[-1],
    ]
    assert text.splitlines()[-1].startswith("  1/2 layers done, 20.0 MB of 50.0 MB downloaded, ")
    for status in ("Download complete", "Pull complete"):
        progress.feed({"status": status, "progressDetail": {}, "id": "8f02c2fa7359"})
    assert progress.feed({"status": "Digest: sha256:" + "a" * 64})
    done = progress.render("Pulled.")
    assert "2/2 layers done, 50.0 MB of 50.0 MB downloaded" in done
    assert done.endswith(f"  digest sha256:{'a' * 64}\nPulled.\n")


def test_failures_are_worded_by_cause() -> None:
    engine = "tcp://gpu:2376"
    missing = pull_error(IMAGE, "manifest for x not found: manifest unknown", engine)
    assert "has no such image" in missing and IMAGE in missing and engine in missing
    login = pull_error(IMAGE, 'Head "http://...": no basic auth credentials', engine)
    assert "docker login 127.0.0.1:5000" in login and "never belong in kernel.json" in login
    down = pull_error(IMAGE, "dial tcp 127.0.0.1:5000: connect: connection refused", engine)
    assert "cannot be reached from that engine" in down and "docker load" in down
    assert registry_of("python:3.12-slim") == "docker.io"
    assert registry_of(IMAGE) == "127.0.0.1:5000"
