"""Benchmark reports: rich tables for the terminal and JSON files beside them."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = [
    "fmt_cpu_us",
    "fmt_rate",
    "fmt_ratio",
    "fmt_us",
    "machine_note",
    "print_table",
    "report_doc",
    "write_json",
]


def fmt_us(value: float | None) -> str:
    """Microseconds for a table cell: µs below 10 ms, ms above."""
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f} ms"
    return f"{value:.0f} µs"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def fmt_cpu_us(value: float | None) -> str:
    """CPU-µs per request for a table cell."""
    return "-" if value is None else f"{value:.0f}"


def machine_note() -> str:
    """The caveat every figure carries: everything shares one machine's CPUs."""
    cpus = os.cpu_count() or 0
    return (
        f"All processes (load generator, gateway, pod) share this {cpus}-core machine, so "
        "absolute figures are low and noisy; compare the side-by-side ratios."
    )


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str] = (),
    console: Console | None = None,
) -> None:
    """Print one table with right-aligned figures (first column left), then the notes."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: don't squeeze the table into 80 columns
            console = Console(width=160)
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for note in notes:
        console.print(f"[dim]{note}[/dim]")


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def report_doc(benchmark: str, config: Any, started: float, **figures: Any) -> dict[str, Any]:
    """A benchmark's JSON report: its name, start (Unix seconds), ``config`` (a dataclass with
    a ``json_path``), the machine note, then ``figures``."""
    return {
        "benchmark": benchmark,
        "started_unix": round(started, 3),
        "config": {**asdict(config), "json_path": str(config.json_path)},
        "note": machine_note(),
        **figures,
    }
