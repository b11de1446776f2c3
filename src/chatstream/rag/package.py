"""A .docx as a package of parts: checked from its directory, its XML parts unpacked within caps,
and rebuilt in memory for python-docx.

python-docx unpacks every part it reaches with zipfile, trusting declared sizes, so it is never
given the upload: it reads the package rebuilt here from the parts unpacked and checked by
rag/archive.py, stored uncompressed, so that reading it inflates nothing. Parts that are not XML
(images, embedded files) go in empty: python-docx only needs them to exist, and they are never
unpacked.
"""

from __future__ import annotations

import io
import zipfile

from chatstream.rag.archive import check_method, list_members, read_member
from chatstream.rag.blocks import UnsupportedFile

MAIN_PART = "word/document.xml"
# Word's document.xml for a 1,000-page text is ~20 MB; the other XML parts (styles, numbering,
# headers, footnotes, comments) are much smaller.
MAX_PART_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = 100 * 1024 * 1024  # all XML parts together

_XML_SUFFIXES = (".xml", ".rels")


def check_listing(members: list[zipfile.ZipInfo], name: str) -> None:
    """Refuses, from the central directory alone, a package whose XML parts declare more than the
    caps or that uses compression Word never writes."""
    total = 0
    for member in members:
        check_method(member, name)
        if _is_xml(member):
            total += member.file_size
            if member.file_size > MAX_PART_BYTES or total > MAX_UNPACKED_BYTES:
                raise UnsupportedFile(f"{name} is too large once unpacked")


def unpacked_parts(data: bytes, name: str) -> dict[str, bytes]:
    """Every part by name: XML parts unpacked and checked (size, CRC), the others empty."""
    members = list_members(data, name)
    if MAIN_PART not in {member.filename for member in members}:
        raise UnsupportedFile(f"{name} is not a Word document (.docx): it has no {MAIN_PART}")
    check_listing(members, name)
    return {
        member.filename: read_member(data, member, name) if _is_xml(member) else b""
        for member in members
        if member.filename and not member.filename.endswith("/")  # not is_dir(): "" raises IndexError
    }


def rebuilt_package(data: bytes, name: str) -> io.BytesIO:
    """The package as python-docx should read it: the checked parts, stored uncompressed."""
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w", zipfile.ZIP_STORED) as rebuilt:
        for part, content in unpacked_parts(data, name).items():
            rebuilt.writestr(part, content)
    package.seek(0)
    return package


def _is_xml(member: zipfile.ZipInfo) -> bool:
    return member.filename.lower().endswith(_XML_SUFFIXES)
