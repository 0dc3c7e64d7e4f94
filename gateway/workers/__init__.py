"""Background work: small, resumable, idempotent units whose progress lives in PostgreSQL."""
