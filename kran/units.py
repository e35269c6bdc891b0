"""Docker's units (docker/go-units): human sizes and durations, and size parsing.

Kept in the shared core because the CLI and the Docker-shaped views
(`kran.containerinspect`, whose STATUS text is made server-side in Docker)
both print them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
# go-units' sizeRegex: a number, an optional space, a unit letter, then "i" and "b" optional.
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BINARY_MULTIPLIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _scaled(size: float, base: float, units: Sequence[str]) -> tuple[float, str]:
    index = 0
    while size >= base and index < len(units) - 1:
        size /= base
        index += 1
    return size, units[index]


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `precision` significant digits."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL_UNITS)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("7.667GiB")."""
    value, unit = _scaled(float(size), 1024.0, _BINARY_UNITS)
    return f"{value:.4g}{unit}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 weeks"..."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    # Go rounds to the nearest hour (half away from zero) from here on.
    hours = int((seconds + 1800) // 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "512m", "1.5g", "64 KiB", "100" (bytes) -> bytes.

    Units are binary (k = 1024) whatever the spelling; a fraction of a
    byte is dropped. Raises ValueError("invalid size: 'x'") as Docker says it.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    try:
        value = float(match.group(1))
    except ValueError:
        # "1.2.3" passes the pattern, as in go-units, but is not a number.
        raise ValueError(f'strconv.ParseFloat: parsing "{match.group(1)}": invalid syntax') \
            from None
    unit = (match.group(2) or "").lower()
    return int(value * _BINARY_MULTIPLIERS.get(unit, 1))
