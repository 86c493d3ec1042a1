import gzip
import io
import random
import tarfile

import pytest
from buildkit import Entry, make_tar

from fnmesh.platform.build import BuildLimits, BundleError, check_bundle, read_member

LIMITS = BuildLimits()
FILE = Entry("main.py", b"x = 1\n")


def link(name: str, target: str) -> Entry:
    return Entry(name, type=tarfile.SYMTYPE, linkname=target)


REFUSED = [
    ("absolute", [Entry("/etc/passwd", b"x")], "/etc/passwd", "absolute paths"),
    ("dotdot", [Entry("../x", b"x")], "../x", 'remove the ".." component'),
    ("inner dotdot", [Entry("a/../b", b"x")], "a/../b", 'remove the ".." component'),
    ("backslash", [Entry("a\\b.py", b"x")], "a\\b.py", "backslash"),
    ("nul", [Entry("long", b"x", pax={"path": "a\x00b"})], "a\x00b", "NUL"),
    ("absolute link", [FILE, link("l", "/etc/passwd")], "l", "leaves the bundle"),
    ("escaping link", [Entry("a/b", b""), link("a/l", "../../etc")], "a/l", "leaves the bundle"),
    (
        "escape through a chain of links",
        [FILE, link("b", "."), link("a", "b/..")],
        "a",
        "leaves the bundle",
    ),
    ("link loop", [link("a", "b"), link("b", "a")], "a", "loop"),
    (
        "path through a link",
        [Entry("sub/x", b""), link("d", "sub"), Entry("d/y", b"")],
        "d/y",
        "goes through the symlink",
    ),
    ("file as a folder", [Entry("a", b""), Entry("a/b", b"")], "a/b", "is a file"),
    (
        "hardlink inside",
        [FILE, Entry("copy.py", type=tarfile.LNKTYPE, linkname="main.py")],
        "copy.py",
        "hard links are not accepted",
    ),
    (
        "hardlink outside",
        [Entry("h", type=tarfile.LNKTYPE, linkname="/etc/shadow")],
        "h",
        "hard links are not accepted",
    ),
    ("char device", [Entry("tty", type=tarfile.CHRTYPE)], "tty", "device files"),
    ("block device", [Entry("sda", type=tarfile.BLKTYPE)], "sda", "device files"),
    ("fifo", [Entry("pipe", type=tarfile.FIFOTYPE)], "pipe", "FIFOs"),
    ("duplicate", [FILE, Entry("./main.py", b"y")], "./main.py", "appears twice"),
    ("non-utf8 name", [Entry("caf\udce9.py", b"")], "caf\udce9.py", "not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("entries", "member", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_refused_members_name_the_member_and_the_fix(
    entries: list[Entry], member: str, words: str
) -> None:
    with pytest.raises(BundleError) as caught:
        check_bundle(make_tar(entries), LIMITS)
    assert caught.value.member == member
    assert words in str(caught.value)
    assert str(caught.value).startswith("bundle member ")


def test_the_message_quotes_the_member_like_the_docs_say() -> None:
    with pytest.raises(BundleError) as caught:
        check_bundle(make_tar([Entry("../x", b"")]), LIMITS)
    assert str(caught.value) == (
        'bundle member "../x": paths must stay inside the bundle; remove the ".." component'
    )


def test_a_member_over_the_unpacked_limit_is_refused() -> None:
    limits = BuildLimits(max_unpacked_bytes=1000)
    with pytest.raises(BundleError) as caught:
        check_bundle(make_tar([Entry("big.bin", b"0" * 1001)]), limits)
    assert caught.value.member == "big.bin"
    assert "build.max_unpacked_bytes" in str(caught.value)
    assert ".fnignore" in str(caught.value)


def test_the_total_over_the_unpacked_limit_is_refused() -> None:
    limits = BuildLimits(max_unpacked_bytes=1000)
    entries = [Entry(f"f{i}", b"0" * 300) for i in range(4)]
    with pytest.raises(BundleError) as caught:
        check_bundle(make_tar(entries), limits)
    assert caught.value.member == "f3"
    assert "the bundle is over build.max_unpacked_bytes" in str(caught.value)


def test_too_many_files_are_refused() -> None:
    limits = BuildLimits(max_files=3)
    entries = [Entry(f"f{i}", b"") for i in range(4)]
    assert len(check_bundle(make_tar(entries[:3]), limits)) == 3
    with pytest.raises(BundleError) as caught:
        check_bundle(make_tar(entries), limits)
    assert caught.value.member == "f3"
    assert "more than 3 entries (build.max_files)" in str(caught.value)


def test_a_bundle_over_the_upload_limit_is_refused_before_reading() -> None:
    data = make_tar([Entry("a", b"x" * 5000)], gz=False)
    with pytest.raises(BundleError) as caught:
        check_bundle(data, BuildLimits(max_bundle_bytes=len(data) - 1))
    assert caught.value.member is None
    assert "build.max_bundle_bytes" in str(caught.value)


def test_decompression_is_bounded_even_inside_headers() -> None:
    # a pax header holding 2 MB compresses to almost nothing; reading stops at the limit
    data = make_tar([Entry("a", b"x", pax={"comment": "z" * 2_000_000})])
    assert len(data) < 20_000
    with pytest.raises(BundleError) as caught:
        check_bundle(data, BuildLimits(max_unpacked_bytes=1000, max_files=1))
    assert "unpacks to more than 1000 bytes" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a tar archive at all" * 40,
        make_tar([Entry("main.py", random.Random(1).randbytes(100_000))])[
            :5000
        ],  # truncated gzip stream
        make_tar([Entry("main.py", b"x" * 4000)], gz=False)[:1500],  # truncated tar
        gzip.compress(b"\x00garbage" * 200),
    ],
    ids=["garbage", "truncated gzip", "truncated tar", "gzip of garbage"],
)
def test_corrupt_archives_are_refused(data: bytes) -> None:
    with pytest.raises(BundleError) as caught:
        check_bundle(data, LIMITS)
    assert "not a valid tar or tar.gz archive" in str(caught.value)
    assert caught.value.member is None


