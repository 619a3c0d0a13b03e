"""`python -m bench [name …]`: run the benchmarks (all of bench/bench_*.py by default).

Each benchmark module has `main() -> int` and prints its own figures with the goal and the
comparison it makes, measured side by side in the same run.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = argv or discover()
    if not names:
        print("No benchmarks yet (bench/bench_*.py).")
        return 0
    failed = 0
    for name in names:
        print(f"== {name} ==", flush=True)
        failed += bool(importlib.import_module(f"bench.{name}").main())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
