"""Real S3 clients against a running gateway."""
