-- Envelope encryption: each encrypted version keeps its wrapped data key, salt, mode and
-- the checksums of its stored (ciphertext) parts; buckets keep their default encryption.

ALTER TABLE object_versions ADD COLUMN encryption jsonb;
ALTER TABLE buckets ADD COLUMN encryption jsonb;
