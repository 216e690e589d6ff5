"""QR codes as inline SVG (no image file, no CDN, no script): the staff
second-factor enrolment and WeChat Pay's Native payment code."""

from __future__ import annotations

import qrcode
import qrcode.image.svg


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an inline ``<svg>`` element."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")