def test_an_empty_upload_is_refused() -> None:
    with pytest.raises(BundleError, match="empty"):
        check_bundle(b"", LIMITS)


def test_accepted_bundles_list_normalized_members() -> None:
    entries = [
        Entry("./", type=tarfile.DIRTYPE, mode=0o755),
        Entry("./pkg/", type=tarfile.DIRTYPE, mode=0o755),
        Entry("./pkg//mod.py", b"y = 2\n", mode=0o4755),
        Entry("./main.py", b"x = 1\n"),
        link("./alias.py", "pkg/mod.py"),
        link("pkg/up", "../main.py"),
        link("dangling", "not/there"),
    ]
    for gz in (True, False):
        members = check_bundle(make_tar(entries, gz=gz), LIMITS)
        summary = [(m.path, m.kind, m.executable, m.target) for m in members]
        assert summary == [
            ("pkg", "dir", False, None),
            ("pkg/mod.py", "file", True, None),
            ("main.py", "file", False, None),
            ("alias.py", "symlink", False, "pkg/mod.py"),
            ("pkg/up", "symlink", False, "../main.py"),
            ("dangling", "symlink", False, "not/there"),
        ]


def test_read_member_returns_content_or_none() -> None:
    data = make_tar([Entry("fn.yaml", b"name: a\n"), Entry("conf/real.yaml", b"name: b\n")])
    assert read_member(data, "fn.yaml", LIMITS) == b"name: a\n"
    assert read_member(data, "./conf/real.yaml", LIMITS) == b"name: b\n"
    assert read_member(data, "missing.yaml", LIMITS) is None


def test_read_member_follows_links_inside_the_bundle() -> None:
    data = make_tar([Entry("conf/real.yaml", b"name: b\n"), link("fn.yaml", "conf/real.yaml")])
    assert read_member(data, "fn.yaml", LIMITS) == b"name: b\n"


def test_read_member_refuses_folders_and_bad_bundles() -> None:
    for entries in ([Entry("fn.yaml/inner", b"")], [Entry("fn.yaml", type=tarfile.DIRTYPE)]):
        with pytest.raises(BundleError, match="is a folder"):
            read_member(make_tar(entries), "fn.yaml", LIMITS)
    with pytest.raises(BundleError, match="leaves the bundle"):
        read_member(make_tar([link("fn.yaml", "/etc/passwd")]), "fn.yaml", LIMITS)


def test_an_uncompressed_tar_from_the_tar_tool_layout_is_accepted() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("./" + "deep/" * 30 + "file.py")  # a GNU long name
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    (member,) = check_bundle(raw.getvalue(), LIMITS)
    assert member.path == "deep/" * 30 + "file.py"
    assert member.size == 3
