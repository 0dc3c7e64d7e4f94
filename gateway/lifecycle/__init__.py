"""S3 lifecycle: the configuration's rules and what they make due, as pure logic."""
