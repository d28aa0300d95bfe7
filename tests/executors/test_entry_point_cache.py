"""The entry-point cache: the same answer as importlib.metadata, whatever the file says.

Distributions are real: the example plug-in (tests/plugins/example_executor) is installed
by pip into a site folder, or a ``*.dist-info`` folder is written as pip writes it. Each
kernel-like check runs in a fresh interpreter, as a kernel does, with its own
``XDG_CACHE_HOME``. A site folder's modification time is set into the past where a test
needs it to be cached at all (a folder changed in the last 2 s is always read).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import Distribution, entry_points
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.executors._entry_point_cache import cache_file, group_entry_points

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "tests" / "plugins" / "example_executor"
GROUP = "kernel_bridge.executors"


def _age(folder: Path, seconds: float) -> int:
    """Set ``folder``'s modification time ``seconds`` into the past; return it (ns)."""
    stamp = time.time_ns() - int(seconds * 1e9)
    os.utime(folder, ns=(stamp, stamp))
    return stamp


def _kinds(site: Path, cache: Path) -> list[str]:
    """The registry's kinds in a fresh interpreter that sees ``site``."""
    code = "from kernel_bridge.executors import executor_kinds; print(*executor_kinds())"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "XDG_CACHE_HOME": str(cache),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _cached_entries(cache: Path) -> dict[str, Any]:
    """The entries of the cache file a fresh interpreter wrote under ``cache``."""
    (path,) = (cache / "kernel_bridge").glob("entry-points-*.json")
    entries: dict[str, Any] = json.loads(path.read_text())["entries"]
    return entries


