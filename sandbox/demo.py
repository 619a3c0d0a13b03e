"""`make demo` / `python -m bot demo`: at this stage, the sandbox alone (see `python -m sandbox`)."""
from __future__ import annotations

from sandbox.__main__ import main as serve_sandbox


def main() -> int:
    return serve_sandbox([])
