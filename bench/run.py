"""sophsync benchmarks: prints a table and writes bench/results.json.

Each suite is a module here with ``run(record)``. ``make bench`` runs them all;
``.venv/bin/python bench/run.py --only NAME [--only NAME]`` runs some (the file then holds
those only). Suites: sdk (signing, a connect flow, request latency, parsing, world generation),
web (the dashboard and transactions pages at 100,000 transactions, alone and under
concurrent load), concurrency (500 syncs in one worker process; 1 and 2 procrastinate workers),
imports (200,000 transactions through the importer against raw inserts, SQLite and PostgreSQL),
requests (Sophtron requests per incremental sync against the API's minimum), exports (100,000
transactions to each file format).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import concurrency
import economy
import exports
import imports
import sdk
from common import Record
from rich.console import Console
from rich.table import Table

import web

RESULTS = Path(__file__).with_name("results.json")

#: Every suite, in the order ``make bench`` runs them.
SUITES: dict[str, Any] = {
    "sdk": sdk.run,
    "web": web.run,
    "concurrency": concurrency.run,
    "imports": imports.run,
    "requests": economy.run,
    "exports": exports.run,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SUITES), help="a suite")
    only = parser.parse_args(argv).only
    chosen = only or list(SUITES)
    results: list[dict[str, Any]] = []

    def record(name: str, value: float, unit: str, detail: str) -> None:
        results.append(
            {"benchmark": name, "value": round(value, 3), "unit": unit, "detail": detail}
        )

    recorder: Record = record
    for name in chosen:
        SUITES[name](recorder)

    machine = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "command": (
            "bench/run.py " + " ".join(f"--only {name}" for name in only) if only else "make bench"
        ),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    RESULTS.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    table = Table(title=f"sophsync benchmarks ({machine['platform']}, {machine['cpus']} CPUs)")
    for column in ("Benchmark", "Value", "Unit", "Detail"):
        table.add_column(column, justify="right" if column == "Value" else "left")
    for row in results:
        table.add_row(row["benchmark"], f"{row['value']:,.3f}", row["unit"], row["detail"])
    Console().print(table)
    print(f"Wrote {RESULTS}")  # noqa: T201


if __name__ == "__main__":
    main()
