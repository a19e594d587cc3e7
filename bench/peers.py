"""Installing the peers (and the harness's own venv) under bench/.peers/.

Standard library only: run.py calls ``ensure_harness_venv`` before anything
that needs psycopg.  Each install is skipped while a stamp file records the
same inputs (requirements, lock file, or pgstack's pyproject), so a warm run
installs nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / ".peers"
NODE_DIR = PEERS / "node"
NODE_MODULES = NODE_DIR / "node_modules"
HARNESS_VENV = "venv-harness"
STARTED_ENV = "PGSTACK_BENCH_STARTED"


def venv_python(name: str) -> Path:
    return PEERS / name / "bin" / "python"


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part)
        hasher.update(b"\0")
    return hasher.hexdigest()


def _fresh(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text() == digest


def _run(argv: list[str], cwd: Path | None = None) -> None:
    """Run an installer quietly; show its output only if it fails."""
    print(f"  $ {' '.join(argv)}", file=sys.stderr, flush=True)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"install step failed ({done.returncode}): {' '.join(argv)}")


def install_node() -> None:
    """graphile-worker at the version pinned in bench/node/package-lock.json."""
    manifest = (BENCH / "node" / "package.json").read_bytes()
    lock = (BENCH / "node" / "package-lock.json").read_bytes()
    stamp = PEERS / "node.stamp"
    digest = _digest(manifest, lock)
    if NODE_MODULES.is_dir() and _fresh(stamp, digest):
        return
    print("installing node peers (graphile-worker)", file=sys.stderr)
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / "package.json").write_bytes(manifest)
    (NODE_DIR / "package-lock.json").write_bytes(lock)
    _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR)
    stamp.write_text(digest)


def _venv(name: str) -> None:
    if not venv_python(name).exists():
        _run([sys.executable, "-m", "venv", str(PEERS / name)])


def _pip(name: str, *args: str) -> None:
    _run(
        [str(venv_python(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    )


def install_venv(name: str, requirements: Path) -> None:
    """A venv holding exactly one peer, from its pinned requirements file."""
    stamp = PEERS / f"{name}.stamp"
    digest = _digest(requirements.read_bytes())
    if venv_python(name).exists() and _fresh(stamp, digest):
        return
    print(f"installing {name} from {requirements.name}", file=sys.stderr)
    _venv(name)
    _pip(name, "-r", str(requirements))
    stamp.write_text(digest)


def install_editable(name: str, source: Path) -> None:
    """pgstack from a source tree, editable, so the venv follows the tree's code."""
    stamp = PEERS / f"{name}.stamp"
    digest = _digest(str(source.resolve()).encode(), (source / "pyproject.toml").read_bytes())
    if venv_python(name).exists() and _fresh(stamp, digest):
        return
    print(f"installing pgstack from {source} into {name}", file=sys.stderr)
    _venv(name)
    _pip(name, "-e", str(source))
    stamp.write_text(digest)


def ensure_harness_venv() -> None:
    """Re-execute the calling script inside bench/.peers/venv-harness (psycopg)."""
    python = venv_python(HARNESS_VENV)
    if Path(sys.prefix).resolve() == (PEERS / HARNESS_VENV).resolve():
        return
    os.environ.setdefault(STARTED_ENV, str(time.time()))  # wall time counts this install too
    PEERS.mkdir(parents=True, exist_ok=True)
    install_venv(HARNESS_VENV, BENCH / "requirements" / "harness.txt")
    os.execv(str(python), [str(python), *sys.argv])


def started_at() -> float:
    """When the run began, before any re-execution (time.time())."""
    return float(os.environ.get(STARTED_ENV, time.time()))


def venv_version(name: str, package: str) -> str:
    probe = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run(
        [str(venv_python(name)), "-c", probe], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"
