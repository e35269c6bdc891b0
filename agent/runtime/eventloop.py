"""The shim's event loop: epoll, timers and SIGCHLD, without asyncio.

asyncio's machinery (and even the selectors module's) costs an idle shim
pages copied from the forkserver; a shim waits on a handful of fds, which
epoll and a timer list do as well. Callbacks run one at a time on the one
thread. Stdlib only.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable

Callback = Callable[[], None]


class Timer:
    """A callback due at `deadline` (time.monotonic()), until cancelled."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callback):
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    """Readers and writers on fds, timers, and a SIGCHLD callback."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, list[Callback | None]] = {}  # fd -> [reader, writer]
        self._timers: list[Timer] = []

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._set(fd, 0, callback)

    def remove_reader(self, fd: int) -> None:
        self._set(fd, 0, None)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._set(fd, 1, callback)

    def remove_writer(self, fd: int) -> None:
        self._set(fd, 1, None)

    def _set(self, fd: int, slot: int, callback: Callback | None) -> None:
        callbacks = self._callbacks.get(fd)
        if callbacks is None:
            if callback is None:
                return
            callbacks = self._callbacks[fd] = [None, None]
            known = False
        else:
            known = True
        callbacks[slot] = callback
        events = (select.EPOLLIN if callbacks[0] else 0) | (select.EPOLLOUT if callbacks[1] else 0)
        if not events:
            del self._callbacks[fd]
            self._epoll.unregister(fd)
        elif known:
            self._epoll.modify(fd, events)
        else:
            self._epoll.register(fd, events)

    def call_later(self, delay: float, callback: Callback) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        self._timers.append(timer)
        return timer

    def on_sigchld(self, callback: Callback) -> None:
        """Run callback (in the loop) after SIGCHLD; the signal wakes the selector through a pipe."""
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)

        def drain() -> None:
            try:
                while os.read(read_fd, 512):
                    pass
            except BlockingIOError:
                pass
            callback()

        self.add_reader(read_fd, drain)

    def run(self, done: Callable[[], bool]) -> None:
        """Dispatch events until done() is true."""
        while not done():
            self._timers = [t for t in self._timers if not t.cancelled]
            timeout = None
            if self._timers:
                timeout = max(0.0, min(t.deadline for t in self._timers) - time.monotonic())
            for fd, events in self._epoll.poll(-1 if timeout is None else timeout):
                # Hang-up and error wake both sides; an earlier callback may have changed either.
                for slot, wanted in ((0, ~select.EPOLLOUT), (1, ~select.EPOLLIN)):
                    callbacks = self._callbacks.get(fd)
                    if events & wanted and callbacks is not None and callbacks[slot] is not None:
                        callbacks[slot]()
            now = time.monotonic()
            for timer in [t for t in self._timers if t.deadline <= now and not t.cancelled]:
                timer.cancelled = True
                timer.callback()
