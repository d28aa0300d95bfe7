"""How many repetitions each section makes: the full run and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Repetition counts of one bench run."""

    warmup_cells: int = 20
    cells: int = 200
    """Section 1: trivial cells per kernel (interleaved)."""
    blocks: int = 40
    """Section 1: execute_code_blocks calls per Docker executor (interleaved)."""
    aca_blocks: int = 100
    """Section 1: execute_code_blocks calls per ACA executor (interleaved)."""
    cold_starts: int = 5
    """Section 2: launches per system."""
    stream_lines: int = 30
    """Section 3: printed lines per cell (one every 0.1 s)."""
    volume_reps: int = 3
    """Section 4: 10 MiB cells per system."""
    png_reps: int = 20
    """Section 4: 1 MB PNG display cells per system."""
    notebooks_single: int = 2
    """Section 5: runs of one notebook alone."""
    notebooks_parallel_reps: int = 1
    """Section 5: runs of 8 notebooks at once."""
    aca_cells: int = 100
    """Section 6: cells (and raw requests) per measurement; counters are per 100 cells."""


FULL = Plan()
QUICK = Plan(
    warmup_cells=5,
    cells=40,
    blocks=10,
    aca_blocks=20,
    cold_starts=2,
    stream_lines=10,
    volume_reps=1,
    png_reps=5,
    notebooks_single=1,
    notebooks_parallel_reps=1,
    aca_cells=100,
)
