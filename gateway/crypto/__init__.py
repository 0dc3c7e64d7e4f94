"""Envelope encryption of object data: the format, the key ring, the streams."""
