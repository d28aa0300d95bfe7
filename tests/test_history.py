"""The kernel's own input history (kernel_bridge/_history.py), without a kernel."""

from __future__ import annotations

from kernel_bridge._history import HISTORY_SESSION, CellHistory


def _history(*sources: str) -> CellHistory:
    history = CellHistory()
    for line, source in enumerate(sources, start=1):
        history.record(line, source)
    return history


def test_tail_returns_the_last_cells_in_order() -> None:
    history = _history("a = 1", "b = 2", "a + b")
    assert history.tail(2) == [(HISTORY_SESSION, 2, "b = 2"), (HISTORY_SESSION, 3, "a + b")]
    assert history.tail(10) == history.range(0, 1, None)
    assert history.tail(0) == [] and history.tail(-1) == []


def test_outputs_are_attached_to_the_latest_run_of_a_line() -> None:
    history = _history("1 + 1")
    history.record(1, "2 + 2")  # a re-run keeps the line number (e.g. after %bridge use)
    history.set_output(1, "4")
    assert history.tail(2, output=True) == [
        (HISTORY_SESSION, 1, ("1 + 1", None)),
        (HISTORY_SESSION, 1, ("2 + 2", "4")),
    ]
    history.set_output(99, "nothing to attach to")  # unknown line: ignored
    assert [entry[2] for entry in history.tail(5, output=True)] == [
        ("1 + 1", None),
        ("2 + 2", "4"),
    ]


def test_range_is_half_open_and_only_this_session() -> None:
    history = _history("one", "two", "three", "four")
    assert [e[1] for e in history.range(HISTORY_SESSION, 2, 4)] == [2, 3]
    assert [e[1] for e in history.range(0, 3, None)] == [3, 4]
    assert [e[1] for e in history.range(-1, 1, 2)] == [1]  # negative: this session
    assert history.range(HISTORY_SESSION + 1, 1, None) == []  # an earlier kernel's: none


def test_search_globs_latest_n_and_unique() -> None:
    history = _history("import os", "x = 1", "import sys", "import os", "print(x)")
    assert [e[2] for e in history.search("import *")] == ["import os", "import sys", "import os"]
    assert [e[2] for e in history.search("import *", unique=True)] == ["import sys", "import os"]
    assert [e[1] for e in history.search("import *", n=1)] == [4]
    assert history.search("[") == []  # an unmatched bracket is a literal, not an error
    assert [e[2] for e in history.search("*", unique=True, n=2)] == ["import os", "print(x)"]
