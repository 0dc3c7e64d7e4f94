"""Services decide: they own transactions and orchestrate repositories and backends."""
