"""Kill -9 at random points of an export or an import, many times, cheaply.

A helper process (:class:`Killer`) imports SegStudio once, then forks one child
per trial: the child runs the job, the helper SIGKILLs it after a chosen delay
(a real, asynchronous kill -9: it can land inside a system call) or the child
kills itself with SIGKILL on the n-th call of a chosen function (to hit narrow
windows, e.g. between two renames, every time). Forking from a warmed-up helper
makes a trial cost milliseconds instead of a fresh interpreter's second.

The test asks over a pipe and inspects the files itself between trials.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Outcome:
    """How a trial ended: killed (by the helper or itself) or finished (``rc`` 0 = ok)."""

    killed: bool
    rc: int
    seconds: float
    error: str


class Killer:
    """The helper process; use as a context manager."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.unit.io.datasets.kill9 import serve; serve()"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._read() == {"ready": True}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the kill helper died (exit {self.proc.wait()})")
        return json.loads(line)

    def run(
        self,
        job: str,
        args: dict[str, Any],
        *,
        delay: float | None = None,
        kill_at: tuple[str, int] | None = None,
    ) -> Outcome:
        """Run ``job`` (a name in :data:`JOBS`) in a fresh child; kill it after ``delay``
        seconds, or on call number ``kill_at[1]`` (1-based) of ``kill_at[0]``
        (``"module:attribute"``, killed before the call runs)."""
        assert self.proc.stdin is not None
        cmd = {"job": job, "args": args, "delay": delay, "kill_at": kill_at}
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return Outcome(**self._read())

    def __enter__(self) -> Killer:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# ------------------------------------------------------------------ in the helper


def _export(args: dict[str, Any]) -> None:
    from segstudio.core.jobs import drive
    from segstudio.io.datasets import ExportOptions, export_dataset, swap
    from segstudio.io.project import Project

    swap.EXCHANGE_ENABLED = args.get("exchange", True)
    with Project.open(args["project"]) as project:
        options = ExportOptions(format="index", seed=args["seed"], overwrite=True)
        drive(export_dataset(project, Path(args["out"]), options))


def _import(args: dict[str, Any]) -> None:
    from segstudio.core.jobs import drive
    from segstudio.io.datasets import import_dataset
    from segstudio.io.project import Project

    with Project.open(args["project"]) as project:
        drive(import_dataset(project, Path(args["source"]), "index"))


JOBS = {"export": _export, "import": _import}


def _arm(target: str, n: int) -> None:
    """Make the n-th call of ``module:attribute`` (or ``module:Class.method``) SIGKILL
    this process first."""
    module_name, path = target.split(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for name in parents:  # "Class.method"
        owner = getattr(owner, name)
    real = getattr(owner, attr)
    calls = [0]

    def wrapper(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **kw)

    setattr(owner, attr, wrapper)


def _child(cmd: dict[str, Any], error_fd: int) -> None:
    try:
        if cmd["kill_at"] is not None:
            _arm(*cmd["kill_at"])
        JOBS[cmd["job"]](cmd["args"])
    except BaseException:
        os.write(error_fd, traceback.format_exc().encode()[-4000:])
        os._exit(3)
    os._exit(0)


def serve() -> None:
    """The helper's loop: one JSON command per line in, one :class:`Outcome` per line out."""
    import cv2

    import segstudio.io.datasets
    import segstudio.io.project

    # warmed up: the children start ready
    assert segstudio.io.datasets.import_dataset and segstudio.io.project.Project

    cv2.setNumThreads(1)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        read_fd, write_fd = os.pipe()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(cmd, write_fd)
        os.close(write_fd)
        if cmd["delay"] is not None:
            # not reaped yet, so a child that already ended is a zombie the kill cannot hit
            time.sleep(cmd["delay"])
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - t0
        with os.fdopen(read_fd, "rb") as f:
            error = f.read().decode(errors="replace")
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        rc = 0 if killed else os.waitstatus_to_exitcode(status)
        out = {"killed": killed, "rc": rc, "seconds": seconds, "error": error}
        print(json.dumps(out), flush=True)
