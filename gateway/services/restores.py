"""RestoreObject: a temporary copy of an archived version, off the archive tier.

The copy goes through the replication queue (verified like any replica) to the backend the
bucket's policy gives a STANDARD object, and lapses on its own: the lifecycle worker retires
it at the first midnight UTC ``Days`` days after it was made.
"""

from __future__ import annotations

from gateway.errors import InvalidObjectState, RestoreAlreadyInProgress
from gateway.placement.model import ObjectFacts
from gateway.placement.tiers import is_archive
from gateway.services.objects import ObjectService
from gateway.services.topology import TopologyService
from metadata.models import BucketRow, VersionRow
from metadata.restores import RestoreRepo

RESTORED_CLASS = "STANDARD"


class RestoreService:
    def __init__(
        self, objects: ObjectService, restores: RestoreRepo, topology: TopologyService
    ) -> None:
        self._objects = objects
        self._restores = restores
        self._topology = topology

    async def restore(self, bucket: BucketRow, key: str, version_id: str | None, days: int) -> bool:
        """Start restoring a version for ``days``: True when its copy is being made (202),
        False when it is readable already (200; a restored copy then lapses ``days`` from
        now)."""
        version = await self._objects.current(bucket, key, version_id)
        if not is_archive(version.storage_class):
            raise InvalidObjectState(
                "Restore is not allowed for the object's current storage class",
                StorageClass=version.storage_class,
            )
        status = await self._restores.status(version.bucket_id, version.pk)
        if status.ongoing:
            raise RestoreAlreadyInProgress()
        if status.expires_at is not None:
            await self._restores.extend(version.bucket_id, version.pk, days)
            return False
        if self._topology.online(version.placements):
            return False
        if not await self._restores.request(
            version.bucket_id, version.pk, self._target(bucket, version), days
        ):
            raise RestoreAlreadyInProgress()
        return True

    def _target(self, bucket: BucketRow, version: VersionRow) -> str:
        facts = ObjectFacts(
            bucket.name, version.key, version.size_bytes, RESTORED_CLASS, version.tags
        )
        plan = self._topology.plan(bucket, facts)
        return (plan.sync_targets + plan.async_targets)[0]
