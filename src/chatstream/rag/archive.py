"""ZIP archives read without trusting them: a bounded central directory, members unpacked with counters.

A member's declared size is whatever the archive says, and zipfile does not hold a member to it:
it inflates a bzip2 or LZMA member in one call however large the result, and truncates a deflated
one to the declared size only after inflating a whole read (up to a gigabyte). So zipfile is used
here only to list the central directory (names, declared sizes, methods: no decompression), and
members are unpacked by this module: stored or deflated only, inflated in steps of READ_STEP bytes
with a counter that stops one byte past the declared size.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from chatstream.rag.blocks import UnsupportedFile

READ_STEP = 64 * 1024
# A .docx lists one entry per part (each image is a part): a few dozen, a few thousand for a long
# illustrated manual. An entry takes ~100 bytes, so 10,000 of them ~1 MB of directory.
MAX_MEMBERS = 10_000
MAX_DIRECTORY_BYTES = 2 * 1024 * 1024

_END = b"PK\x05\x06"
_END64 = b"PK\x06\x06"
_END64_LOCATOR = b"PK\x06\x07"
_LOCAL_HEADER = b"PK\x03\x04"
_METHODS = {
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "LZMA",
    9: "Deflate64",
    93: "Zstandard",
    95: "XZ",
    98: "PPMd",
}
_ENCRYPTED_FLAG = 0x1
_AES_METHOD = 99  # WinZip AES encryption


def list_members(data: bytes, name: str) -> list[zipfile.ZipInfo]:
    """The members the central directory declares, without unpacking any; UnsupportedFile for a
    damaged archive or a directory over the caps (checked before zipfile parses it)."""
    extent = _directory_extent(data)
    if extent is not None and (extent[0] > MAX_MEMBERS or extent[1] > MAX_DIRECTORY_BYTES):
        raise too_many_parts(name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception:  # zipfile raises BadZipFile, but also struct, value and OS errors on junk
        raise UnsupportedFile(f"{name} is damaged and cannot be read") from None
    if len(members) > MAX_MEMBERS:
        raise too_many_parts(name)
    return members


def too_many_parts(name: str) -> UnsupportedFile:
    return UnsupportedFile(f"{name} has too many parts (at most {MAX_MEMBERS:,} are read)")


def member_names(data: bytes) -> set[str]:
    """The names in the central directory, or none if it is damaged or over the caps."""
    try:
        return {member.filename for member in list_members(data, "")}
    except UnsupportedFile:
        return set()


def check_method(member: zipfile.ZipInfo, name: str) -> None:
    """Refuses a member that is encrypted or packed other than stored or deflated."""
    if member.flag_bits & _ENCRYPTED_FLAG or member.compress_type == _AES_METHOD:
        raise UnsupportedFile(f"{name} is password-protected; upload a copy without a password")
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = _METHODS.get(member.compress_type, f"method {member.compress_type}")
        raise UnsupportedFile(
            f"{name} cannot be read: its part {member.filename} uses {method} compression, "
            "which Word documents never use"
        )


def read_member(data: bytes, member: zipfile.ZipInfo, name: str) -> bytes:
    """The member's content, which must be exactly its declared size and pass its CRC."""
    check_method(member, name)
    start = _data_start(data, member, name)
    packed = memoryview(data)[start : start + member.compress_size]
    if len(packed) != member.compress_size:
        raise UnsupportedFile(f"{name} is damaged and cannot be read")
    if member.compress_type == zipfile.ZIP_STORED:
        content = bytes(packed)
    else:
        content = _inflate(packed, member.file_size, name)
    if len(content) != member.file_size:
        raise UnsupportedFile(
            f"{name} is damaged: {member.filename} does not unpack to the {member.file_size:,} "
            "bytes it declares (a damaged file or a zip bomb)"
        )
    if zlib.crc32(content) != member.CRC:
        raise UnsupportedFile(f"{name} is damaged: {member.filename} fails its checksum")
    return content


def _inflate(packed: memoryview, declared: int, name: str) -> bytes:
    """Raw deflate data inflated READ_STEP bytes at a time, stopping one byte past `declared`: that
    byte is enough to tell that the member is larger than it says."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    try:
        for step in range(0, len(packed), READ_STEP):
            pending: bytes | memoryview = packed[step : step + READ_STEP]
            while pending and not inflater.eof:
                before = len(out)
                out += inflater.decompress(pending, min(declared + 1 - len(out), READ_STEP))
                if len(out) > declared:
                    return bytes(out)
                if len(out) == before and len(inflater.unconsumed_tail) == len(pending):
                    break  # no progress: the data is damaged
                pending = inflater.unconsumed_tail
            if inflater.eof:
                return bytes(out)
    except zlib.error:
        pass
    raise UnsupportedFile(f"{name} is damaged and cannot be read")


def _data_start(data: bytes, member: zipfile.ZipInfo, name: str) -> int:
    """Where the member's data begins: after its local header, whose name and extra field lengths
    may differ from the central directory's."""
    offset = member.header_offset
    if offset < 0 or offset + 30 > len(data) or data[offset : offset + 4] != _LOCAL_HEADER:
        raise UnsupportedFile(f"{name} is damaged and cannot be read")
    name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
    return int(offset + 30 + name_length + extra_length)


def _directory_extent(data: bytes) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory as the end record declares them (ZIP64 too), or
    None when there is no end record (then zipfile refuses the archive)."""
    end = data.rfind(_END, max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        return None
    entries, size = struct.unpack_from("<HI", data, end + 10)
    locator = end - 20
    if (
        (entries == 0xFFFF or size == 0xFFFFFFFF)
        and locator >= 0
        and data[locator : locator + 4] == _END64_LOCATOR
    ):
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if data[record : record + 4] == _END64 and record + 56 <= len(data):
            entries, size = struct.unpack_from("<QQ", data, record + 32)
    return int(entries), int(size)
