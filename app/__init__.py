"""The population data portal: published, privacy-filtered population indicators over REST and GraphQL."""
