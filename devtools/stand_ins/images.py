"""Image-server stand-in: serves test images over HTTP, good ones and each kind of bad one.

``/images/photo.jpg`` (1600x1200 JPEG), ``/images/logo.png`` (400x300 PNG with alpha),
``/images/corrupt.jpg`` (JPEG type, broken data), ``/images/bomb.png`` (12000x12000 pixels in a
few kilobytes: a decompression bomb), ``/images/large.jpg`` (about 2 MB of noise),
``/images/page.html`` (wrong content type) and ``/images/slow.jpg?delay=1.5`` (answers late).
The usual faults apply (``/_admin/faults``); ``/_admin/ledger`` counts requests per path.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from typing import Any

from PIL import Image, ImageDraw

from devtools.stand_ins import http_base
from devtools.stand_ins.http_base import App, HttpError, Reply, Request


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def build_images() -> dict[str, tuple[str, bytes]]:
    """name → (content type, body), made once at start."""
    photo = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    ImageDraw.Draw(photo).ellipse((400, 200, 1200, 1000), fill=(200, 40, 40))
    logo = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    ImageDraw.Draw(logo).rectangle((50, 50, 350, 250), fill=(20, 120, 220, 255))
    good = _jpeg(photo)
    corrupt = good[:600] + bytes(range(256)) * 8  # a real header, then nonsense
    noise = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))
    return {
        "photo.jpg": ("image/jpeg", good),
        "logo.png": ("image/png", _png(logo)),
        "corrupt.jpg": ("image/jpeg", corrupt),
        "bomb.png": ("image/png", _png(Image.new("1", (12000, 12000)))),
        "large.jpg": ("image/jpeg", _jpeg(noise, 95)),
        "page.html": ("text/html; charset=utf-8", b"<html><body>not an image</body></html>"),
        "slow.jpg": ("image/jpeg", _jpeg(photo.resize((800, 600)))),
    }


class ImagesApp(App):
    name = "images"

    def __init__(self) -> None:
        super().__init__()
        self.images = build_images()
        self.hits: Counter[str] = Counter()
        self.route("GET", r"/images/(?P<name>[a-z0-9._-]{1,64})", self._image)
        self.route("GET", "/_admin/ledger", self._ledger)

    def reset_state(self) -> None:
        self.hits.clear()

    def _image(self, request: Request, match: Any) -> Reply:
        name = match["name"]
        with self.lock:
            self.hits[name] += 1
        found = self.images.get(name)
        if found is None:
            raise HttpError(404, "no_such_image")
        if name == "slow.jpg":
            try:
                delay = min(float(request.query.get("delay", "1.5")), 30.0)
            except ValueError:
                raise HttpError(400, "invalid_request", "delay must be a number") from None
            self.stopping.wait(delay)
        content_type, body = found
        return Reply(200, body, {"Content-Type": content_type})

    def _ledger(self, request: Request, match: Any) -> Reply:
        with self.lock:
            return Reply(
                200,
                {"hits": dict(self.hits), "sizes": {k: len(v[1]) for k, v in self.images.items()}},
            )


if __name__ == "__main__":
    http_base.main(ImagesApp)
