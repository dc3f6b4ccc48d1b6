"""Clients of the external parties (payment provider, warehouse, carrier) and file storage."""
