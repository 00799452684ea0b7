"""The report as an A4 PDF: the print view of the report page, laid out by WeasyPrint.

The page's own print styles (``@page`` A4 with margins, 第 N 页 / 共 M 页 in the bottom margin, repeated table
headers, rows that never split) do the layout; this module only turns that HTML into PDF bytes, offline:

* nothing is fetched: only ``data:`` URIs are resolved (the static map is embedded in the page), any other URL
  raises :class:`PdfError` — a report must never depend on the network or on files outside it;
* fonts are the system's, found by fontconfig from the page's ``font-family`` list (a CJK font such as
  Noto Sans CJK SC or WenQuanYi Micro Hei must be installed); WeasyPrint embeds the subset of glyphs used.

WeasyPrint needs Pango from the system; it is imported when a PDF is written, so everything else in the report
works without it, and a missing library gives a :class:`PdfError` that says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path


class PdfError(RuntimeError):
    """The PDF cannot be made (WeasyPrint or its system libraries missing, or the page refers to a URL)."""


@dataclass(frozen=True)
class PdfInfo:
    path: Path
    pages: int
    bytes: int


def write_pdf(page_html: str, path: Path) -> PdfInfo:
    """Lay out ``page_html`` (a whole HTML document with print styles) as PDF at ``path``."""
    try:
        import weasyprint
        from weasyprint.urls import FatalURLFetchingError, URLFetcher
    except (ImportError, OSError) as exc:   # OSError: the Pango/HarfBuzz libraries are missing
        raise PdfError(f"cannot write the PDF: WeasyPrint is not usable here ({exc}); install the project's "
                       "dependencies and the system's Pango, or skip the PDF (--no-pdf)") from exc
    fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)   # data: URIs only, anything else fails
    quiet = logging.getLogger("weasyprint")
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # unsupported-CSS notes about the screen styles are not the reader's business
    try:
        document = weasyprint.HTML(string=page_html, url_fetcher=fetcher).render()
        document.write_pdf(path)
    except FatalURLFetchingError as exc:
        raise PdfError(f"the report page refers to something outside it ({exc}); a PDF is made from the page "
                       "alone") from None
    finally:
        quiet.setLevel(level)
    return PdfInfo(Path(path), len(document.pages), Path(path).stat().st_size)


__all__ = ["write_pdf", "PdfError", "PdfInfo"]
