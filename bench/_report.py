"""Statistics and the markdown report the bench writes to bench/RESULTS.md."""

from __future__ import annotations

import contextlib
import statistics
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (nan when there are none)."""
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank) of ``values`` (nan when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    """Format seconds as milliseconds with a sensible precision."""
    if seconds != seconds:  # nan
        return "n/a"
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def secs(seconds: float) -> str:
    """Format seconds with two decimals."""
    return "n/a" if seconds != seconds else f"{seconds:.2f} s"


def anchor_target(
    figure: str, ours: float, anchor: float | None, limit: float, fmt: Callable[[float], str]
) -> Target:
    """A target "bridge docker ÷ ipykernel in container ≤ limit" (None: no anchor measured)."""
    name = f"{figure}: bridge docker vs ipykernel in container"
    if anchor is None:
        return Target(name, "anchor not measured (no Docker)", f"≤ {limit:.2f}x", None)
    return Target(
        name,
        f"{ratio(ours, anchor)} ({fmt(ours)} vs {fmt(anchor)})",
        f"≤ {limit:.2f}x",
        ours <= limit * anchor,
    )


def ratio(a: float, b: float) -> str:
    """``a / b`` formatted as ``1.23x`` (n/a when undefined)."""
    if a != a or b != b or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def mib(nbytes: float) -> str:
    """Bytes as MiB with one decimal."""
    return "n/a" if nbytes != nbytes else f"{nbytes / 2**20:.1f} MiB"


@dataclass
class Target:
    """One target of issue 5, what was measured against it and whether it holds."""

    name: str
    measured: str
    target: str
    met: bool | None
    """None: could not be measured (the reason is in ``measured``)."""


@dataclass
class Table:
    """A markdown table: header cells and rows of cells."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def render(self) -> str:
        """The table as GitHub markdown."""
        lines = [
            "| " + " | ".join(self.header) + " |",
            "|" + "|".join("---" for _ in self.header) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    """One numbered section of the report: an intro, tables, notes and its targets."""

    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    failed: bool = False

    def render(self) -> str:
        """The section as markdown."""
        parts = [f"## {self.title}", ""]
        if self.intro:
            parts += [self.intro, ""]
        for table in self.tables:
            parts += [table.render(), ""]
        parts += [f"- {note}" for note in self.notes]
        if self.notes:
            parts.append("")
        parts.append(f"_(section took {self.seconds:.0f} s)_")
        return "\n".join(parts)


def verdict(met: bool | None) -> str:
    """The cell text for a target's state."""
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def render_report(
    *,
    command: str,
    machine: list[tuple[str, str]],
    sections: Sequence[Section],
    started: str,
    total_seconds: float,
    note: str = "",
) -> str:
    """The whole RESULTS.md: targets (ratios first), the machine, then every section."""
    targets = Table(["target", "measured", "required", "verdict"])
    for section in sections:
        for target in section.targets:
            targets.rows.append([target.name, target.measured, target.target, verdict(target.met)])
    machine_table = Table(["", ""], [[k, v] for k, v in machine])
    parts = [
        "# kernel_bridge benchmark results",
        "",
        f"Written by `{command}` on {started} (took {total_seconds:.0f} s). Medians over "
        "interleaved repetitions (A B C A B C …); see bench/README.md for what each number "
        "means.",
        "",
        "## Targets",
        "",
        targets.render(),
        "",
        "## Machine",
        "",
        machine_table.render(),
        "",
    ]
    for section in sections:
        parts += [section.render(), ""]
    parts += ["## Closing note", "", closing_note(sections, note), ""]
    return "\n".join(parts).rstrip() + "\n"


def closing_note(sections: Sequence[Section], note: str = "") -> str:
    """How many targets this run met, each missed one with its figure, and ``note``."""
    all_targets = [t for s in sections for t in s.targets]
    met = [t for t in all_targets if t.met]
    missed = [t for t in all_targets if t.met is False]
    unmeasured = [t for t in all_targets if t.met is None]
    lines = [
        f"This run met {len(met)} of {len(all_targets)} targets"
        + (f" ({len(unmeasured)} not measured)." if unmeasured else ".")
    ]
    for target in missed:
        lines.append(f"- Missed: {target.name}: {target.measured} (required {target.target}).")
    for target in unmeasured:
        lines.append(f"- Not measured: {target.name}: {target.measured}.")
    lines.append(
        "Figures on a shared 2-core machine move with its load (see the machine table); "
        "ratios come from interleaved runs, so both sides of each ratio saw the same load."
    )
    if note:
        lines.append(f"Run conditions: {note}")
    return "\n".join(lines)


@contextlib.contextmanager
def attempt(section: Section, what: str) -> Iterator[None]:
    """Run a part of a section; a failure becomes a note (with the traceback's last line)."""
    try:
        yield
    except Exception as exc:
        traceback.print_exc()
        section.failed = True
        section.notes.append(f"**{what} failed**: `{type(exc).__name__}: {exc}`")
