"""Rows, the table, the results file and the table in BENCHMARKS.md."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

MET, NOT_MET, NOT_MEASURED, INFO = "met", "NOT MET", "not measured", "info"


@dataclass
class Row:
    key: str
    title: str
    measured: str = ""
    reference: str = ""
    ratio: str = ""
    target: str = ""
    status: str = INFO
    note: str = ""
    data: dict = field(default_factory=dict)

    def judge(self, ok: bool | None) -> Row:
        self.status = NOT_MEASURED if ok is None else (MET if ok else NOT_MET)
        return self

    def not_measured(self, why: str) -> Row:
        self.status = NOT_MEASURED
        self.measured = f"not measured: {why}"
        return self


def fmt(value, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if abs(value) >= 1000:
            text = f"{value:,.0f}"
        elif abs(value) >= 100:
            text = f"{value:.0f}"
        else:
            text = f"{value:.{digits}f}"
    else:
        text = f"{value:,}"
    return f"{text}{unit}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| # | what | measured (ours) | reference, same run | ratio | target | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows, 1):
        status = f"**{row.status}**" if row.status == NOT_MET else row.status
        measured = row.measured + (f" ({row.note})" if row.note else "")
        cells = [str(i), row.title, measured, row.reference, row.ratio, row.target, status]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def write_results(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "rows": [asdict(r) for r in payload["rows"]]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


BEGIN, END = "<!-- bench:begin (written by make bench) -->", "<!-- bench:end -->"


def update_benchmarks_md(path: Path, section: str) -> bool:
    """Replace the generated section of BENCHMARKS.md; the hand-written text around it stays."""
    if not path.exists():
        return False
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda _m: f"{BEGIN}\n{section}\n{END}", text))
    return True
