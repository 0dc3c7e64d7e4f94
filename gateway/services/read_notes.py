"""Reads of versions in buckets with access-based tiering, written in batches.

A GET only notes its version here; the notes go to PostgreSQL once a second (and before
every lifecycle pass), one statement per bucket read from: never a write per GET. A read
of a version on a lower tier also asks for its move back to STANDARD, in the same batch.
"""

from __future__ import annotations

from collections import defaultdict

from metadata.access_tiering import AccessTieringRepo


class ReadNotes:
    def __init__(self, repo: AccessTieringRepo) -> None:
        self._repo = repo
        self._reads: defaultdict[int, set[int]] = defaultdict(set)
        self._recalls: defaultdict[int, set[int]] = defaultdict(set)

    def note(self, bucket_id: int, version_pk: int, recall: bool) -> None:
        self._reads[bucket_id].add(version_pk)
        if recall:
            self._recalls[bucket_id].add(version_pk)

    async def flush(self) -> None:
        reads, self._reads = self._reads, defaultdict(set)
        recalls, self._recalls = self._recalls, defaultdict(set)
        for bucket_id in list(reads):
            try:
                await self._repo.note_reads(
                    bucket_id, sorted(reads[bucket_id]), sorted(recalls.get(bucket_id, ()))
                )
            except BaseException:
                # Keep what is not written yet for the next flush (a read noted twice is
                # harmless: it is recorded to the hour).
                for pending, versions in reads.items():
                    self._reads[pending] |= versions
                    self._recalls[pending] |= recalls.get(pending, set())
                raise
            del reads[bucket_id]
