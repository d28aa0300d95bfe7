"""Pure helpers of the ACA executor: URL building, response mapping, the expiry guard."""

from __future__ import annotations

import ast

from kernel_bridge.events import Display, Error, Result, Stream
from kernel_bridge.executors.aca._client import build_url, redact
from kernel_bridge.executors.aca._credentials import refresh_margin
from kernel_bridge.executors.aca._guard import guard_code, is_marker_error, new_marker
from kernel_bridge.executors.aca._results import parse_properties, parse_traceback


def test_build_url_keeps_pool_path_and_percent_encodes() -> None:
    url = build_url(
        "https://r.dynamicsessions.io/subscriptions/s/resourceGroups/g/sessionPools/p/",
        "files/content",
        {"api-version": "2024-02-02-preview", "identifier": "a b&c/d"},
        ("my file?.txt",),
    )
    assert url == (
        "https://r.dynamicsessions.io/subscriptions/s/resourceGroups/g/sessionPools/p"
        "/files/content/my%20file%3F.txt?api-version=2024-02-02-preview&identifier=a%20b%26c%2Fd"
    )


def test_redact_never_shows_a_whole_identifier() -> None:
    ident = "0123456789abcdef"
    assert redact(ident) == "0123…" and ident not in redact(ident)


def test_refresh_margin() -> None:
    assert refresh_margin(3600) == 300
    assert refresh_margin(60) == 12
    assert refresh_margin(5) == 2
    assert refresh_margin(3) == 1.5
    assert refresh_margin(-1) == 0


def test_parse_success_maps_streams_and_values() -> None:
    parsed = parse_properties({"status": "Success", "stdout": "o\n", "stderr": "w\n", "result": 42})
    assert parsed.exit_code == 0
    assert parsed.events == [
        Stream("stdout", "o\n"),
        Stream("stderr", "w\n"),
        Result({"text/plain": "42"}, value_json=42),
    ]
    assert parse_properties({"status": "Success", "result": ""}).events == []
    text = parse_properties({"status": "Success", "result": "{'a': 1}"}).events
    assert text == [Result({"text/plain": "{'a': 1}"})]
    image = parse_properties(
        {"status": "Success", "result": {"type": "image", "format": "png", "base64_data": "QUJD"}}
    ).events
    assert isinstance(image[0], Display) and image[0].data["image/png"] == "QUJD"
    newer = parse_properties(
        {"status": "Succeeded", "result": {"stdout": "x", "executionResult": 3}}
    )
    assert newer.events == [Stream("stdout", "x"), Result({"text/plain": "3"}, value_json=3)]


def test_parse_failure_names_the_exception() -> None:
    stderr = (
        "Traceback (most recent call last):\n  File \"<x>\", line 1\n\x1b[31mKeyError\x1b[0m: 'k'\n"
    )
    parsed = parse_properties({"status": "Failure", "stdout": "before\n", "stderr": stderr})
    assert parsed.exit_code == 1
    assert parsed.events[0] == Stream("stdout", "before\n")
    error = parsed.events[1]
    assert isinstance(error, Error)
    assert (error.ename, error.evalue) == ("KeyError", "'k'")
    assert parse_traceback("TimeoutError: too slow").ename == "TimeoutError"
    timeout = parse_properties({"status": "Failure", "stderr": "TimeoutError: too slow\n"})
    assert timeout.exit_code == 124
    assert parse_traceback("").ename == "RemoteExecutionError"


def test_guard_keeps_line_numbers_where_it_can() -> None:
    m = new_marker()
    assert m != new_marker() and m.startswith("_kb_alive_")
    assert guard_code("x = 1\ny", m) == f"{m}; x = 1\ny"
    assert guard_code("# note\nx", m) == f"{m}  # note\nx"
    assert guard_code("\nx", m) == f"{m}\nx"
    assert guard_code("def f():\n    pass", m) == f"{m}\ndef f():\n    pass"
    assert guard_code("%time x", m) == f"{m}\n%time x"
    assert guard_code("%%time\nx", m) == "%%time\nx"
    assert guard_code("from __future__ import annotations\n", m).startswith("from __future__")
    assert guard_code("", m) == m
    for code in ("x = 1\ny", "# c\nx", "def f():\n    pass", "@d\ndef f(): pass", "if 1:\n  2"):
        guarded = guard_code(code, m)
        ast.parse(guarded)  # still valid Python
        first = ast.parse(guarded).body[0]
        assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Name)
        assert first.value.id == m


def test_marker_error_detection() -> None:
    m = new_marker()
    lost = Error("NameError", f"name '{m}' is not defined")
    assert is_marker_error(lost, m, "")
    assert not is_marker_error(lost, m, "printed\n")
    assert not is_marker_error(Error("NameError", "name 'x' is not defined"), m, "")
    assert not is_marker_error(None, m, "")


def test_cell_magics_become_the_call_ipython_makes_of_them() -> None:
    from kernel_bridge.executors.aca._once import tag_cell_magic

    assert (
        tag_cell_magic("%%time  -q x\nprint(1)\nx=2", "m('1')")
        == "m('1'); get_ipython().run_cell_magic('time', ' -q x', 'print(1)\\nx=2\\n')"
    )
    assert (
        tag_cell_magic("%%bash", "m('1')") == "m('1'); get_ipython().run_cell_magic('bash', '', '')"
    )
    assert tag_cell_magic("x = 1", "m('1')") == "x = 1"
    assert tag_cell_magic(" %%time\nx", "m('1')") == " %%time\nx"
