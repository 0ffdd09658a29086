"""QR codes for links: PNG for screens, SVG for print, text for the terminal.

qrcode (and Pillow, which it draws PNGs with) is imported at the first code drawn, not with
this module: a gateway that never draws one is spared its memory (about 5 MB, measured)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import qrcode


def _code(data: str, border: int = 4) -> qrcode.QRCode[Any]:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=border)
    code.add_data(data)
    code.make(fit=True)
    return code


def png(data: str) -> bytes:
    """``data`` as a PNG QR code."""
    out = io.BytesIO()
    _code(data).make_image().save(out)
    return out.getvalue()


def svg(data: str) -> bytes:
    """``data`` as a standalone SVG QR code (scales without blurring)."""
    import qrcode.image.svg

    out = io.BytesIO()
    _code(data).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return out.getvalue()


def text(data: str) -> str:
    """``data`` as a QR code drawn with block characters, for a terminal."""
    out = io.StringIO()
    _code(data, border=2).print_ascii(out=out, invert=True)
    return out.getvalue()
