"""git's pkt-line framing and a push refused without git's help (pure).

A push request starts with its ref update commands, one pkt-line each, the first carrying
the client's capabilities after a NUL, then a flush packet, then the pack. A push that is
refused before receive-pack sees it (over the size limit) is answered here in the shape
receive-pack would use: a report-status (``unpack <why>``, then ``ng <ref> <why>`` per ref),
inside side-band channel 1 when the client asked for a side band, with the explanation on
channel 2 (shown as ``remote:`` lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

FLUSH = b"0000"
MAX_PKT_DATA = 65516  # 65520 bytes per packet, less the 4-byte length
SMALL_BAND_DATA = 995  # "side-band" (not -64k): 1000 bytes per packet, less length and band


class PktLineError(ValueError):
    pass


def pkt(data: bytes) -> bytes:
    """One data packet."""
    if len(data) > MAX_PKT_DATA:
        raise PktLineError(f"a pkt-line holds at most {MAX_PKT_DATA} bytes, not {len(data)}")
    return b"%04x" % (len(data) + 4) + data


def read_packets(data: bytes) -> Iterator[bytes | None]:
    """The packets at the start of ``data``: bytes for data, None for a flush packet.

    Stops at the end of ``data`` or at a length that is not a pkt-line length (the pack).
    """
    at = 0
    while at + 4 <= len(data):
        try:
            size = int(data[at : at + 4], 16)
        except ValueError:
            return
        if size == 0:
            at += 4
            yield None
            continue
        if size < 4 or at + size > len(data):
            return
        yield data[at + 4 : at + size]
        at += size


@dataclass(frozen=True, slots=True)
class Command:
    old: str
    new: str
    ref: str


@dataclass(frozen=True, slots=True)
class PushHead:
    commands: tuple[Command, ...]
    capabilities: frozenset[str]

    @property
    def side_band(self) -> int:
        """Bytes of data per side-band packet the client accepts (0: no side band)."""
        if "side-band-64k" in self.capabilities:
            return MAX_PKT_DATA - 1
        if "side-band" in self.capabilities:
            return SMALL_BAND_DATA
        return 0


def parse_push_head(data: bytes) -> PushHead:
    """The commands and capabilities at the start of a receive-pack request body."""
    commands: list[Command] = []
    capabilities: frozenset[str] = frozenset()
    for packet in read_packets(data):
        if packet is None:
            break
        line, nul, caps = packet.partition(b"\0")
        if nul and not commands:
            capabilities = frozenset(caps.decode("utf-8", "replace").split())
        parts = line.decode("utf-8", "replace").rstrip("\n").split(" ")
        if len(parts) == 3 and all(parts):
            commands.append(Command(*parts))
    return PushHead(tuple(commands), capabilities)


def band(channel: int, data: bytes, size: int) -> bytes:
    """``data`` on side-band ``channel``, in packets of at most ``size`` data bytes."""
    return b"".join(
        pkt(bytes([channel]) + data[at : at + size]) for at in range(0, len(data), size)
    )


def refuse_push(head: PushHead, reason: str, explanation: Iterable[str] = ()) -> bytes:
    """The whole response body that refuses every ref of the push with ``reason``."""
    one_line = " ".join(reason.split())
    report = pkt(f"unpack {one_line}\n".encode())
    report += b"".join(pkt(f"ng {c.ref} {one_line}\n".encode()) for c in head.commands)
    report += FLUSH
    size = head.side_band
    if not size:
        return report
    message = "".join(f"{line}\n" for line in explanation).encode()
    return (band(2, message, size) if message else b"") + band(1, report, size) + FLUSH
