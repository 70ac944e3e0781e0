"""The query service and indicator formulas."""
