"""The tree shows the architecture, and keeps showing it (docs/architecture.md):

    doors ──▶ intake ──▶ jobs ──▶ services ──▶ channels / desks / business APIs

* no module imports a layer above its own;
* SQL lives in `models/` only;
* handler modules register small, module-level functions (decode → service → view).
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from conftest import ROOT

# Lower numbers are lower layers; a module may import its own layer and the ones below.
LAYERS: dict[str, int] = {
    "utils": 0, "config": 0,
    "models": 1,
    "crm": 2, "channels": 2,                     # adapters: the CRM's wire, channels
    "desks": 2,                                  # external desks (Planfix)
    "services": 3,                               # business actions: they decide and return results
    "bot": 4, "handlers": 4, "apis": 4,          # the Telegram desk (renders, sends); business APIs' routes
    "container": 5, "scripts": 5,                # composition, workers, periodic jobs
    "doors": 6, "webhook_server": 6, "crm_listener": 6,
    "sandbox": 7,
}
# Entry points that live in a lower package by name (SPEC §7: `python -m bot …`).
ENTRY_POINTS = {"bot.__main__": 8, "bot.runner": 6}   # `python -m bot demo` runs the sandbox
PACKAGES = ("utils", "models", "crm", "channels", "desks", "bot", "services", "handlers", "apis", "scripts",
            "doors", "sandbox")
TOP_MODULES = ("config.py", "container.py", "webhook_server.py", "crm_listener.py")


def product_modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path
    for name in TOP_MODULES:
        yield ROOT / name


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    if module in ENTRY_POINTS:
        return ENTRY_POINTS[module]
    return LAYERS.get(module.split(".")[0])


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
    return found


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in product_modules():
        name = module_name(path)
        own = layer_of(name)
        for line, imported in imports_of(path):
            theirs = layer_of(imported)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {imported} ({theirs})")
    assert upward == []


SQL = re.compile(r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+(IGNORE\s+)?INTO|UPDATE\s+\w+\s+SET|"
                 r"DELETE\s+FROM|REPLACE\s+INTO|CREATE\s+(TABLE|DATABASE)|ALTER\s+TABLE|"
                 r"DROP\s+(TABLE|DATABASE))\b")


def test_sql_lives_in_models_only():
    outside = []
    for path in product_modules():
        if path.relative_to(ROOT).parts[0] == "models":
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            if token.type == tokenize.STRING and SQL.search(token.string):
                outside.append(f"{path.relative_to(ROOT)}:{token.start[0]}")
    assert outside == []


# Downloads: an address that came from outside is fetched only by utils/fetch.py (public
# addresses or exactly a configured origin, every redirect checked, bounded). Elsewhere no
# streamed GET, no requests.get / urllib opener — except where the host is the operator's own:
OWN_HOST_DOWNLOADS = {"bot/files.py": "Telegram's file host, TELEGRAM_API_URL (getFile gives only a path)"}


def _downloads_in(path: Path) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            dotted = (f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute)
                      and isinstance(func.value, ast.Name) else "")
            streamed = any(k.arg == "stream" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
            if streamed or dotted in ("requests.get", "urllib.request", "request.urlopen", "urllib3.request"):
                found.append(node.lineno)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.startswith("urllib.request") or n == "urlopen" for n in names):
                found.append(node.lineno)
    return found


def test_outside_addresses_are_downloaded_only_by_the_guarded_fetcher():
    elsewhere = []
    for path in product_modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative == "utils/fetch.py" or relative in OWN_HOST_DOWNLOADS or relative.startswith("sandbox/"):
            continue
        elsewhere += [f"{relative}:{line}" for line in _downloads_in(path)]
    assert elsewhere == []


MAX_HANDLER_LINES = 45


@pytest.mark.parametrize("path", sorted((ROOT / "handlers").glob("*.py")), ids=lambda p: p.name)
def test_handler_modules_register_small_module_level_functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for function in functions:
        nested = [n.name for n in ast.walk(function)
                  if isinstance(n, ast.FunctionDef) and n is not function]
        if function.name == "register":
            assert nested == [], f"register() defines handlers inside itself: {nested}"
        length = function.end_lineno - function.lineno + 1
        assert length <= MAX_HANDLER_LINES, f"{function.name} is {length} lines long"
