"""The terminal side of attach, run and exec: raw mode, stdin, window size, output.

Output goes straight to file descriptors 1 and 2 as it arrives. Stdin is
read in a thread and sent as it comes; at its end the process's stdin is
closed. With a TTY, the client's terminal is put in raw mode (and always
restored) and SIGWINCH sends the new size. Detach keys are recognised by
the agent, which ends the stream with `detached`.
"""

from __future__ import annotations

import os
import signal
import sys
import termios
import threading
import tty as ttymod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kran.client import StreamSession

STDIN, STDOUT, STDERR = 0, 1, 2
_READ_SIZE = 32 * 1024
# Signals docker's --sig-proxy forwards to a container without a TTY.
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of data to fd (a pipe may take less per write)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def terminal_size(fd: int = STDOUT) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on fd, or None when fd is not a terminal."""
    for candidate in (fd, STDIN):
        try:
            size = os.get_terminal_size(candidate)
        except OSError:
            continue
        return size.lines, size.columns
    return None


@contextmanager
def raw_terminal(fd: int, enabled: bool = True) -> Iterator[None]:
    """Put the terminal on fd in raw mode for the block and restore it whatever happens."""
    if not enabled or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        ttymod.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _pump_stdin(session: StreamSession, fd: int) -> None:
    while True:
        try:
            data = os.read(fd, _READ_SIZE)
        except OSError:
            data = b""
        if not data:
            session.close_stdin()
            return
        session.send(data)


@contextmanager
def _signal_handlers(handlers: dict[int, Callable[..., Any]]) -> Iterator[None]:
    """Install signal handlers for the block (main thread only), then the old ones back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def stream(session: StreamSession, *, stdin: bool, tty: bool,
           proxy: Callable[[str], None] | None = None, nudge: bool = False) -> StreamSession:
    """Connect the session to this process's terminal until its output ends.

    stdin: forward our stdin; tty: raw mode and window size; proxy: called
    with a signal name for signals to forward (docker's --sig-proxy), when
    there is no TTY; nudge: first send a size one larger, so a program that
    is already running redraws (as docker attach does). Returns the session.
    """
    handlers: dict[int, Callable[..., Any]] = {}
    size = terminal_size() if tty else None
    if size:
        def on_winch(*_: Any) -> None:
            new = terminal_size()
            if new:
                session.resize(*new)
        handlers[signal.SIGWINCH] = on_winch
        if nudge:
            session.resize(size[0] + 1, size[1] + 1)
        session.resize(*size)
    if proxy is not None and not tty:
        def forward(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            threading.Thread(target=proxy, args=(name,), daemon=True).start()
        handlers.update({signum: forward for signum in PROXIED_SIGNALS})
    with _signal_handlers(handlers), raw_terminal(STDIN, enabled=tty and stdin):
        if stdin:
            threading.Thread(target=_pump_stdin, args=(session, STDIN), daemon=True,
                             name="stdin").start()
        else:
            session.close_stdin()
        for name, data in session:
            # With a TTY the container's stderr is the terminal too.
            write_all(STDERR if name == "stderr" and not tty else STDOUT, data)
    return session


def stdin_is_terminal() -> bool:
    """Whether our stdin is a terminal (docker's CheckTty)."""
    return sys.stdin is not None and sys.stdin.isatty()
