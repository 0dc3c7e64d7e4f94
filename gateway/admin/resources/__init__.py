"""Admin API resources: each module declares its operations with their schemas."""
