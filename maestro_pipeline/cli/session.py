"""Ctrl-C for the commands that run the Dagster graph: one line, whatever Dagster has running.

Dagster's in-process executor starts helper processes of its own (a ``tail`` of each step's captured output and a
Python watcher of it). A Ctrl-C at the terminal goes to every process of the foreground group, so those helpers
printed their own ``KeyboardInterrupt`` tracebacks, and Dagster turned the interrupt of the step into a failed run
and the demo went on with the next stage. So these commands run the graph in a child process in a session of its
own, which the terminal's Ctrl-C does not reach: this process catches it, interrupts the child's main process
only (Dagster ends the step and marks the run failed, the lake keeps only completed writes), stops the child's
whole session if it has not ended within ``GRACE_S`` seconds (or at a second Ctrl-C), and prints one line.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading

__all__ = ["GRACE_S", "IN_SESSION_ENV", "in_session", "run_in_own_session"]

#: Set in the child: the command runs the graph itself instead of starting another child.
IN_SESSION_ENV = "MAESTRO_IN_SESSION"
#: Seconds the interrupted child has to end its step before its session is killed.
GRACE_S = 15.0


def in_session() -> bool:
    return os.environ.get(IN_SESSION_ENV) == "1"


def _wait(child: subprocess.Popen) -> int:
    """Wait in short slices: the kernel may hand the terminal's SIGINT to any of this process's threads (polars,
    ccxt start some), and a blocking ``waitpid`` in the main thread would then not see it until the child ends."""
    while True:
        try:
            return child.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel kills it (SIGKILL) when the command that started it dies, even by
    ``kill -9``, so the graph never outlives the command (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_in_own_session(argv: list[str]) -> int:
    """Run ``maestro <argv>`` in a child process in its own session; its exit code, or 130 after Ctrl-C or SIGTERM
    (``timeout``, ``kill``: the child is interrupted the same way)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    child = subprocess.Popen([sys.executable, "-m", "maestro_pipeline.cli", *argv],
                             env={**os.environ, IN_SESSION_ENV: "1"}, start_new_session=True,
                             preexec_fn=_die_with_parent)
    try:
        return _wait(child)
    except KeyboardInterrupt:
        pass
    try:
        child.send_signal(signal.SIGUSR1)   # graph.STOP_SIGNAL: stop at the next run boundary (Dagster may drop a
        child.send_signal(signal.SIGINT)    # SIGINT between steps), and interrupt the running step now
        child.wait(timeout=GRACE_S)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
    print("maestro: interrupted; the lake keeps only completed writes", file=sys.stderr)
    return 130
