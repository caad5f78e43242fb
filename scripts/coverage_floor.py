#!/usr/bin/env python3
"""Fail when coverage is below its floor, overall or in any one file of the package.

Reads a ``coverage json`` report (branch coverage) and checks every ``.py`` file that
exists under the package directory, migrations excepted, so that new or moved modules are
covered by the rule without listing them anywhere. A file the tests never import is
absent from the report and counts as 0%.

    coverage json -o coverage.json
    python scripts/coverage_floor.py coverage.json --overall 91 --per-file 80
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def package_files(package: Path) -> list[str]:
    """Every Python file under ``package``, relative and POSIX-style, migrations excepted."""
    return sorted(
        path.as_posix()
        for path in package.rglob("*.py")
        if "migrations" not in path.parts and "__pycache__" not in path.parts
    )


def percentages(report: dict[str, Any]) -> dict[str, float]:
    """``{relative path: percent covered}`` from a ``coverage json`` report."""
    result: dict[str, float] = {}
    for name, data in report["files"].items():
        path = Path(name)
        if path.is_absolute():
            try:
                path = path.relative_to(Path.cwd())
            except ValueError:
                continue
        result[path.as_posix()] = float(data["summary"]["percent_covered"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the coverage json report")
    parser.add_argument("--package", type=Path, default=Path("django_ssf"))
    parser.add_argument("--overall", type=float, required=True, help="overall floor, percent")
    parser.add_argument("--per-file", type=float, required=True, help="per-file floor, percent")
    args = parser.parse_args(argv)

    report = json.loads(args.report.read_text())
    overall = float(report["totals"]["percent_covered"])
    covered = percentages(report)
    files = package_files(args.package)
    if not files:
        print(f"no Python files under {args.package}/", file=sys.stderr)
        return 1

    per_file = [(covered.get(name, 0.0), name) for name in files]
    below = [(percent, name) for percent, name in per_file if percent < args.per_file]
    lowest = min(per_file)
    print(
        f"coverage: {overall:.1f}% overall (floor {args.overall:g}%), {len(files)} files, "
        f"lowest {lowest[0]:.1f}% ({lowest[1]}; floor {args.per_file:g}% per file)"
    )
    failed = False
    if overall < args.overall:
        print(f"FAIL: overall coverage {overall:.1f}% is below {args.overall:g}%", file=sys.stderr)
        failed = True
    for percent, name in sorted(below):
        print(f"FAIL: {name} is at {percent:.1f}%, below {args.per_file:g}%", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
