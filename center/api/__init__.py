"""HTTP routes of the center, one module per resource; shared lookups live in ``deps``."""
