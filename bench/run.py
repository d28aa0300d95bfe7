"""kernel_bridge benchmarks: ``python bench/run.py [--quick] [--sections 1,2,...]``.

Compares a local ipykernel, the bridge kernel (local, Docker, ACA → emulator) and the
AutoGen (autogen-ext) executors on this machine, interleaving the systems, and writes
bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _env  # noqa: E402
import _s1_latency  # noqa: E402
import _s2_cold  # noqa: E402
import _s3_stream  # noqa: E402
import _s4_volume  # noqa: E402
import _s5_concurrency  # noqa: E402
import _s6_aca  # noqa: E402
import _s7_widgets  # noqa: E402
from _kernel import Kernel  # noqa: E402
from _plan import FULL, QUICK, Plan  # noqa: E402
from _report import Section, render_report  # noqa: E402

SECTIONS: dict[int, Callable[[_env.Workspace, Plan], Section]] = {
    1: _s1_latency.run,
    2: _s2_cold.run,
    3: _s3_stream.run,
    4: _s4_volume.run,
    5: _s5_concurrency.run,
    6: _s6_aca.run,
    7: _s7_widgets.run,
}
NEEDS_DOCKER = {5}
NEEDS_ACA = {6}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (~2 min)")
    parser.add_argument(
        "--sections",
        default="1,2,3,4,5,6,7",
        help="comma-separated section numbers to run (default: all)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE / "RESULTS.md",
        help="where to write the report (default: bench/RESULTS.md)",
    )
    parser.add_argument("--no-docker", action="store_true", help="skip everything Docker")
    parser.add_argument("--no-aca", action="store_true", help="skip everything ACA")
    parser.add_argument(
        "--note",
        default="",
        help="a sentence on the run's conditions, added to the closing note (e.g. what else ran)",
    )
    return parser.parse_args()


def _preflight(use_docker: bool) -> None:
    try:
        import autogen_ext.code_executors.azure
        import autogen_ext.code_executors.docker  # noqa: F401
    except ImportError as exc:
        sys.exit(
            f"bench: AutoGen's executors cannot be imported ({exc}).\n"
            "Install them: pip install -e '.[bench]' aiohttp   (see bench/README.md)"
        )
    if use_docker and not _env.docker_available():
        sys.exit(
            f"bench: no Docker engine, or the image {_env.MINIMAL_IMAGE} is missing.\n"
            "Run: bash .ci/docker-setup.sh   (or pass --no-docker; see bench/README.md)"
        )


def _wait_for_cleanup(before: list[str], limit: float = 15.0) -> tuple[list[str], float]:
    """Poll until no container of the bench is left (up to ``limit`` s): (left, waited)."""
    t0 = time.perf_counter()
    while True:
        left = sorted(set(_env.leftover_containers()) - set(before))
        waited = time.perf_counter() - t0
        if not left or waited > limit:
            return left, waited
        time.sleep(0.1)


def main() -> int:
    """Run the chosen sections and write the report; returns the exit code."""
    args = _parse()
    plan = QUICK if args.quick else FULL
    wanted = sorted({int(s) for s in args.sections.split(",") if s.strip()})
    use_docker = not args.no_docker
    use_aca = not args.no_aca
    _preflight(use_docker)
    leftovers_before = _env.leftover_containers()
    started = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    print(f"bench: preparing kernelspecs{' and the ACA emulator' if use_aca else ''}...")
    ws = _env.prepare(use_docker, use_aca)
    log_dir = ws.root / "logs"
    log_dir.mkdir()
    Kernel.log_dir = log_dir
    sections: list[Section] = []
    failed = False
    try:
        for number in wanted:
            if (number in NEEDS_DOCKER and not use_docker) or (number in NEEDS_ACA and not use_aca):
                need = "Docker" if number in NEEDS_DOCKER else "ACA"
                print(f"bench: section {number} skipped (needs {need})")
                continue
            print(f"bench: section {number}...", flush=True)
            t0 = time.perf_counter()
            try:
                section = SECTIONS[number](ws, plan)
            except Exception:
                failed = True
                text = traceback.format_exc()
                print(text, file=sys.stderr)
                section = Section(f"{number}. (failed)", intro=f"```\n{text}\n```")
            section.seconds = time.perf_counter() - t0
            failed = failed or section.failed
            if use_docker:
                left, waited = _wait_for_cleanup(leftovers_before)
                if left:
                    failed = True
                    section.notes.append(
                        f"**Containers still there {waited:.0f} s after the section: "
                        f"{', '.join(left)}**"
                    )
                elif waited > 0.2:
                    section.notes.append(
                        f"Containers left behind: none, but the last one disappeared only "
                        f"{waited:.1f} s after its kernel's shutdown had returned."
                    )
                else:
                    section.notes.append("Containers left behind: none.")
            sections.append(section)
            print(f"bench: section {number} done in {section.seconds:.0f} s", flush=True)
    finally:
        if failed:
            print(f"bench: kernel logs kept in {log_dir}")
            if ws.emulator is not None:
                ws.emulator.stop()
        else:
            ws.close()
    total = time.perf_counter() - t_start
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    if args.sections != "1,2,3,4,5,6":
        command += f" --sections {shlex.quote(args.sections)}"
    machine = _env.machine_description()
    machine.append(
        (
            "load average (1 min), start / end",
            f"{load_start:.2f} / {os.getloadavg()[0]:.2f} (anything else running shares the "
            "cores; the systems are interleaved so they share it alike)",
        )
    )
    report = render_report(
        command=command,
        machine=machine,
        sections=sections,
        started=started,
        total_seconds=total,
        note=args.note,
    )
    final_left = sorted(set(_env.leftover_containers()) - set(leftovers_before))
    report += (
        "\nContainers of this run left after it (bridge containers carrying "
        f"`{_env.BENCH_ENV_ITEM}`, executors named `{_env.CONTAINER_PREFIX}*`): "
        f"{', '.join(final_left) or 'none'}.\n"
    )
    args.output.write_text(report)
    print(report)
    print(f"bench: wrote {args.output} ({total:.0f} s)")
    return 1 if failed or final_left else 0


if __name__ == "__main__":
    sys.exit(main())
