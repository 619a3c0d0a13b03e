"""The tree shows the architecture, and keeps showing it (docs/architecture.md):

    doors ──▶ intake ──▶ jobs ──▶ services ──▶ channels / desks / business APIs

* no module imports a layer above its own, with no exemption; a package's `__main__` is
  the top of the house, imported by nothing, defining nothing;
* services speak no Telegram: they import nothing of `bot/` and return results and notices;
* only the outbox (`bot/outbox.py`) writes a Telegram send to the queue, and only the
  sender (`bot/sender.py`) calls Telegram;
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
    "container": 5,                              # the composition root
    "scripts": 6,                                # workers, the supervisor, periodic jobs
    "doors": 7, "webhook_server": 7, "crm_listener": 7,
    "sandbox": 8,                                # the emulators, the playground, the demo
    "cli": 9,                                    # `python -m bot …` (SPEC §7)
}
TOP = 10                                         # any package's __main__
PACKAGES = ("utils", "models", "crm", "channels", "desks", "bot", "services", "handlers", "apis", "scripts",
            "doors", "sandbox")
TOP_MODULES = ("config.py", "container.py", "webhook_server.py", "crm_listener.py", "cli.py")


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
    if module.endswith(".__main__"):
        return TOP
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


def test_a_packages_main_only_calls_the_command_line():
    """`python -m bot` stays (SPEC §7), but the command line is cli.py, at the top."""
    for path in sorted(ROOT.glob("*/__main__.py")):
        if path.parent.name not in PACKAGES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [], f"{path.relative_to(ROOT)} defines {defined}"
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 12, path


def test_services_speak_no_telegram():
    found = [f"{path.relative_to(ROOT)}:{line} imports {imported}"
             for path in sorted((ROOT / "services").rglob("*.py"))
             for line, imported in imports_of(path)
             if imported.split(".")[0] in ("bot", "telebot", "handlers")]
    assert found == []


def _string_constants(path: Path) -> list[tuple[int, str]]:
    return [(n.lineno, n.value) for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_only_the_outbox_writes_a_telegram_send_to_the_queue():
    """The job kind of a Telegram call is spelled once, in bot/outbox.py; everything else
    that sends uses the outbox's methods (or names its constant, as the job table does)."""
    outside = [f"{path.relative_to(ROOT)}:{line}" for path in product_modules()
               if path.relative_to(ROOT).as_posix() not in ("bot/outbox.py",)
               and not path.relative_to(ROOT).as_posix().startswith("sandbox/")
               for line, value in _string_constants(path) if value == "tg_send"]
    assert outside == []
    queue_writes = []
    for path in product_modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative == "bot/outbox.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr.startswith("enqueue") and any(
                        isinstance(a, ast.Name) and a.id == "SEND_KIND" for a in node.args)):
                queue_writes.append(f"{relative}:{node.lineno}")
    assert queue_writes == []


def _telegram_calls() -> set[str]:
    """TeleBot's methods that call the Bot API (through an apihelper request)."""
    import inspect

    import telebot
    from telebot import apihelper
    requests_made = {name for name, fn in inspect.getmembers(apihelper, inspect.isfunction)
                     if "_make_request(" in inspect.getsource(fn)}
    calls = set()
    for name, fn in inspect.getmembers(telebot.TeleBot, inspect.isfunction):
        source = inspect.getsource(fn)
        if not name.startswith("_") and any(f"apihelper.{r}(" in source for r in requests_made):
            calls.add(name)
    return calls | {f"apihelper.{r}" for r in requests_made}


def test_only_the_sender_calls_telegram():
    """Every Bot API call goes through bot/sender.py (the queued sends, within the limits,
    and `TelegramApi` for the rest). Names that product code defines for itself (a
    channel's `send_message`) are not TeleBot's and are left out."""
    own = {n.name for path in product_modules() for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
           and path.relative_to(ROOT).as_posix() != "bot/sender.py"}
    telegram = _telegram_calls()
    assert {"answer_callback_query", "set_webhook", "get_file", "delete_message"} <= telegram
    outside = []
    for path in product_modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative == "bot/sender.py" or relative.startswith("sandbox/"):
            continue
        if any(imported.startswith("telethon") for _, imported in imports_of(path)):
            continue    # a Telegram account's client (MTProto, channels/tgaccount), not the Bot API
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                dotted = f"{node.func.value.id}.{name}" if isinstance(node.func.value, ast.Name) else ""
                if (name in telegram and name not in own) or dotted in telegram:
                    outside.append(f"{relative}:{node.lineno} {dotted or name}")
    assert outside == []


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
