"""Product images: download (size limit, content-type check), variants with Pillow, storage.

A corrupt, oversized or non-image download is a ``PermanentError`` naming the URL and the
reason; a timeout or a 5xx is transient (retried). Keys derive from the source URL and the
variant, so a redelivery rewrites the same objects and upserts the same rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from jobcore.errors import InvalidInput, PermanentError, TransientError
from shop.integrations import files, outbound
from shop.settings import current as current_settings

log = logging.getLogger(__name__)
ACCEPTED_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    max_side: int
    format: str  # Pillow format name: WEBP or JPEG
    quality: int

    @property
    def extension(self) -> str:
        return "webp" if self.format == "WEBP" else "jpg"


VARIANTS = {
    v.name: v
    for v in (
        Variant("thumb", 150, "WEBP", 75),
        Variant("medium", 600, "WEBP", 80),
        Variant("large", 1200, "JPEG", 85),
    )
}
DEFAULT_VARIANTS = tuple(VARIANTS)


class ImageRejected(PermanentError):
    """The download is not an image we can use (corrupt, too large, wrong type): fix the source."""


def check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise InvalidInput(
            f"image url must be an http(s) URL of at most 2000 characters, got {url!r:.80}"
        )
    return url


def check_variants(names: Any) -> tuple[Variant, ...]:
    if not isinstance(names, (list, tuple)) or not names or not all(n in VARIANTS for n in names):
        raise InvalidInput(
            f"variants must be a non-empty list of {sorted(VARIANTS)}, got {names!r:.80}"
        )
    return tuple(VARIANTS[n] for n in dict.fromkeys(names))


def download(
    url: str, max_bytes: int, timeout_s: float, policy: outbound.Policy | None = None
) -> bytes:
    """The body of ``url`` if it is an image of at most ``max_bytes``; streamed, so a huge one stops early.

    Every hop (the URL and each redirect) goes through ``policy``: a host off the allow-list or
    resolving to a private, loopback or link-local address is refused (``OutboundRefused``).
    """
    policy = outbound.Policy() if policy is None else policy
    try:
        with outbound.stream(policy, url, httpx.Timeout(timeout_s, connect=2.0)) as r:
            if r.status_code >= 500 or r.status_code in (408, 429):
                raise TransientError(
                    f"image {url!r}: the server answered {r.status_code}; retry later"
                )
            if r.status_code != 200:
                raise ImageRejected(f"image {url!r}: the server answered {r.status_code}")
            ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in ACCEPTED_TYPES:
                raise ImageRejected(
                    f"image {url!r}: content-type {ctype or 'missing'!r} is not one of {sorted(ACCEPTED_TYPES)}"
                )
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ImageRejected(
                    f"image {url!r}: {declared} bytes is over the {max_bytes}-byte limit"
                )
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise ImageRejected(f"image {url!r}: more than the {max_bytes}-byte limit")
            return bytes(body)
    except httpx.TimeoutException as exc:
        raise TransientError(
            f"image {url!r}: timed out ({type(exc).__name__}); retry later"
        ) from exc
    except httpx.TransportError as exc:
        raise TransientError(
            f"image {url!r}: download failed ({type(exc).__name__}); retry later"
        ) from exc


def decode(url: str, data: bytes, max_pixels: int) -> Image.Image:
    """A fully decoded image; corrupt data or more than ``max_pixels`` pixels is refused."""
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's decompression-bomb guard, on
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > max_pixels:
                raise ImageRejected(
                    f"image {url!r}: {probe.width}x{probe.height} is over the {max_pixels}-pixel limit"
                )
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"image {url!r}: over the {max_pixels}-pixel limit ({exc})") from None
    except UnidentifiedImageError as exc:
        raise ImageRejected(f"image {url!r}: not a usable image ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"image {url!r}: corrupt image data ({exc})") from None
    return ImageOps.exif_transpose(image)


def render(image: Image.Image, variant: Variant) -> tuple[bytes, int, int]:
    """One variant: fitted inside ``max_side`` (never enlarged), optimised; returns (bytes, w, h)."""
    copy = image.copy()
    copy.thumbnail((variant.max_side, variant.max_side), Image.Resampling.LANCZOS)
    if variant.format == "JPEG" and copy.mode != "RGB":
        copy = copy.convert("RGB")
    elif copy.mode not in ("RGB", "RGBA"):
        copy = copy.convert(
            "RGBA" if "A" in copy.getbands() or "transparency" in copy.info else "RGB"
        )
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": variant.quality, "optimize": True}
    if variant.format == "JPEG":
        options["progressive"] = True
    else:
        options = {"quality": variant.quality, "method": 4}
    copy.save(out, variant.format, **options)
    return out.getvalue(), copy.width, copy.height


def make_variants(url: str, variants: Sequence[Variant], prefix: str) -> list[dict[str, Any]]:
    """Download ``url`` and store each variant under ``prefix``; returns what was stored."""
    s = current_settings()
    policy = outbound.Policy.parse(s.outbound_allowed_hosts)
    image = decode(
        url, download(url, s.image_max_bytes, s.http_timeout_s, policy), s.image_max_pixels
    )
    storage = files.storage()
    source = hashlib.sha256(url.encode()).hexdigest()[:20]
    stored = []
    for variant in variants:
        data, width, height = render(image, variant)
        obj = storage.put(
            f"{prefix}/{source}/{variant.name}.{variant.extension}",
            data,
            content_type=f"image/{variant.format.lower()}",
        )
        stored.append(
            {
                "variant": variant.name,
                "storage_key": obj.key,
                "url": storage.url(obj.key),
                "width": width,
                "height": height,
                "format": variant.extension,
                "size": obj.size,
                "sha256": obj.sha256,
            }
        )
    log.info("image %s: %r variants stored under %s", source, len(stored), prefix)
    return stored
