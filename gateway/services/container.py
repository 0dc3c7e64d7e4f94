"""The services a request handler may call, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.services.auth import AuthService
from gateway.services.buckets import BucketService
from gateway.services.listing import ListingService
from gateway.services.multipart import MultipartService
from gateway.services.objects import ObjectService
from gateway.services.restores import RestoreService


@dataclass(frozen=True, slots=True)
class Services:
    auth: AuthService
    buckets: BucketService
    objects: ObjectService
    listing: ListingService
    multipart: MultipartService
    restores: RestoreService
