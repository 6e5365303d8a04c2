"""What keeps a run's folder and its results safe: a lock, a status marker, signals and guarded writes.

- :class:`RunFolder` locks ``<run dir>/.lock`` (``flock``: released by the OS even after SIGKILL) for as long as a
  run writes there; a second run into a locked folder, or a new run into a folder that already holds one, is a
  :class:`~torchsnn.errors.RunFolderError` (exit 2), unless that run produced nothing (:data:`REPLACEABLE`).
  ``status.json`` says ``running``, ``complete``, ``failed``, ``interrupted``, ``aborted`` or ``no_prediction``
  (with the exit code), so collectors can skip unfinished runs. A finished run is resumed only to extend it
  (``resumed_with``: a longer ``simulation.duration_ms``); its earlier ``summary.json`` is kept as
  ``summary_<duration>ms.json`` and every status it gets records ``resumed_with``.
- :class:`StopFlag` handles SIGINT / SIGTERM: inside the simulation loop the run finishes its block, checkpoints
  and stops; anywhere else (wiring, theory solve, figures) it stops at once with :class:`Interrupted`; a second
  signal exits immediately (no traceback), leaving the last complete checkpoint.
- :class:`Writes` runs an output step and records an I/O failure instead of losing the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torchsnn.errors import RunFolderError

log = logging.getLogger("torchsnn")
STATUS_FILE = "status.json"
LOCK_FILE = ".lock"
# a previous run that produced nothing (no stable prediction, invalid input found mid-run) may be replaced, e.g. by
# a study that re-runs a point in simulate mode where the theory found no stable state
REPLACEABLE = {("no_prediction", 3), ("failed", 2)}


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The folder's ``status.json`` (None if there is none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


class RunFolder:
    """The lock and status marker of one run folder (a context manager)."""

    def __init__(self, run_dir: Path, resuming: bool = False, resumed_with: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.resuming = resuming
        self.resumed_with = resumed_with or None
        self._fd: int | None = None
        self.started = time.time()

    def __enter__(self) -> RunFolder:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        import fcntl

        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunFolderError(f"cannot write into the run folder {self.run_dir} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunFolderError(
                f"another run (pid {holder}) is writing into {self.run_dir}: choose another hydra.run.dir"
            ) from None
        self._fd = fd
        status = read_status(self.run_dir)
        existing = status is not None or (self.run_dir / "summary.json").exists()
        if status is not None and (status.get("status"), status.get("exit_code")) in REPLACEABLE:
            log.warning("replacing the run in %s (status %s: it produced no results)", self.run_dir, status["status"])
            existing = False
        if existing and not self.resuming:
            self.release()
            what = f"a run with status {status['status']!r}" if status else "the results of a run"
            raise RunFolderError(
                f"{self.run_dir} already holds {what}: choose another hydra.run.dir"
                + ("" if status and status.get("status") == "complete" else ", or continue it with resume=<folder>")
            )
        if self.resuming and status is not None and status.get("status") == "complete":
            if not self.resumed_with:
                self.release()
                raise RunFolderError(
                    f"{self.run_dir} holds a finished run: it is not rewritten (extend it with a longer "
                    "simulation.duration_ms, or start a new run)"
                )
            self._keep_summary()
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.mark("running")

    def _keep_summary(self) -> None:
        """An extended finished run: its summary.json is kept as summary_<old duration>ms.json."""
        old = next(iter(self.resumed_with.values()))[0] if self.resumed_with else 0
        summary = self.run_dir / "summary.json"
        if summary.exists():
            kept = self.run_dir / f"summary_{old:g}ms.json"
            try:
                summary.replace(kept)
            except OSError as exc:
                self.release()
                raise RunFolderError(f"cannot keep the finished run's summary as {kept} ({exc.strerror})") from None
            log.info("the finished run's summary is kept as %s", kept.name)

    def mark(self, status: str, exit_code: int | None = None, **info: Any) -> None:
        """Write ``status.json`` atomically (a failure to write it is logged, never raised)."""
        record = {
            "status": status,
            "exit_code": exit_code,
            "pid": os.getpid(),
            "started_unix_s": self.started,
            "updated_unix_s": time.time(),
            **({"resumed_with": self.resumed_with} if self.resumed_with else {}),
            **info,
        }
        tmp = self.run_dir / (STATUS_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps(record, indent=2, default=str))
            tmp.replace(self.run_dir / STATUS_FILE)
        except OSError as exc:
            log.error("status %s not recorded in %s (%s)", status, self.run_dir, exc)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class Interrupted(BaseException):
    """A stop request outside the simulation loop (BaseException, so no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopFlag:
    """SIGINT / SIGTERM while a run is in progress. ``polling`` is True while the simulation loop asks after every
    block (it then finishes the block, checkpoints and stops); otherwise the first signal raises Interrupted at
    once. A second signal exits at once with 128 + signal, after ``on_exit`` (marking the folder)."""

    def __init__(self, on_exit: Callable[[int], None] | None = None) -> None:
        self.signal: int | None = None
        self.polling = False
        self.on_exit = on_exit
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signal is not None

    def install(self) -> dict[int, Any]:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        if hasattr(signal, "SIGXFSZ"):  # a file-size limit (ulimit -f) then fails the write with EFBIG, not the run
            self._previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        return self._previous

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal is not None:  # a second request: stop now, no traceback; checkpoints are atomic
            with contextlib.suppress(BaseException):
                log.error("second %s: exiting now (the last complete checkpoint is kept)", name)
                if self.on_exit is not None:
                    self.on_exit(signum)
            os._exit(128 + signum)
        self.signal = signum
        if self.polling:
            log.warning("%s received: finishing the current block, then checkpointing", name)
            return
        log.warning("%s received: stopping", name)
        raise Interrupted(signum)


class Writes:
    """Output steps that must not lose the run: an OSError is logged and recorded, the next step still runs."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def attempt(self, what: str, step: Callable[[], Any]) -> bool:
        try:
            step()
        except OSError as exc:
            message = f"{what} not written ({exc})"
            log.error("%s", message)
            self.failures.append(message)
            return False
        return True


def resumed_with(cfg: dict) -> dict[str, list[float]] | None:
    """``{field: [old, new]}`` of a resumed run extended with a longer ``simulation.duration_ms`` (else None)."""
    resume = cfg.get("resume")
    return resume.get("resumed_with") if isinstance(resume, dict) else None


M_ARENA_MAX = -8  # glibc mallopt parameters
M_MMAP_THRESHOLD = -3


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Let every thread allocate from ``arenas`` glibc heap(s) (``mallopt(M_ARENA_MAX)``), unless the user set
    ``MALLOC_ARENA_MAX``. With one arena per thread (glibc's default) the memory a run frees in one thread is not
    reused by another: measured here, a TensorBoard writer thread added ~80 MB of RSS to a 6.2 M-synapse run (203
    MB above the baseline against 121 MB with one arena, estimate 73 MB). Called by ``python -m torchsnn.run``
    before any thread starts; a library user's process keeps its own setting. False where not applied."""
    return _mallopt(M_ARENA_MAX, arenas, unless_env="MALLOC_ARENA_MAX")


def fix_mmap_threshold(threshold_bytes: int = 1 << 20) -> bool:
    """Serve every allocation above ``threshold_bytes`` by its own mapping (``mallopt(M_MMAP_THRESHOLD)``), unless
    the user set ``MALLOC_MMAP_THRESHOLD_``. glibc's default threshold rises (up to 32 MiB) each time a mapped
    block is freed, after which large temporaries come from the heap and stay in the RSS after they are freed: the
    same run then peaks anywhere between its live memory and far above it (benchmarks/README.md, memory probe:
    36-143 MB for one 26 MB segment). Fixed, the peak RSS follows the live tensors the estimate counts. 1 MiB keeps
    small allocations (most of a block step's) on the heap. Called by ``python -m torchsnn.run``; a library
    user's process keeps its own setting. False where not applied."""
    return _mallopt(M_MMAP_THRESHOLD, threshold_bytes, unless_env="MALLOC_MMAP_THRESHOLD_")


def _mallopt(parameter: int, value: int, unless_env: str) -> bool:
    """glibc's ``mallopt(parameter, value)`` unless the user set ``unless_env``; False where not applied (another
    C library, or the user's own setting)."""
    if unless_env in os.environ:
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(parameter, int(value)))
    except (OSError, AttributeError):
        return False
