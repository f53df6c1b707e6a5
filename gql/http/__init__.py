"""The HTTP layer in front of the GraphQL view: one module per middleware, assembled by
`guard_middleware` in the order they wrap the app."""
