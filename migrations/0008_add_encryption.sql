-- Envelope encryption: each encrypted version keeps its wrapped data key, salt, mode and
-- the checksums of its stored (ciphertext) parts; buckets keep their default encryption.

ALTER TABLE object_versions ADD COLUMN encryption jsonb;
ALTER TABLE buckets ADD COLUMN encryption jsonb;

-- An encrypted multipart upload keeps its envelope; each part the checksum of its stored
-- (ciphertext) bytes, which completion gathers into the version's envelope.
ALTER TABLE multipart_uploads ADD COLUMN encryption jsonb;
ALTER TABLE multipart_parts ADD COLUMN stored_checksum text;

-- Key-encryption keys an operator retired: no stored envelope or secret used them any more.
CREATE TABLE retired_keys (
    name text PRIMARY KEY,
    retired_at timestamptz NOT NULL DEFAULT now()
);
