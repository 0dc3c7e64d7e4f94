-- Placement policies attached to key prefixes of a bucket: {prefix: policy}. The longest
-- prefix a key starts with decides; keys under none use the bucket's placement_policy.
ALTER TABLE buckets ADD COLUMN prefix_policies jsonb NOT NULL DEFAULT '{}'::jsonb;
