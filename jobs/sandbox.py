"""Parse untrusted inputs in a child process, with a time limit that is enforced.

Decoders and score parsers are C code (FFmpeg, symusic) and deep Python (music21) fed with files
from strangers: a hostile or broken file may hang them, or crash the process. A job's actor
therefore never parses in its own process: :class:`Sandbox` keeps one child interpreter
(``python -m jobs.sandbox``), sends it ``fn(*args)`` and waits at most ``seconds``. Past the limit
the child is killed (SIGKILL: a hang in C cannot be interrupted politely) and :class:`InputTimeout`
is raised; a child that dies (a segfault in a decoder) raises :class:`ParserCrashed`. Either way
the actor lives on, the input gets an error row, and the next call starts a fresh child.

Ray runs actor methods outside the main thread, so ``signal.alarm`` is not an option; a process
boundary is also the only limit that holds for C code. Calls and results cross a pipe as pickles
between this process and its own child; nothing read from storage is unpickled.

The child is also fenced in:

- **an empty environment**: only ``PATH``, ``LD_LIBRARY_PATH``, locale, ``TMPDIR``, thread counts
  and the parent's ``sys.path`` (as ``PYTHONPATH``) pass, and ``HOME`` is a fresh folder, so cloud
  and MLflow credentials in the worker's environment are not there to read. The caller reads the
  bytes from storage and hands them over: the child never needs a credential. (A process of the
  same user can still read its parent's ``/proc/PID/environ``, and a root one anything: on a
  cluster, give workers credentials through an instance or pod role rather than environment
  variables too.)
- **limits** (``resource.setrlimit``): address space ``memory_bytes`` (default
  :data:`DEFAULT_MEMORY_GIB`, ``--input-memory-limit``), so a memory bomb fails inside the child
  as a ``MemoryError`` (or kills it) instead of taking the node; and CPU time, ``cpu_seconds`` per
  call (SIGXCPU kills the child past it);
- **a fresh process** after any call that raised (a parser left in an unknown state), except with
  one of the ``rejections`` the caller names (a parser's documented refusal of a bad input, such
  as ``VideoError``), and every ``recycle_every`` calls (leaks in C code do not pile up).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["DEFAULT_LIMIT_S", "DEFAULT_MEMORY_BYTES", "DEFAULT_MEMORY_GIB", "InputTimeout", "ParserCrashed", "Sandbox",
           "add_argument", "limits"]

DEFAULT_LIMIT_S = 600.0  # a 30-minute video parses in about a minute on one core; ten times that is a hang
# Address space, not resident memory: torch and its thread pools reserve far more than they touch.
# Decoding a 30-minute 1080p video at the parse frame rate stays well inside it.
DEFAULT_MEMORY_GIB = 16.0
DEFAULT_MEMORY_BYTES = int(DEFAULT_MEMORY_GIB * 2**30)
RECYCLE_EVERY = 500  # calls served by one child before a fresh one takes over
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "LD_LIBRARY_PATH")  # nothing secret: no credentials, tokens or URIs
START_LIMIT_S = 300.0  # starting the child and importing its modules (slow on a loaded machine)
_HEADER = struct.Struct("<Q")


class InputTimeout(Exception):
    """Parsing one input took longer than the limit; the child doing it was killed."""


class ParserCrashed(Exception):
    """The child process died while parsing one input (e.g. a crash inside a C decoder)."""


def add_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--input-time-limit`` and ``--input-memory-limit`` options of the jobs that parse untrusted files."""
    parser.add_argument("--input-time-limit", type=_seconds, default=DEFAULT_LIMIT_S, metavar="S",
                        help="seconds allowed to decode/parse one input; past it the input gets an error row "
                             "(default: %(default)s)")
    parser.add_argument("--input-memory-limit", type=_seconds, default=DEFAULT_MEMORY_GIB, metavar="GIB",
                        help="address space of the process that parses inputs, GiB; an input that needs more gets "
                             "an error row (default: %(default)g)")


def limits(args: argparse.Namespace) -> dict[str, float]:
    """The sandbox options of a job's arguments, as the keyword arguments of its row workers."""
    return {"input_time_limit": args.input_time_limit, "input_memory_limit": args.input_memory_limit}


def _seconds(text: str) -> float:  # a positive number (of seconds, or of GiB)
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


