"""One instance per process, created on first use, with a reset hook for tests."""
from __future__ import annotations

import threading
from typing import Any


class ProcessSingleton:
    """Base for classes that must exist once per process (SPEC §7: UserManager, LockManager).

    `Cls.instance(*args)` creates the instance on the first call and returns the same one
    afterwards; `Cls.reset()` forgets it (tests, or after a fork).
    """

    _instances: dict[type, Any] = {}
    _guard = threading.Lock()

    @classmethod
    def instance(cls, *args: Any, **kwargs: Any):
        with ProcessSingleton._guard:
            existing = ProcessSingleton._instances.get(cls)
            if existing is None:
                existing = cls(*args, **kwargs)
                ProcessSingleton._instances[cls] = existing
            return existing

    @classmethod
    def reset(cls) -> None:
        with ProcessSingleton._guard:
            ProcessSingleton._instances.pop(cls, None)

    @classmethod
    def reset_all(cls) -> None:
        with ProcessSingleton._guard:
            ProcessSingleton._instances.clear()
