"""Placement policy: pure decisions about which backends hold an object. No I/O."""
