"""The GraphQL API: shapes and authorises, then calls `gql.domain` (which decides)."""
