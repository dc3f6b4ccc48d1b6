"""The catalog: products, stock, reservations, warehouse sync, images, rankings."""
