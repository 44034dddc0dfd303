"""A minimal, valid PDF writer: one A4 page per block of text lines, Helvetica.

Enough to make real PDFs that a viewer opens and that show a document's data, without a
third-party dependency. Text is limited to Latin-1, which covers our sample data.
"""

from __future__ import annotations

from collections.abc import Sequence

_LINES_PER_PAGE = 48


def _escape(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _page_stream(lines: Sequence[str], title: str | None) -> bytes:
    parts = [b"BT", b"/F1 11 Tf", b"14 TL", b"56 790 Td"]
    if title:
        parts += [b"/F1 18 Tf", b"(" + _escape(title) + b") Tj", b"T*", b"T*", b"/F1 11 Tf"]
    for line in lines:
        parts.append(b"(" + _escape(line) + b") Tj T*")
    parts.append(b"ET")
    return b"\n".join(parts)


def render_pdf(lines: Sequence[str], *, title: str | None = None, padding: int = 0) -> bytes:
    """Return the bytes of a PDF showing `lines`; `padding` adds that many bytes of a comment
    stream so benchmarks can produce files of a chosen size."""
    pages = [
        list(lines[i : i + _LINES_PER_PAGE]) for i in range(0, max(len(lines), 1), _LINES_PER_PAGE)
    ]
    objects: list[bytes] = []
    # 1 catalog, 2 pages, 3 font, then per page: page object + content stream.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for index, page_lines in enumerate(pages):
        content = _page_stream(page_lines, title if index == 0 else None)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * index} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    if padding > 0:
        filler = (b"% padding " + b"x" * 69 + b"\n") * (padding // 80 + 1)
        filler = filler[:padding]
        objects.append(b"<< /Length %d >>\nstream\n" % len(filler) + filler + b"\nendstream")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
