"""Attach processed images to products: rows per stored variant, and the product's image URLs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.catalog import images
from shop.models import Product, ProductImage

MAX_IMAGES = 20


def _record(product_id: int | None, url: str, stored: list[dict[str, Any]]) -> None:
    with session_scope() as s:
        for row in stored:
            stmt = insert(ProductImage).values(product_id=product_id, source_url=url, **row)
            s.execute(
                stmt.on_conflict_do_update(
                    constraint="uq_product_images_storage_key",
                    set_={
                        k: stmt.excluded[k]
                        for k in ("product_id", "url", "width", "height", "size", "sha256")
                    },
                )
            )


def process_product_images(product_id: int, image_urls: Any) -> dict[str, Any]:
    """Every default variant of every URL, then the product's ``image_urls`` in the given order."""
    if not isinstance(image_urls, list) or not 1 <= len(image_urls) <= MAX_IMAGES:
        raise InvalidInput(f"image_urls must be a list of 1 to {MAX_IMAGES} URLs")
    urls = [images.check_url(u) for u in dict.fromkeys(image_urls)]
    with session_scope() as s:
        if s.get(Product, product_id) is None:
            raise NotFound(f"product {product_id} does not exist")
    variants = images.check_variants(list(images.DEFAULT_VARIANTS))
    for url in urls:
        _record(
            product_id, url, images.make_variants(url, variants, f"images/products/{product_id}")
        )
    with session_scope() as s:
        rows = s.execute(
            select(
                ProductImage.source_url,
                ProductImage.variant,
                ProductImage.url,
                ProductImage.width,
                ProductImage.height,
            ).where(ProductImage.product_id == product_id, ProductImage.source_url.in_(urls))
        ).all()
        by_source: dict[str, dict[str, Any]] = {u: {"source": u, "variants": {}} for u in urls}
        for source, variant, url, width, height in rows:
            by_source[source]["variants"][variant] = {"url": url, "width": width, "height": height}
        listing = [by_source[u] for u in urls]
        s.execute(update(Product).where(Product.id == product_id).values(image_urls=listing))
    return {"product_id": product_id, "images": len(urls), "variants": len(rows)}


def generate_image_variants(image_url: Any, variants: Any) -> dict[str, Any]:
    """The named variants of one image, not tied to a product (banners, categories)."""
    url = images.check_url(image_url)
    chosen = images.check_variants(variants)
    stored = images.make_variants(url, chosen, "images/shared")
    _record(None, url, stored)
    return {
        row["variant"]: {"url": row["url"], "width": row["width"], "height": row["height"]}
        for row in stored
    }
