"""Domain services: what the API layers call. They never commit; the caller owns the transaction."""
