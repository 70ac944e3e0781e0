"""Version 1 of the REST API. Breaking changes go to /v2; this one only grows."""
