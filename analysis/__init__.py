"""Time-indexed gap-closure analysis between arms (later issues)."""
