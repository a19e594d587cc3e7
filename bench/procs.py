"""Worker and client processes: start, wait, stop, and read their peak memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from systems.base import Command


class ProcessFailed(RuntimeError):
    pass


def _env(command: Command) -> dict[str, str]:
    env = dict(os.environ)
    env.update(command.env)
    return env


def run_timed(command: Command, log: Path, timeout: float) -> float:
    """Run a client to completion; returns the seconds it timed itself.

    The client prints ``{"seconds": ...}`` as its last line of output.
    """
    with log.open("ab") as err:
        done = subprocess.run(
            list(command.argv),
            cwd=command.cwd,
            env=_env(command),
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=timeout,
            check=False,
        )
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ProcessFailed(f"{command.argv[:3]} exited {done.returncode}; see {log}")
    return float(json.loads(lines[-1])["seconds"])


def run_checked(command: Command, log: Path, timeout: float) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            list(command.argv),
            cwd=command.cwd,
            env=_env(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise ProcessFailed(f"{command.argv[:3]} exited {done.returncode}; see {log}")


class Worker:
    """One worker process of the system under test, started in its own session."""

    def __init__(self, command: Command, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(command.argv),
                cwd=command.cwd,
                env=_env(command),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise ProcessFailed(f"worker exited early with {code}; see {self.log}")

    def peak_rss_mb(self) -> float | None:
        """VmHWM of the worker and its descendants, in MiB (None if unreadable)."""
        total_kb = 0
        found = False
        for pid in _tree(self.process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
                    found = True
        return total_kb / 1024 if found else None

    def terminate(self) -> None:
        """One SIGTERM: a graceful stop (a second one may mean "stop now" to a worker)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit; SIGKILL the worker's own session after ``timeout``."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)


def _tree(root: int) -> list[int]:
    pids = [root]
    index = 0
    while index < len(pids):
        pid = pids[index]
        index += 1
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                pids.extend(int(child) for child in children)
        except OSError:
            continue
    return pids


def stop_all(workers: list[Worker], timeout: float = 30.0) -> None:
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.wait(timeout=max(0.1, deadline - time.monotonic()))
