"""Access control: OAuth2 authorization server, client registry, API keys, scopes and tiers."""