class Sandbox:
    """One child interpreter that runs ``fn(*args, **kwargs)`` for this process, ``seconds`` at most per call.

    ``preload`` names modules the child imports before the first call, so that the limit counts
    the parsing, not the imports. ``memory_bytes``: the child's address space; ``cpu_seconds``:
    its CPU time per call (default: twice ``seconds``, room for a decoder's second thread);
    ``recycle_every``: calls before a fresh child; ``rejections``: exception types after which the
    child is kept (any other exception replaces it). Not thread-safe: one sandbox per actor.
    """

    def __init__(self, seconds: float = DEFAULT_LIMIT_S, *, preload: Sequence[str] = (),
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, cpu_seconds: float | None = None,
                 recycle_every: int = RECYCLE_EVERY, rejections: tuple[type[Exception], ...] = ()) -> None:
        if not seconds > 0:
            raise ValueError(f"the time limit must be positive, got {seconds}")
        if memory_bytes < 1 << 28 or recycle_every < 1 or (cpu_seconds is not None and not cpu_seconds > 0):
            raise ValueError(f"need memory_bytes >= 256 MiB, recycle_every >= 1 and cpu_seconds > 0, got "
                             f"{memory_bytes}, {recycle_every}, {cpu_seconds}")
        self.seconds = float(seconds)
        self.preload = list(preload)
        self.memory_bytes, self.recycle_every, self.rejections = int(memory_bytes), int(recycle_every), rejections
        self.cpu_seconds = float(cpu_seconds if cpu_seconds is not None else 2 * seconds)
        self._proc: subprocess.Popen[bytes] | None = None
        self._home: str | None = None
        self._served = 0

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        proc = self._child()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc.stdin, (fn.__module__, fn.__qualname__, args, kwargs))
            status, value = _receive(proc.stdout, deadline=time.monotonic() + self.seconds)
        except TimeoutError:
            self.close()
            raise InputTimeout(f"{_name(fn)} took longer than the {self.seconds:g} s limit per input; stopped") from None
        except (EOFError, BrokenPipeError, OSError):
            code = self._reap()
            raise ParserCrashed(f"{_name(fn)} crashed the parser process ({_exit_text(code)})") from None
        self._served += 1
        unknown_state = status == "error" and not isinstance(value, self.rejections)
        if unknown_state or self._served >= self.recycle_every:  # a fresh child for the next call
            self.close()
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        """Kill the child (if any); the next call starts a new one."""
        if self._proc is not None:
            self._proc.kill()
            self._reap()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the child dies with its parent anyway (PR_SET_PDEATHSIG)
            return

    def _child(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._home = tempfile.mkdtemp(prefix="sandbox-home-")
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update(HOME=self._home, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), PYTHONDONTWRITEBYTECODE="1")
        self._proc = subprocess.Popen([sys.executable, "-m", "jobs.sandbox", str(self.memory_bytes), str(self.cpu_seconds),
                                       *self.preload],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, env=env,
                                      cwd=self._home)
        self._served = 0
        assert self._proc.stdout is not None
        try:
            status, value = _receive(self._proc.stdout, deadline=time.monotonic() + START_LIMIT_S)
        except (TimeoutError, EOFError, OSError) as e:
            self.close()
            raise ParserCrashed(f"the parser process did not start ({type(e).__name__})") from None
        if status == "error":
            self.close()
            raise value
        return self._proc

    def _reap(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass  # a pipe to a dead child may fail to flush; it is closed either way
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        import signal  # noqa: PLC0415

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _send(stream: IO[bytes], obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _receive(stream: IO[bytes], deadline: float | None = None) -> Any:
    """One message from ``stream``; TimeoutError past ``deadline``, EOFError if the writer died."""
    fd = stream.fileno()
    header = _read_exactly(fd, _HEADER.size, deadline)
    (size,) = _HEADER.unpack(header)
    return pickle.loads(_read_exactly(fd, size, deadline))  # from our own child process, never from storage


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when its parent dies (a killed actor leaves no orphan)."""
    try:
        import ctypes  # noqa: PLC0415
        import signal  # noqa: PLC0415

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the child still exits when its stdin closes


def _limit(kind: int, soft: int) -> None:
    import resource  # noqa: PLC0415

    _, hard = resource.getrlimit(kind)
    resource.setrlimit(kind, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _cpu_budget(seconds: float) -> None:
    """SIGXCPU (which kills) once this process has used ``seconds`` more CPU time than now."""
    import resource  # noqa: PLC0415

    used = resource.getrusage(resource.RUSAGE_SELF)
    _limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + seconds) + 1)


def _serve(memory_bytes: int, cpu_seconds: float, modules: Sequence[str]) -> None:
    """The child: answer ``(module, name, args, kwargs)`` messages on stdin until it closes, each call
    within ``cpu_seconds`` of CPU time and all within ``memory_bytes`` of address space."""
    import resource  # noqa: PLC0415

    _die_with_parent()
    _limit(resource.RLIMIT_AS, memory_bytes)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the parsers print goes to stderr, never into the reply channel
    sys.stdout = sys.stderr
    try:
        for name in modules:
            importlib.import_module(name)
    except Exception as e:
        _send(replies, ("error", RuntimeError(f"the parser process cannot import {name}: {type(e).__name__}: {e}")))
        return
    _send(replies, ("ok", None))
    while True:
        try:
            module, qualname, args, kwargs = _receive(requests)
        except EOFError:
            return
        try:
            _cpu_budget(cpu_seconds)
            fn: Any = importlib.import_module(module)
            for part in qualname.split("."):
                fn = getattr(fn, part)
            reply = ("ok", fn(*args, **kwargs))
        except Exception as e:
            if hasattr(e, "add_note"):  # Python 3.11+: where it happened, for whoever reads the error
                e.add_note("in the sandbox:\n" + "".join(traceback.format_exception(e)[-4:]).rstrip())
            reply = ("error", e)
        try:
            _send(replies, reply)
        except Exception as e:  # an exception or result that does not pickle: still answer
            _send(replies, ("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]} (unpicklable: {e})")))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:])
