"""Bucket operations and the bucket naming rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gateway.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidBucketName,
    MalformedPolicy,
    NoSuchBucket,
)
from gateway.lifecycle.rules import LifecycleConfiguration, render
from gateway.services.access import Access, authorize
from gateway.services.access_policy import PolicyInvalid, parse_policy
from gateway.services.cache import TtlCache
from gateway.services.context import RequestContext
from gateway.services.objects import check_tags
from metadata.buckets import BucketRepo
from metadata.models import BucketRow

MAX_BUCKET_TAGS = 50
BUCKET_CACHE_TTL_S = 1.0
BUCKET_CACHE_ENTRIES = 10_000
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS_FORMAT = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
VERSIONING_STATES = ("Enabled", "Suspended")


def check_bucket_name(name: str) -> None:
    """The general-purpose bucket naming rules of AWS."""
    if (
        not _BUCKET_NAME.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
        or _is_ip_address(name)
    ):
        raise InvalidBucketName(BucketName=name)


def _is_ip_address(name: str) -> bool:
    # "Formatted as an IP address": 1.2.3.04 and 999.1.1.1 too, which IPv4Address refuses.
    return _IP_ADDRESS_FORMAT.fullmatch(name) is not None


class BucketService:
    def __init__(
        self,
        buckets: BucketRepo,
        default_backend: str,
        region: str,
        policy_for_location: Callable[[str | None], str | None] = lambda _: None,
    ) -> None:
        self._buckets = buckets
        self._default_backend = default_backend
        self._region = region
        # A LocationConstraint that names a placement policy assigns it to the bucket.
        self._policy_for_location = policy_for_location
        # Every request resolves its bucket; bucket settings change rarely and S3 itself
        # propagates them eventually. Local changes drop the entry at once.
        self._cache: TtlCache[BucketRow] = TtlCache(BUCKET_CACHE_TTL_S, BUCKET_CACHE_ENTRIES)

    async def list_owned(self, ctx: RequestContext) -> list[BucketRow]:
        return await self._buckets.list_for_tenant(ctx.tenant)

    async def _get(self, name: str) -> BucketRow | None:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        bucket = await self._buckets.get(name)
        if bucket is None:
            self._cache.forget(name)
        else:
            self._cache.put(name, bucket)
        return bucket

    def _forget(self, bucket: BucketRow | str) -> None:
        self._cache.forget(bucket if isinstance(bucket, str) else bucket.name)

    async def find(self, name: str) -> BucketRow:
        """The bucket, not yet authorized: for callers that authorize per key."""
        bucket = await self._get(name)
        if bucket is None:
            raise NoSuchBucket(BucketName=name)
        return bucket

    async def resolve(
        self,
        ctx: RequestContext,
        name: str,
        action: str,
        key: str | None = None,
        prefix: str | None = None,
    ) -> tuple[BucketRow, Access]:
        """The bucket, if it exists and the caller may do ``action`` (on ``key``) there."""
        bucket = await self.find(name)
        return bucket, authorize(ctx, bucket, action, key, prefix)

    async def set_encryption(self, bucket: BucketRow, rule: dict[str, Any] | None) -> None:
        await self._buckets.set_encryption(bucket.id, rule)
        self._forget(bucket)

    async def set_placement_policy(
        self, bucket: BucketRow, policy: str | None, prefix: str | None = None
    ) -> None:
        """The bucket's policy, or with ``prefix`` the policy of the keys under it."""
        if prefix is None:
            await self._buckets.set_policy(bucket.id, policy)
        else:
            await self._buckets.set_prefix_policy(bucket.id, prefix, policy)
        self._forget(bucket)

    async def set_access_tiering(self, bucket: BucketRow, setting: dict[str, Any] | None) -> None:
        await self._buckets.set_access_tiering(bucket.id, setting)
        self._forget(bucket)

    async def set_lifecycle(self, bucket: BucketRow, config: LifecycleConfiguration | None) -> None:
        await self._buckets.set_lifecycle(bucket.id, None if config is None else render(config))
        self._forget(bucket)

    async def set_acl(self, bucket: BucketRow, acl: str) -> None:
        await self._buckets.set_acl(bucket.id, acl)
        self._forget(bucket)

    async def set_access_policy(self, bucket: BucketRow, document: dict[str, Any] | None) -> None:
        if document is not None:
            try:
                parse_policy(document, bucket.name)
            except PolicyInvalid as exc:
                raise MalformedPolicy(str(exc)) from None
        await self._buckets.set_access_policy(bucket.id, document)
        self._forget(bucket)

    async def create(
        self, ctx: RequestContext, name: str, location: str | None, acl: str = "private"
    ) -> BucketRow:
        check_bucket_name(name)
        created = await self._buckets.create(
            name,
            ctx.access_key,
            location or self._region,
            self._default_backend,
            self._policy_for_location(location),
            ctx.tenant,
            acl,
        )
        if created is not None:
            return created
        existing = await self._buckets.get(name)
        if existing is not None and existing.tenant == ctx.tenant:
            raise BucketAlreadyOwnedByYou(BucketName=name)
        raise BucketAlreadyExists(BucketName=name)

    async def delete(self, bucket: BucketRow) -> None:
        name = bucket.name
        self._forget(name)
        if not await self._buckets.delete_if_empty(bucket.id):
            raise BucketNotEmpty(BucketName=name)

    async def set_versioning(self, bucket: BucketRow, status: str) -> None:
        await self._buckets.set_versioning(bucket.id, status)
        self._forget(bucket)

    async def set_tags(self, bucket: BucketRow, tags: dict[str, str] | None) -> None:
        if tags is not None:
            check_tags(tags, MAX_BUCKET_TAGS, "Bucket")
        await self._buckets.set_tags(bucket.id, tags)
        self._forget(bucket)

    async def set_cors(self, bucket: BucketRow, rules: list[dict[str, Any]] | None) -> None:
        await self._buckets.set_cors(bucket.id, rules)
        self._forget(bucket)

    async def lookup(self, name: str) -> BucketRow | None:
        """Unauthenticated lookup, for CORS preflight only."""
        return await self._buckets.get(name)
