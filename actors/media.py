"""Image actors on the ``media`` queue: slow downloads and Pillow work never delay orders."""

from __future__ import annotations

from typing import Any

from broker import routes
from jobcore.validate import positive_id
from shop.catalog import product_images


@routes.actor("media.process_product_images")
def process_product_images(product_id: int, image_urls: list[str]) -> dict[str, Any]:
    """Download, resize and store every image of a product; set its image URLs."""
    return product_images.process_product_images(positive_id(product_id, "product_id"), image_urls)


@routes.actor("media.generate_image_variants")
def generate_image_variants(image_url: str, variants: list[str]) -> dict[str, Any]:
    """The named variants (thumb, medium, large) of one image, stored; returns their URLs."""
    return product_images.generate_image_variants(image_url, variants)
