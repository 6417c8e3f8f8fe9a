"""The grader's side of the pipe: start the worker on the user's class, send probes, enforce the time limit.

The user's code runs only in the child (``python -I``: no user site directory, no ``PYTHON*``
variables, the script's directory not on ``sys.path``), in its own process group, which is killed
when the time limit of the whole check runs out or when the check ends.  Replies are JSON; arrays
come back as raw float bytes checked against a dtype whitelist, so nothing the child sends can run
code here.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CLIError

__all__ = ["CheckError", "Target", "parse_target", "Worker", "decode", "encode"]

WORKER = Path(__file__).with_name("worker.py")
#: dtypes a reply may carry (the worker snapshots parameters as float64; the rest are refused)
SAFE_DTYPES = {"<f8": np.float64, "<f4": np.float32, "<f2": np.float16}
#: the longest reply line read (a probe's arrays are a few hundred elements)
MAX_LINE = 1 << 24
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CheckError(CLIError):
    """The class cannot be graded: bad target, code that does not load, a time limit, a crash (exit 2)."""


@dataclass(frozen=True)
class Target:
    """What ``PATH.py:Class``, ``NOTEBOOK.ipynb:Class`` or ``package.module:Class`` names."""

    kind: str  # "file" | "notebook" | "module"
    where: str  # the path (absolute) or the dotted module name
    class_name: str
    text: str

    def spec(self) -> dict:
        key = "module" if self.kind == "module" else "path"
        sys_path = [os.getcwd()] if self.kind == "module" else [str(Path(self.where).parent)]
        return {"kind": self.kind, key: self.where, "class": self.class_name, "sys_path": sys_path}


def parse_target(text: str) -> Target:
    """The target named by ``text``; a path must exist, names must be identifiers (else :class:`CheckError`)."""
    where, sep, name = str(text).rpartition(":")
    if not sep and str(text).endswith((".py", ".ipynb")):
        raise CheckError(f"target {text!r} names no class: write {text}:ClassName")
    if not sep and Path(str(text)).is_dir():
        example = f"{str(text).rstrip('/')}/mine.py:SGD"
        raise CheckError(f"target {text!r} is a directory: name a file and a class, e.g. {example}")
    if not sep or not where or not name:
        raise CheckError(f"target {text!r}: expected PATH.py:Class, NOTEBOOK.ipynb:Class or package.module:Class")
    if not _IDENT.fullmatch(name):
        raise CheckError(f"target {text!r}: {name!r} is not a class name")
    path = Path(where)
    if path.is_dir():
        raise CheckError(f"target {text!r}: {where!r} is a directory, not a .py or .ipynb file")
    if where.endswith((".py", ".ipynb")):
        if not path.is_file():
            raise CheckError(f"target {text!r}: no such file {where!r}")
        return Target("notebook" if where.endswith(".ipynb") else "file", str(path.resolve()), name, text)
    if path.is_file():
        raise CheckError(f"target {text!r}: {where!r} is not a .py or .ipynb file")
    if not all(_IDENT.fullmatch(part) for part in where.split(".")):
        raise CheckError(f"target {text!r}: {where!r} is neither a .py/.ipynb file nor a dotted module name")
    return Target("module", where, name, text)


def encode(a: np.ndarray) -> dict:
    import base64

    a = np.array(a, dtype=np.float64, order="C")  # ascontiguousarray would make a 0-d array 1-d
    return {"dtype": "<f8", "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(d: object) -> np.ndarray | None:
    """The array a reply carries, or ``None`` when it is not a well-formed whitelisted array."""
    import base64
    import binascii

    if not isinstance(d, dict) or d.get("dtype") not in SAFE_DTYPES or not isinstance(d.get("shape"), list):
        return None
    try:
        raw = base64.b64decode(d["data"], validate=True)
        shape = tuple(int(n) for n in d["shape"])
        a = np.frombuffer(raw, dtype=SAFE_DTYPES[d["dtype"]])
        return a.reshape(shape).astype(np.float64)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


class Worker:
    """One child process holding the user's class; :meth:`request` sends a probe and waits for its reply.

    ``timeout`` (seconds) bounds the whole session, loading included; when it runs out the child's
    process group is killed and :class:`CheckError` says what it was doing.
    """

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.deadline = time.monotonic() + float(timeout)
        self.timeout = float(timeout)
        env = dict(os.environ, MPLBACKEND="Agg")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(WORKER), json.dumps(target.spec())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a kill reaches anything it started
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()
        reply = self._receive("loading the class")
        if not reply.get("ok"):
            self.close()
            err = reply.get("error") or {}
            raise CheckError(f"{target.text}: {self._describe(err)}")
        self.info = reply.get("info", {})

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(lambda: self.proc.stdout.readline(MAX_LINE), b""):
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            self._stderr.append(chunk)
            del self._stderr[:-16]  # keep the tail only

    def stderr_tail(self, n: int = 400) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")[-n:].strip()

    @staticmethod
    def _describe(err: dict) -> str:
        kind, message = err.get("type", "error"), err.get("message", "")
        where = err.get("where") or {}
        loc = f" at {os.path.basename(str(where.get('file')))}:{where.get('line')}" if where.get("line") else ""
        own = ("LookupError", "TypeError", "ValueError")  # raised by the worker itself: no place in user code
        if kind == "SyntaxError" or (kind in own and not where):
            loc = ""
        if kind in own and not where:
            return message
        return f"{kind}: {message}{loc}"

    def _receive(self, doing: str) -> dict:
        remaining = self.deadline - time.monotonic()
        try:
            line = self._lines.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            self.close()
            raise CheckError(
                f"{self.target.text}: time limit of {self.timeout:g} s reached while {doing} "
                "(an endless loop? raise the limit with --timeout)"
            ) from None
        if line is None:
            code = self.proc.wait()
            tail = self.stderr_tail()
            self.close()
            raise CheckError(
                f"{self.target.text}: the class's process ended (status {code}) while {doing}"
                + (f"; its last output: {tail}" if tail else "")
            )
        try:
            reply = json.loads(line)
        except ValueError:
            self.close()
            raise CheckError(f"{self.target.text}: unreadable reply while {doing}") from None
        if not isinstance(reply, dict):
            self.close()
            raise CheckError(f"{self.target.text}: unreadable reply while {doing}")
        return reply

    def request(self, probe: dict, doing: str) -> dict:
        """Send one probe request and return the worker's result dict (see :mod:`.worker`)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(probe) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child is gone: _receive reports how it ended
        reply = self._receive(doing)
        if not reply.get("ok"):
            self.close()
            raise CheckError(f"{self.target.text}: while {doing}: {self._describe(reply.get('error') or {})}")
        return reply["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()
        for t in self._threads:  # the pipes reach end-of-file once the group is gone
            t.join(timeout=2.0)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
