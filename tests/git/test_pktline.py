"""pkt-line framing and the refusal of a push that receive-pack never sees."""

from __future__ import annotations

import pytest

from fnmesh.platform.git.pktline import (
    FLUSH,
    Command,
    PktLineError,
    parse_push_head,
    pkt,
    read_packets,
    refuse_push,
)

OLD = "1" * 40
NEW = "2" * 40
ZERO = "0" * 40


def push_body(*commands: tuple[str, str, str], caps: str = "report-status side-band-64k") -> bytes:
    lines = []
    for i, (old, new, ref) in enumerate(commands):
        line = f"{old} {new} {ref}".encode()
        if i == 0:
            line += b"\0" + caps.encode()
        lines.append(pkt(line + b"\n"))
    return b"".join(lines) + FLUSH + b"PACK\x00\x00\x00\x02rest of the pack"


def test_pkt_frames_with_a_hex_length_that_counts_itself() -> None:
    assert pkt(b"hello\n") == b"000ahello\n"
    assert list(read_packets(b"000ahello\n0000")) == [b"hello\n", None]
    with pytest.raises(PktLineError):
        pkt(b"x" * 65517)


def test_reading_stops_at_the_pack_or_a_cut_packet() -> None:
    assert list(read_packets(b"0009abcd\n" + FLUSH + b"PACK....")) == [b"abcd\n", None]
    assert list(read_packets(b"0010abc")) == []


def test_the_commands_and_capabilities_of_a_push() -> None:
    head = parse_push_head(push_body((ZERO, NEW, "refs/heads/main"), (OLD, ZERO, "refs/heads/old")))
    assert head.commands == (
        Command(ZERO, NEW, "refs/heads/main"),
        Command(OLD, ZERO, "refs/heads/old"),
    )
    assert head.capabilities == {"report-status", "side-band-64k"}
    assert head.side_band == 65515


def test_a_refusal_reports_every_ref_inside_the_side_band() -> None:
    head = parse_push_head(push_body((OLD, NEW, "refs/heads/main"), (ZERO, NEW, "refs/tags/v1")))
    body = refuse_push(head, "push over the size limit", ["error: too big", "error: fix it"])
    bands = [p for p in read_packets(body)]
    assert bands[-1] is None
    messages = b"".join(p[1:] for p in bands if p is not None and p[:1] == b"\x02")
    assert messages == b"error: too big\nerror: fix it\n"
    report = b"".join(p[1:] for p in bands if p is not None and p[:1] == b"\x01")
    assert list(read_packets(report)) == [
        b"unpack push over the size limit\n",
        b"ng refs/heads/main push over the size limit\n",
        b"ng refs/tags/v1 push over the size limit\n",
        None,
    ]


def test_without_a_side_band_the_report_is_sent_bare() -> None:
    head = parse_push_head(push_body((OLD, NEW, "refs/heads/main"), caps="report-status"))
    body = refuse_push(head, "too\nbig", ["ignored without a side band"])
    assert list(read_packets(body)) == [b"unpack too big\n", b"ng refs/heads/main too big\n", None]


def test_the_small_side_band_splits_long_reports() -> None:
    commands = [(OLD, NEW, f"refs/heads/branch-{i:03d}") for i in range(40)]
    head = parse_push_head(push_body(*commands, caps="report-status side-band"))
    body = refuse_push(head, "refused")
    packets = [p for p in read_packets(body) if p is not None]
    assert all(len(p) <= 996 for p in packets)
    report = b"".join(p[1:] for p in packets)
    assert len([p for p in read_packets(report) if p and p.startswith(b"ng ")]) == 40
