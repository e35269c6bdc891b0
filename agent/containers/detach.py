"""Detach keys: Docker's --detach-keys syntax and the matcher the stdin relays use.

The agent, not the client, watches the attach/exec stdin stream for the keys
(as dockerd does), so every client detaches the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from kran import errors

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

# "ctrl-@" is NUL, "ctrl-a".."ctrl-z" are 1..26, then ESC, FS, GS, RS, US.
_CONTROL = {f"ctrl-{name}": code for code, name in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}


def parse_detach_keys(spec: str) -> bytes:
    """The byte sequence for a detach-key spec like "ctrl-p,ctrl-q" ("" means the default).

    Each comma-separated key is either one character or a ctrl- combination
    (ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_), as Docker
    accepts them.
    """
    if spec == "":
        spec = DEFAULT_DETACH_KEYS
    codes = bytearray()
    for key in spec.split(","):
        encoded = key.encode()
        if len(encoded) == 1:
            codes += encoded
        elif key in _CONTROL:
            codes.append(_CONTROL[key])
        else:
            raise errors.InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(codes)


class DetachMatcher:
    """Finds the detach sequence in a byte stream that arrives in pieces.

    Bytes that could be the start of the sequence are held back until the
    next piece shows whether they are; if they are not, they are forwarded.
    """

    def __init__(self, keys: bytes):
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """The bytes to forward now, and whether the sequence has been read.

        Once detached, anything after the sequence in `data` is dropped, as
        the stream ends there.
        """
        if not self.keys:
            return data, False
        out = bytearray()
        held = self._held
        for i in range(len(data)):
            held += data[i:i + 1]
            # Forward bytes from the front until what is left could still be the sequence.
            while held and not self.keys.startswith(held):
                out.append(held[0])
                held = held[1:]
            if held == self.keys:
                self._held = b""
                return bytes(out), True
        self._held = held
        return bytes(out), False

    def flush(self) -> bytes:
        """The bytes held back as a possible start of the sequence (at the end of the stream)."""
        held, self._held = self._held, b""
        return held


async def relay_stdin(requests: AsyncIterator[Any], keys: bytes, stdin: bool,
                      write: Callable[[bytes], Awaitable[None]],
                      close_stdin: Callable[[], Awaitable[None]],
                      resize: Callable[[int, int], Awaitable[None]]) -> bool:
    """Forward a client's stdin, less the detach keys, and its resizes until it ends its stream.

    `requests` are AttachRequest or ExecRequest messages (the same oneof);
    returns True when the client detached.
    """
    matcher = DetachMatcher(keys)
    async for request in requests:
        part = request.WhichOneof("part")
        if part == "stdin" and stdin:
            data, detached = matcher.feed(request.stdin)
            await write(data)
            if detached:
                return True
        elif part == "close_stdin" and stdin:
            await write(matcher.flush())
            await close_stdin()
        elif part == "resize":
            await resize(request.resize.height, request.resize.width)
    if stdin:
        await write(matcher.flush())
    return False
