"""shopjobs middleware: one class per module, each overriding only the hooks it needs."""
