"""The output shim's host side: frame parsing, result merging, last-expression wrapping."""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
import zlib

from kernel_bridge.events import ClearOutput, Display, Error, Result, Stream
from kernel_bridge.executors.aca._introspect import introspection_code
from kernel_bridge.executors.aca._results import parse_properties
from kernel_bridge.executors.aca._shim import (
    SESSION_PATH,
    clean_traceback,
    new_nonce,
    session_payload,
    shim_setup_code,
    split_stdout,
    wrap_last_expression,
)
from kernel_bridge.runtime import LIBRARY_PATH

NONCE = "0123456789abcdef0123456789abcdef"


def frame(payload: dict[str, object], nonce: str = NONCE, lead: str = "\x1e") -> str:
    return f"{lead}KB-OUT {nonce} {json.dumps(payload)}\n"


def test_frames_are_cut_out_in_order_and_text_stays_intact() -> None:
    stdout = (
        "a\nhalf"
        + frame({"t": "display", "data": {"text/html": "<b>x</b>"}, "display_id": "d"})
        + "b\n"
        + frame({"t": "clear", "wait": True}, lead="")  # a dropped \x1e is tolerated
        + frame({"t": "hello", "mode": "plain"})
        + frame({"t": "result", "data": {"text/plain": "1"}, "value": 1}).rstrip("\n")
    )
    events, others = split_stdout(stdout, NONCE)
    assert events == [
        Stream("stdout", "a\nhalf"),
        Display({"text/html": "<b>x</b>"}, {}, "d", False),
        Stream("stdout", "b\n"),
        ClearOutput(True),
        Result({"text/plain": "1"}, {}, 1),
    ]
    assert others == [{"t": "hello", "mode": "plain"}]


def test_foreign_or_broken_frames_stay_text() -> None:
    forged = frame({"t": "display", "data": {"text/plain": "x"}}, nonce="f" * 32)
    broken = f"\x1eKB-OUT {NONCE} {{not json\n"
    crlf = frame({"t": "clear"}).replace("\n", "\r\n")
    events, _ = split_stdout(forged + broken + crlf, NONCE)
    assert events == [Stream("stdout", forged + broken), ClearOutput(False)]
    assert split_stdout(forged, None) == ([Stream("stdout", forged)], [])


def test_framed_result_replaces_the_service_result_and_stderr_goes_before_it() -> None:
    stdout = "x\n" + frame({"t": "result", "data": {"text/plain": "H()", "text/html": "<i>"}})
    parsed = parse_properties(
        {"status": "Success", "stdout": stdout, "stderr": "warn\n", "result": "H()"}, NONCE
    )
    assert parsed.events == [
        Stream("stdout", "x\n"),
        Stream("stderr", "warn\n"),
        Result({"text/plain": "H()", "text/html": "<i>"}),
    ]


def test_service_image_is_dropped_only_when_it_arrived_framed() -> None:
    image = {"type": "image", "format": "png", "base64_data": "AAAA"}
    same = frame({"t": "display", "data": {"image/png": "AAAA", "text/plain": "<Figure>"}})
    parsed = parse_properties(
        {"status": "Success", "stdout": same, "stderr": "", "result": image}, NONCE
    )
    assert [type(e) for e in parsed.events] == [Display]
    other = frame({"t": "display", "data": {"image/png": "BBBB"}})
    parsed = parse_properties(
        {"status": "Success", "stdout": other, "stderr": "", "result": image}, NONCE
    )
    assert [e.data["image/png"] for e in parsed.events if isinstance(e, Display)] == [
        "BBBB",
        "AAAA",
    ]
    # without any framed result, the service's text result is the fallback
    parsed = parse_properties({"status": "Success", "stdout": "", "result": 3}, NONCE)
    assert parsed.events == [Result({"text/plain": "3"}, value_json=3)]


def test_failure_keeps_displays_before_the_error() -> None:
    stdout = frame({"t": "display", "data": {"text/plain": "shown"}})
    parsed = parse_properties(
        {"status": "Failure", "stdout": stdout, "stderr": "Traceback...\nValueError: v\n"},
        NONCE,
    )
    assert isinstance(parsed.events[0], Display) and isinstance(parsed.events[1], Error)
    assert parsed.failed and parsed.error is not None and parsed.error.ename == "ValueError"


def test_wrap_last_expression_keeps_lines_and_skips_what_it_must() -> None:
    prefix = "__import__('_kernel_bridge_output_shim').result("
    assert wrap_last_expression("x = 1\nx") == f"x = 1\n{prefix}x)"
    assert wrap_last_expression("x = 'é'; len(x)  # n") == f"x = 'é'; {prefix}len(x))  # n"
    multi = wrap_last_expression("(1 +\n 2)\n")
    assert multi == f"({prefix}1 +\n 2))\n" and multi.count("\n") == 2
    for unchanged in ("x = 1", "x;", "x ;  # quiet", "%time x", "def f():\n    return 1", ""):
        assert wrap_last_expression(unchanged) == unchanged


def test_clean_traceback_removes_the_wrapper_and_moves_carets() -> None:
    prefix = "__import__('_kernel_bridge_output_shim').result("
    error = Error(
        "ZeroDivisionError",
        "division by zero",
        ["Traceback:", f"    {prefix}1 / 0)", " " * (4 + len(prefix)) + "~~^~~", "Z"],
    )
    assert clean_traceback(error).traceback == ["Traceback:", "    1 / 0", "    ~~^~~", "Z"]


def test_remote_sources_are_python_38_and_setup_never_raises() -> None:
    for path in (LIBRARY_PATH, SESSION_PATH):
        ast.parse(path.read_text(), feature_version=(3, 8))
    ast.parse(introspection_code("complete", "x", 1)[1], feature_version=(3, 8))
    code = shim_setup_code(new_nonce())
    ast.parse(code, feature_version=(3, 8))
    # A plain interpreter: the shim installs, says hello, and leaves no global behind.
    script = (
        "import builtins\n"
        "builtins.display = lambda *a, **k: None\n"
        "before = set(globals())\n"
        + code
        + code  # idempotent
        + "import sys\nm = sys.modules['_kernel_bridge_output_shim']\n"
        "display({'text/plain': 'hi'}, raw=True)\n"
        "assert set(globals()) - before == {'before', 'sys', 'm'}, set(globals()) - before\n"
        "assert m.result(5) is None and _ == 5\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip("\n").split("\n")  # (splitlines would also cut at \x1e)
    assert [json.loads(line.split(" ", 2)[2])["t"] for line in lines] == [
        "hello",
        "hello",
        "display",
        "result",
    ]


def test_the_session_gets_the_runtime_library_itself_in_a_small_payload() -> None:
    version, blob = session_payload()
    library, session = json.loads(zlib.decompress(base64.b64decode(blob)))
    assert library.encode() == LIBRARY_PATH.read_bytes()  # the runtime's file, no copy
    assert session == SESSION_PATH.read_text()
    assert version in shim_setup_code(NONCE) and blob in shim_setup_code(NONCE)
    # one string per session start, well below the inline limits clients meet (~90 KB)
    assert len(shim_setup_code(NONCE)) < 32_000
    # a completion request is a one-line call, not a program
    assert len(introspection_code("complete", "pri", 3)[1]) < 300
