"""Output arrives while the cell runs, from Python, subprocesses and the OS level alike."""

from __future__ import annotations

from _support.kernel_client import run_cell


def test_first_line_arrives_before_cell_finishes(kernel: tuple) -> None:
    _, kc = kernel
    code = "import time\nfor i in range(10):\n    print('tick', i)\n    time.sleep(0.2)\n"
    run = run_cell(kc, code)
    assert run.status == "ok"
    streams = [
        (m, t) for m, t in zip(run.outputs, run.arrivals, strict=True) if m["msg_type"] == "stream"
    ]
    seen = ""
    first_line_at = None
    for msg, arrived in streams:
        seen += msg["content"]["text"]
        if "tick 0\n" in seen:
            first_line_at = arrived
            break
    assert first_line_at is not None
    assert run.stream_text().count("tick") == 10
    first_arrival = first_line_at - run.started
    assert first_arrival < 1.0, f"first line after {first_arrival:.2f} s"
    # the first line came long before the last one: it was not held until the end
    assert streams[-1][1] - first_line_at > 1.0


def test_subprocess_and_os_level_output_reach_the_cell(kernel: tuple) -> None:
    _, kc = kernel
    code = (
        "import os, subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'print(\"from-child\")'], check=True)\n"
        "os.system('echo from-shell')\n"
        "os.write(2, b'from-fd2\\n')\n"
    )
    run = run_cell(kc, code)
    assert run.status == "ok"
    assert "from-child" in run.stream_text("stdout")
    assert "from-shell" in run.stream_text("stdout")
    assert "from-fd2" in run.stream_text("stderr")


def test_rich_outputs_map_onto_iopub(kernel: tuple) -> None:
    _, kc = kernel
    code = (
        "class Card:\n"
        "    def _repr_html_(self):\n"
        "        return '<i>card</i>'\n"
        "    def __repr__(self):\n"
        "        return 'Card()'\n"
        "Card()"
    )
    run = run_cell(kc, code)
    result = run.of_type("execute_result")[0]["content"]
    assert result["data"]["text/html"] == "<i>card</i>"
    assert result["data"]["text/plain"] == "Card()"
    assert result["execution_count"] >= 1
