"""Finding the handlers ``pgstack-run`` runs: files or modules, and what they register."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pgstack.client import JobQueue
from pgstack.dbos import PgStackDBOS
from pgstack.errors import ConfigurationError
from pgstack.registry import HandlerRegistry, default_registry


def import_target(target: str) -> ModuleType:
    """Import ``handlers.py`` (a path) or ``package.module`` (a module name)."""
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if path.is_dir():
            raise ConfigurationError(f"{target} is a directory: give a .py file or a module")
        if not path.is_file():
            raise ConfigurationError(f"no such handlers file: {target}")
        resolved = path.resolve()
        folder = str(resolved.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # so the file can import its neighbours
        # One module per file: named after its path, so two handlers.py of different
        # folders do not replace each other, and a file given twice is imported once.
        digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
        name = f"pgstack_handlers_{path.stem}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name and target.startswith(error.name):
            raise ConfigurationError(f"no such file or module: {target}") from None
        raise


def collect_handlers(modules: list[ModuleType]) -> HandlerRegistry:
    """Handlers of ``@pgstack.job`` plus those registered on queues the modules define."""
    registry = HandlerRegistry()
    registry.merge(default_registry)
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, PgStackDBOS):
                registry.merge(value.queue.registry)
            elif isinstance(value, JobQueue):
                registry.merge(value.registry)
    return registry
