"""certgraph's built-in completion policies, each a plugin module exactly like a third party's."""
