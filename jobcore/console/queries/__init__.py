"""What the console's pages read, one module per page family; plain functions of a Session."""
