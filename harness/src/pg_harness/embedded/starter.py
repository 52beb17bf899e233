"""Tells the wrapper that the process that started it is going away, so its command stops.

Sent SIGTERM, GNU make passes it on to its children, the wrapper among them. Sent SIGINT,
SIGHUP or SIGQUIT on its own (by a process manager or an IDE's stop button; Ctrl-C goes to
the whole foreground group instead), it passes nothing on and waits for its children
forever: `make run` would never end. No system call tells a child that its parent got a
signal, but /proc shows what make does with one: its handler sets the signal back to the
default action and, while it waits, keeps it blocked, to die of it once the children are
gone. A signal that an ancestor caught when we started, now blocked and no longer caught,
is that. Every ancestor in our session is watched, so a shell between make and us (make
hands a recipe line with quotes or `$` to /bin/sh) changes nothing. The parent is also
watched for its end: make killed outright, or that shell ended by make's SIGTERM.
"""

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pg_harness.processes import stat_fields

# The signals GNU make dies of once its children are gone (its fatal_error_signal()).
_FATAL = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_POLL_SECONDS = 0.2


def _bit(signo: signal.Signals) -> int:
    return 1 << (signo - 1)  # as /proc/PID/status writes signal masks


_FATAL_BITS = sum(_bit(signo) for signo in _FATAL)


@dataclass(frozen=True)
class _Ancestor:
    pid: int
    started: str  # its start time: a later process given the same pid is not it
    caught: int  # the fatal signals it had a handler for when we started


def watch_starter(stop: Callable[[signal.Signals], None]) -> None:
    """Call `stop(signal)` once, from a thread of its own, when our starter goes away:
    SIGINT if it is dying of SIGINT (what Ctrl-C would have given the command), else SIGTERM."""
    watching = (os.getppid(), _ancestors(), stop)
    threading.Thread(target=_watch, args=watching, daemon=True, name="starter").start()


def _watch(parent: int, ancestors: list[_Ancestor], stop: Callable[[signal.Signals], None]) -> None:
    dying = 0
    while True:
        time.sleep(_POLL_SECONDS)
        if os.getppid() != parent:  # we were handed to another: the parent has ended
            stop(signal.SIGTERM)
            return
        now = 0
        for ancestor in ancestors:
            now |= _dying_of(ancestor)
        # Seen twice in a row: a shell resets the handlers of each command it starts, but
        # never keeps a signal blocked for long.
        if confirmed := dying & now:
            stop(signal.SIGINT if confirmed & _bit(signal.SIGINT) else signal.SIGTERM)
            return
        dying = now


def _ancestors() -> list[_Ancestor]:
    """Our parent, its parent and so on, as long as they are in our session."""
    found = []
    session = os.getsid(0)
    pid = os.getppid()
    while pid > 1:
        fields = stat_fields(pid)
        masks = _signal_masks(pid)
        if fields is None or masks is None or int(fields[3]) != session:
            break
        found.append(_Ancestor(pid, started=fields[19], caught=masks[1] & _FATAL_BITS))
        pid = int(fields[1])
    return found


def _dying_of(ancestor: _Ancestor) -> int:
    """The fatal signals `ancestor` is handling now, as make does before it dies of one."""
    fields = stat_fields(ancestor.pid)
    masks = _signal_masks(ancestor.pid)
    if fields is None or masks is None or fields[19] != ancestor.started:
        return 0
    blocked, caught = masks
    return ancestor.caught & blocked & ~caught


def _signal_masks(pid: int) -> tuple[int, int] | None:
    """The signals `pid` blocks and those it has a handler for; None if it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # gone, or hidden from us
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields["SigBlk"], 16), int(fields["SigCgt"], 16)
