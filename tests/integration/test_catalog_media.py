"""Image jobs on real workers against the image-server stand-in: variants, and each bad image."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from actors.media import generate_image_variants, process_product_images
from jobcore.db import session_scope
from shop.models import Product, ProductImage
from tests.support.catalog import finished, stored_sha
from tests.support.factories import make_product


def _product() -> int:
    with session_scope() as s:
        return make_product(s).id


def test_product_images_become_stored_variants_with_their_dimensions_and_the_product_lists_them(
    catalog, catalog_worker
):
    # Given a product and two source images (a 1600x1200 JPEG, a 400x300 PNG with alpha), and an
    # image server that answers the first request with 503
    images = catalog["images"]
    images.set_faults(mode="http_503", paths=["/images/"], times=1)
    pid = _product()
    urls = [f"{images.url}/images/photo.jpg", f"{images.url}/images/logo.png"]

    # When the product's images are processed
    done = finished(process_product_images.send(pid, urls).message_id)

    # Then the 503 was retried, and every variant is stored with the right size and checksum
    assert done.state == "succeeded" and done.attempts == 2 and images.faults()["injected"] == 1
    with session_scope() as s:
        rows = s.scalars(select(ProductImage).where(ProductImage.product_id == pid)).all()
        listing = s.get(Product, pid).image_urls
    got = {(r.source_url.rsplit("/", 1)[1], r.variant): (r.width, r.height, r.format) for r in rows}
    assert got == {
        ("photo.jpg", "thumb"): (150, 113, "webp"),
        ("photo.jpg", "medium"): (600, 450, "webp"),
        ("photo.jpg", "large"): (1200, 900, "jpg"),
        ("logo.png", "thumb"): (150, 113, "webp"),
        ("logo.png", "medium"): (400, 300, "webp"),
        ("logo.png", "large"): (400, 300, "jpg"),  # never enlarged
    }
    storage = catalog["storage"]
    for row in rows:
        assert stored_sha(storage, row.storage_key) == row.sha256
        with storage.open(row.storage_key) as f:
            image = Image.open(io.BytesIO(f.read()))
            assert (image.size, image.format) == (
                (row.width, row.height),
                "WEBP" if row.format == "webp" else "JPEG",
            )
    assert [entry["source"] for entry in listing] == urls
    assert listing[0]["variants"]["medium"]["width"] == 600

    # And processing them again (a redelivery) rewrites the same objects, adding no rows
    assert finished(process_product_images.send(pid, urls).message_id).state == "succeeded"
    with session_scope() as s:
        assert len(s.scalars(select(ProductImage).where(ProductImage.product_id == pid)).all()) == 6


BAD_IMAGES = {
    "corrupt.jpg": "corrupt image data",
    "bomb.png": "over the 20000000-pixel limit",  # Pillow's decompression-bomb guard
    "large.jpg": "over the 1000000-byte limit",
    "page.html": "content-type 'text/html'",
    "missing.jpg": "answered 404",
}


def test_each_kind_of_bad_image_is_a_permanent_failure_with_a_clear_reason(catalog, catalog_worker):
    # Given one product per bad image; When each is processed
    sent = {}
    for name in BAD_IMAGES:
        pid = _product()
        sent[name] = (
            pid,
            process_product_images.send(pid, [f"{catalog['images'].url}/images/{name}"]).message_id,
        )
    # Then each fails once (no retry) naming the image and the reason, and no product lists an image
    for name, (pid, message_id) in sent.items():
        failed = finished(message_id)
        assert (failed.state, failed.attempts) == ("failed", 1), name
        assert BAD_IMAGES[name] in failed.error and name in failed.error
        with session_scope() as s:
            assert s.get(Product, pid).image_urls == []


def test_variants_of_a_slow_image_are_made_on_request_and_a_bad_request_fails_at_once(
    catalog, catalog_worker
):
    url = f"{catalog['images'].url}/images/slow.jpg?delay=0.5"
    done = finished(generate_image_variants.send(url, ["thumb", "large"]).message_id)
    assert done.state == "succeeded"
    with session_scope() as s:
        rows = s.scalars(select(ProductImage).where(ProductImage.source_url == url)).all()
    assert sorted((r.variant, r.width, r.height) for r in rows) == [
        ("large", 800, 600),
        ("thumb", 150, 113),
    ]
    assert catalog["images"].ledger()["hits"]["slow.jpg"] == 1

    bad = finished(generate_image_variants.send(url, ["poster"]).message_id)
    assert (bad.state, bad.attempts) == ("failed", 1) and "variants must be" in bad.error
    not_http = finished(generate_image_variants.send("file:///etc/passwd", ["thumb"]).message_id)
    assert (not_http.state, not_http.attempts) == ("failed", 1) and "http(s) URL" in not_http.error
