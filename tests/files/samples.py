"""Small real files of each type, and byte sources that behave like uploads."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 1, height: int = 1, seed: int = 0) -> bytes:
    """A valid PNG (grey pixels); `seed` varies the bytes so digests differ."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([seed % 256]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def pdf(text: str = "proof") -> bytes:
    body = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n"
        + f"4 0 obj << /Length {len(body)} >> stream\n".encode()
        + body
        + b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def jpeg() -> bytes:
    # SOI, a JFIF APP0 segment, EOI: enough for a sniffer, which reads the leading bytes
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
ZIP = (
    b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x05\x00\x00\x00a.pdfPK\x05\x06" + b"\x00" * 18
)


class BytesStream:
    """An upload whose bytes are all in memory, read in the sizes asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    async def read(self, size: int) -> bytes:
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk


class GeneratedStream:
    """A stream of `total` bytes made up as it is read: `head`, then zeros. Counts reads.

    Nothing declares its size, so only counting what arrives can stop it.
    """

    def __init__(self, total: int, head: bytes = b"", chunk_cap: int | None = None) -> None:
        self.total = total
        self.head = head
        self.sent = 0
        self.chunk_cap = chunk_cap  # ignore the size asked for and send this many (a liar)

    async def read(self, size: int) -> bytes:
        want = self.chunk_cap if self.chunk_cap is not None else size
        n = min(want, self.total - self.sent)
        if n <= 0:
            return b""
        start = self.sent
        self.sent += n
        if start < len(self.head):
            piece = self.head[start : start + n]
            return piece + bytes(n - len(piece))
        return bytes(n)
