"""`python -m bench [--no-docs] [name …]`: run the benchmarks (all of bench/bench_*.py by default).

Each benchmark module has `main() -> int` and prints its own figures with the goal and the
comparison it makes, measured side by side in the same run.

What each benchmark prints is also written into docs/performance.md, below its marker
line: the hand-written part above the marker is kept, and each benchmark run gets a
`### bench_name` block (when and where it ran, its output). Naming some benchmarks
replaces only their blocks; the others' stay as they were. `--no-docs` (or
KEEPDESK_BENCH_DOCS=0) leaves the file alone.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import platform
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
MARKER = "<!-- figures below are written by make bench; do not edit -->"
_HEADING = re.compile(r"^### (\S+)\s*$")


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


class Tee:
    """sys.stdout while a benchmark runs: everything is printed live and kept."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def text(self) -> str:
        return "".join(self.parts)

    def __getattr__(self, name: str):     # encoding, isatty, fileno … of the real stream
        return getattr(self.stream, name)


def memory() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    return "memory unknown"


def mariadb() -> str | None:
    server = shutil.which("mariadbd") or shutil.which("mysqld")
    if not server:
        return None
    try:
        out = subprocess.run([server, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"Ver\s+(\d+\.\d+(?:\.\d+)?)", out)
    return f"MariaDB {found.group(1)}" if found else None


def machine() -> str:
    parts = [platform.machine() or "unknown machine", f"{os.cpu_count()} cores", memory(),
             f"Python {platform.python_version()}"]
    database = mariadb()
    if database:
        parts.append(database)
    return ", ".join(parts)


def split(text: str) -> tuple[str, dict[str, str]]:
    """The hand-written part (up to and including the marker) and the blocks below it."""
    found = re.search(rf"^{re.escape(MARKER)}[ \t]*$", text, re.MULTILINE)
    if found is None:
        return text.rstrip("\n") + "\n\n" + MARKER + "\n", {}
    head, tail = text[:found.start()], text[found.end():]
    blocks: dict[str, str] = {}
    name = None
    for line in tail.splitlines(keepends=True):
        heading = _HEADING.match(line)
        if heading:
            name = heading.group(1)
            blocks[name] = line
        elif name is not None:
            blocks[name] += line
    return head + MARKER + "\n", {n: b.strip("\n") + "\n" for n, b in blocks.items()}


def fence(output: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", output)), default=0)
    return "`" * max(3, longest + 1)


def block(name: str, output: str, status: int, when: str, where: str) -> str:
    ticks = fence(output)
    lines = [f"### {name}", "", f"Measured {when} on {where}."]
    if status:
        lines.append(f"`{name}.main()` returned {status}: a goal not met, or an error.")
    lines += ["", f"{ticks}text", output.rstrip("\n"), ticks]
    return "\n".join(lines) + "\n"


def write_docs(results: dict[str, tuple[str, int]], path: Path | None = None) -> None:
    """Replace the blocks of the benchmarks just run; keep everything else. Never raises
    for the file: a docs/ that cannot be written is a warning line."""
    path = path or DOCS
    now = datetime.now(timezone.utc)
    when = now.strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
        head, blocks = split(text)
        for name, (output, status) in results.items():
            blocks[name] = block(name, output, status, when, where)
        order = [n for n in discover() if n in blocks] + sorted(n for n in blocks if n not in discover())
        body = "\n".join(blocks[n] for n in order)
        summary = f"Last written by `make bench` {when} ({', '.join(results)}) on {where}.\n"
        path.write_text(head + "\n" + summary + ("\n" + body if body else ""), encoding="utf-8")
    except OSError as exc:
        print(f"warning: the figures were not written to {path}: {exc}", file=sys.stderr)
        return
    print(f"figures written to {path}")


def main(argv: list[str]) -> int:
    docs = os.environ.get("KEEPDESK_BENCH_DOCS", "1").strip().lower() not in ("0", "no", "off", "false")
    if "--no-docs" in argv:
        docs = False
    names = [a for a in argv if a != "--no-docs"] or discover()
    if not names:
        print("No benchmarks yet (bench/bench_*.py).")
        return 0
    failed = 0
    results: dict[str, tuple[str, int]] = {}
    try:
        for name in names:
            print(f"== {name} ==", flush=True)
            tee = Tee(sys.stdout)
            with contextlib.redirect_stdout(tee):
                status = importlib.import_module(f"bench.{name}").main()
            results[name] = (tee.text(), status if isinstance(status, int) else int(bool(status)))
            failed += bool(status)
    finally:
        if docs and results:
            write_docs(results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
