"""Source connectors: each turns a source into canonical register records or reference data."""
