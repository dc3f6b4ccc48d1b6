"""Price feeds: sources in fallback order, the cached value, its freshness."""
