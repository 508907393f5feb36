"""Dev-only tools (dev stack, bench, scaffold): the `dev` extra, never in production."""
