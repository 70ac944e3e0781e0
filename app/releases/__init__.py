"""From validated register records to published releases."""
