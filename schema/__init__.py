"""GraphQL schema: Strawberry types and resolvers over the same query service as REST."""