def _dist(site: Path, name: str, entry_point: str | None, module: str = "") -> None:
    """Write a distribution as pip does: a dist-info folder and its module."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_point is not None:
        (info / "entry_points.txt").write_text(f"[{GROUP}]\n{entry_point}\n")
    if module:
        (site / f"{name}.py").write_text(module)


def _cache_path() -> Path:
    path = cache_file(GROUP)
    assert path is not None
    return path


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty XDG_CACHE_HOME for this process."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def _pairs(points: Any) -> list[tuple[str, str]]:
    return [(ep.name, ep.value) for ep in points]


@pytest.mark.parametrize("group", [GROUP, "console_scripts", "pytest11"])
def test_cold_and_warm_give_what_importlib_metadata_gives(private_cache: Path, group: str) -> None:
    expected = _pairs(entry_points(group=group))
    assert expected  # every group here has entry points in the test environment
    assert _pairs(group_entry_points(group)) == expected  # cold: read and written
    path = cache_file(group)
    assert path is not None and path.is_file()
    assert _pairs(group_entry_points(group)) == expected  # warm: from the file


def test_a_plugin_installed_then_removed_is_found_then_gone(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    stamp = _age(site, 3600)
    assert _kinds(site, cache) == ["local", "aca", "docker"]
    assert _cached_entries(cache)[str(site)] == {"mtime_ns": stamp, "dists": []}

    # pip installs the example plug-in into the cached folder
    source = tmp_path_factory.mktemp("example-src") / "example_executor"
    shutil.copytree(EXAMPLE, source)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    flags = ["--no-index", "--no-deps", "--no-build-isolation", "--upgrade", "--target", str(site)]
    done = subprocess.run([*pip, *flags, str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    installed = _age(site, 1800)  # settled, and not the cached stamp
    assert _kinds(site, cache) == ["local", "aca", "docker", "example"]
    entry = _cached_entries(cache)[str(site)]
    assert entry["mtime_ns"] == installed
    assert dict(entry["dists"])["kb_example_executor"] == [
        ["example", "kb_example_executor:plugin"]
    ]

    # and removed again (pip cannot uninstall from --target: delete what it wrote)
    for path in site.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    _age(site, 900)
    assert _kinds(site, cache) == ["local", "aca", "docker"]
    assert _cached_entries(cache)[str(site)]["dists"] == []


def test_a_folder_changed_just_now_is_read_and_not_cached(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    plugin = (
        "from kernel_bridge.executors import ExecutorPlugin\n"
        "plugin = ExecutorPlugin('fresh', 'm:C')\n"
    )
    _dist(site, "kbt_fresh", "fresh = kbt_fresh:plugin", plugin)
    assert _kinds(site, cache) == ["local", "aca", "docker", "fresh"]
    assert str(site) not in _cached_entries(cache)  # the other folders are


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xffnot json",
        b'{"format": 1, "group": "kernel_bridge.executors", "entries": []}',
        b'{"format": 1, "group": "kernel_bridge.executors", "entries": {"/x": {"mtime_ns": "1"}}}',
        b"[1, 2, 3]",
        b"",
    ],
    ids=["garbage", "entries-not-a-mapping", "stamp-not-an-int", "a-list", "empty"],
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(private_cache: Path, content: bytes) -> None:
    path = _cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    expected = _pairs(entry_points(group=GROUP))
    assert _pairs(group_entry_points(GROUP)) == expected
    assert json.loads(path.read_text())["format"] == 1  # rewritten, valid


def _phantom_cache(site: Path, stamp: int) -> dict[str, Any]:
    """A cache claiming ``site`` holds a plug-in ``phantom`` that is not there."""
    dists = [["kbt_phantom", [["phantom", "kbt_phantom:plugin"]]]]
    return {
        "format": 1,
        "group": GROUP,
        "entries": {str(site): {"mtime_ns": stamp, "dists": dists}},
    }


def test_an_entry_whose_stamp_matches_is_used_without_reading_the_folder(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    stamp = _age(site, 3600)
    path = _cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_phantom_cache(site, stamp)))
    path.chmod(0o600)
    monkeypatch.syspath_prepend(str(site))
    assert ("phantom", "kbt_phantom:plugin") in _pairs(group_entry_points(GROUP))
    # the folder changes: the entry is stale and the folder is read (it holds nothing)
    _age(site, 1800)
    assert "phantom" not in {ep.name for ep in group_entry_points(GROUP)}


def test_a_cache_file_others_may_write_is_not_trusted(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    stamp = _age(site, 3600)
    path = _cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_phantom_cache(site, stamp)))
    path.chmod(0o666)
    monkeypatch.syspath_prepend(str(site))
    assert "phantom" not in {ep.name for ep in group_entry_points(GROUP)}


def test_a_distribution_found_earlier_on_the_path_shadows_a_later_one(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _dist(first, "kbt_shadow", None)  # the same distribution, without the entry point
    _dist(second, "kbt_shadow", "shadow = kbt_shadow:plugin")
    _dist(second, "kbt_other", "other = kbt_other:plugin")
    for folder in (first, second):
        _age(folder, 3600)
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    expected = _pairs(entry_points(group=GROUP))
    assert ("other", "kbt_other:plugin") in expected
    assert "shadow" not in dict(expected)
    assert _pairs(group_entry_points(GROUP)) == expected  # cold
    assert _pairs(group_entry_points(GROUP)) == expected  # warm


class _ExtraFinder:
    """A distribution finder other than the path finder (as some import hooks install)."""

    def __init__(self, info: Path) -> None:
        self.info = info

    def find_spec(self, *args: object) -> None:
        return None

    def find_distributions(self, *args: object) -> Iterator[Distribution]:
        yield Distribution.at(self.info)


def test_another_distribution_finder_is_asked_too(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = tmp_path / "hidden"  # not on sys.path: only the finder knows it
    hidden.mkdir()
    _dist(hidden, "kbt_hooked", "hooked = kbt_hooked:plugin")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _ExtraFinder(next(hidden.iterdir()))])
    assert ("hooked", "kbt_hooked:plugin") in _pairs(group_entry_points(GROUP))


def test_no_absolute_cache_folder_means_no_cache_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", "relative-home")
    assert cache_file(GROUP) is None
    assert _pairs(group_entry_points(GROUP)) == _pairs(entry_points(group=GROUP))
    assert list(tmp_path.iterdir()) == []  # nothing written relative to the cwd
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_file(GROUP) == _cache_path()
    assert str(_cache_path()).startswith(str(tmp_path / "home" / ".cache" / "kernel_bridge"))
