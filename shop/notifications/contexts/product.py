"""Context of product notifications: low-stock alerts (admins) and back-in-stock (wait-list)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import Inventory, Product

TEMPLATES: tuple[str, ...] = ("low_stock", "back_in_stock")
SAMPLE: dict[str, object] = {
    "product": {
        "id": 42,
        "sku": "MUG-BLUE-350",
        "name": "Blue enamel mug 350 ml",
        "price": "12.90 EUR",
        "available": 3,
        "threshold": 5,
        "low_stock_crossings": 2,
        "restocks": 1,
    }
}


def load(session: Session, ident: str) -> dict[str, object]:
    try:
        product_id = int(ident)
    except ValueError:
        raise NotFound(f"product {ident!r} is not a product id") from None
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist")
    stock = session.get(Inventory, product_id)
    return {
        "product": {
            "id": product.id,
            "sku": product.sku,
            "name": product.name,
            "price": f"{product.price_cents / 100:.2f} {product.currency}",
            "available": stock.available if stock else 0,
            "threshold": product.low_stock_threshold,
            "low_stock_crossings": stock.low_stock_crossings if stock else 0,
            "restocks": stock.restocks if stock else 0,
        }
    }
