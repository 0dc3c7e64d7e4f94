"""The S3 API edge: routing, authentication and wire formats."""
