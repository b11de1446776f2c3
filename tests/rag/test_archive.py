"""ZIP members are unpacked with counters, never past their declared size; the directory is bounded."""

from __future__ import annotations

import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from chatstream.rag import archive
from chatstream.rag.archive import list_members, member_names, read_member
from chatstream.rag.blocks import UnsupportedFile
from chatstream.rag.extract import detect_kind, extract
from tests.data.hostile import make_corpus as corpus

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "hostile"


def refusal(data: bytes, member: str = "word/document.xml") -> str:
    info = next(m for m in list_members(data, "doc.docx") if m.filename == member)
    with pytest.raises(UnsupportedFile) as caught:
        read_member(data, info, "doc.docx")
    return str(caught.value)


def peak_memory(action: object) -> int:
    assert callable(action)
    tracemalloc.start()
    try:
        action()
    except UnsupportedFile:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_members_unpack_to_their_declared_content() -> None:
    content = corpus.prose(300_000).encode()
    data = corpus.zip_bytes([corpus.deflated("a.xml", content), corpus.stored("b.xml", b"<b/>")])
    members = {m.filename: m for m in list_members(data, "doc.docx")}
    assert read_member(data, members["a.xml"], "doc.docx") == content
    assert read_member(data, members["b.xml"], "doc.docx") == b"<b/>"


def test_a_deflated_member_larger_than_it_declares_is_refused_without_inflating_it() -> None:
    # The review's bomb: a valid small document.xml (size and CRC declared for it) followed by
    # 100 MiB of spaces. zipfile inflated all of it and then handed out the valid start: `ready`.
    bomb = (HOSTILE / "docx_deflate_bomb_lying.docx").read_bytes()
    assert "does not unpack to the 332 bytes it declares" in refusal(bomb)
    with pytest.raises(UnsupportedFile, match="zip bomb"):
        extract(bomb, "docx", name="bomb.docx")
    assert peak_memory(lambda: detect_kind(bomb, "bomb.docx")) < 2_000_000


def test_bzip2_and_lzma_members_are_refused_from_the_directory_alone() -> None:
    for name, method in (("docx_bzip2_bomb.docx", "bzip2"), ("docx_lzma_bomb.docx", "LZMA")):
        bomb = (HOSTILE / name).read_bytes()
        message = refusal(bomb)
        assert f"uses {method} compression, which Word documents never use" in message
        with pytest.raises(UnsupportedFile, match=method):
            extract(bomb, "docx")  # the LZMA one inflated 128 MiB and ended `ready` before
        assert peak_memory(lambda bomb=bomb: detect_kind(bomb, "bomb.docx")) < 2_000_000


def test_a_stored_member_with_more_data_than_declared_is_refused() -> None:
    assert "does not unpack to the 332 bytes" in refusal(
        (HOSTILE / "docx_stored_lying_size.docx").read_bytes()
    )


def test_damaged_members_are_refused() -> None:
    assert "fails its checksum" in refusal((HOSTILE / "docx_bad_crc.docx").read_bytes())
    assert "password-protected" in refusal((HOSTILE / "docx_encrypted_part.docx").read_bytes())
    member = corpus.deflated("word/document.xml", corpus.prose(50_000).encode())
    member.packed = member.packed[: len(member.packed) // 2]  # truncated deflate data
    assert "damaged" in refusal(corpus.zip_bytes([member]))
    member = corpus.deflated("word/document.xml", b"<x/>")
    member.packed = b"\xff" * 40  # not deflate data at all
    assert "damaged" in refusal(corpus.zip_bytes([member]))
    member = corpus.deflated("word/document.xml", b"<x/>")
    data = bytearray(corpus.zip_bytes([member]))
    data[0:4] = b"XXXX"  # the local header is gone
    assert "damaged" in refusal(bytes(data))


def test_the_directory_is_bounded_before_zipfile_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    too_many = (HOSTILE / "docx_too_many_parts.docx").read_bytes()
    with pytest.raises(UnsupportedFile, match="has too many parts"):
        list_members(too_many, "doc.docx")
    # An end record may declare fewer entries than the directory holds: zipfile reads them all.
    lying = bytearray(too_many)
    end = lying.rindex(b"PK\x05\x06")
    lying[end + 8 : end + 12] = (5).to_bytes(2, "little") * 2
    with pytest.raises(UnsupportedFile, match="has too many parts"):
        list_members(bytes(lying), "doc.docx")
    monkeypatch.setattr(archive, "MAX_DIRECTORY_BYTES", 1000)
    assert len(list_members(corpus.plain_docx(), "doc.docx")) == 5  # a directory of ~400 bytes
    with pytest.raises(UnsupportedFile, match="has too many parts"):
        list_members((HOSTILE / "docx_many_parts.docx").read_bytes(), "doc.docx")


def test_member_names_of_a_damaged_or_oversized_archive_are_none() -> None:
    assert member_names(b"PK\x03\x04 not really a zip") == set()
    assert member_names((HOSTILE / "docx_too_many_parts.docx").read_bytes()) == set()
    assert "word/document.xml" in member_names(corpus.plain_docx())


def test_zipfile_never_decompresses(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("zipfile was asked to read a member")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "read", refuse)
    data = corpus.zip_bytes([corpus.deflated("a.xml", b"<a>" * 1000)])
    (member,) = list_members(data, "doc.docx")
    assert read_member(data, member, "doc.docx") == b"<a>" * 1000
    assert zlib.crc32(b"<a>" * 1000) == member.CRC
