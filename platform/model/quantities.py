"""Kubernetes quantities written by people: memory (``256Mi``) and cpu (``500m``, ``0.5``).

Memory is a whole number of bytes: plain (``268435456``), binary suffixes ``Ki Mi Gi Ti``
or decimal ones ``k M G T``. A lower-case ``m`` means *milli* in Kubernetes, so
``256m`` is a quarter of a byte -- a classic slip for ``256Mi`` -- and is refused with
that fix. Cpu is in cores: a number (``0.5``, ``2``) or millicores (``500m``), no finer
than one millicore.

Each parser returns the normalized number or raises ``ValueError`` whose text says what
was given and what to write instead. The formatters give the shortest exact spelling
back (``268435456`` -> ``256Mi``, ``0.5`` -> ``500m``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_MEMORY = re.compile(r"^(?P<n>[0-9]+(\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|k|K|M|G|T)?$")
_MEMORY_UNITS: dict[str | None, int] = {
    None: 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
_CPU = re.compile(r"^(?P<n>[0-9]+(\.[0-9]+)?)(?P<milli>m)?$")
MEMORY_EXAMPLE = "'256Mi', '1Gi' or a number of bytes"
CPU_EXAMPLE = "'500m' (millicores), 0.5 or 2 (cores)"


def parse_memory(value: object) -> int:
    """Bytes in ``value``; ValueError naming the fix when it is not a memory quantity."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a memory size such as {MEMORY_EXAMPLE}, not {value!r}")
    text = str(value).strip()
    match = _MEMORY.match(text)
    if not match:
        if re.match(r"^[0-9.]+m$", text):
            raise ValueError(
                f"{value!r} is milli-bytes ('m' means 1/1000): write {text[:-1]}Mi for mebibytes"
            )
        raise ValueError(f"must be a memory size such as {MEMORY_EXAMPLE}, not {value!r}")
    number = Decimal(match.group("n")) * _MEMORY_UNITS[match.group("unit")]
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes: use a whole number or 'Ki'")
    return int(number)


def parse_cpu(value: object) -> int:
    """Millicores in ``value``; ValueError naming the fix when it is not a cpu quantity."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a cpu amount such as {CPU_EXAMPLE}, not {value!r}")
    match = _CPU.match(str(value).strip())
    try:
        number = Decimal(match.group("n")) if match else None
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        number = None
    if match is None or number is None:
        raise ValueError(f"must be a cpu amount such as {CPU_EXAMPLE}, not {value!r}")
    millis = number if match.group("milli") else number * 1000
    if millis != millis.to_integral_value():
        raise ValueError(f"{value!r} is finer than one millicore: round it to whole millicores")
    return int(millis)


def format_memory(size: int) -> str:
    """The shortest exact spelling of ``size`` bytes: ``256Mi``, ``1Gi``, ``1000``."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        scale = _MEMORY_UNITS[unit]
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def format_cpu(millis: int) -> str:
    """``500m`` below a whole core or between cores, ``2`` for whole cores."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def cores(millis: int) -> float:
    """Millicores as the number of cores resources store (``500`` -> ``0.5``)."""
    return millis / 1000


def millicores(cores_: float) -> int:
    """Stored cores as millicores (``0.5`` -> ``500``)."""
    return round(cores_ * 1000)
