"""The filter of a lifecycle rule: which objects it applies to. Pure.

A rule names its objects by a legacy top-level ``Prefix`` or by a ``Filter`` holding one
of ``Prefix``, ``Tag``, ``ObjectSizeGreaterThan``, ``ObjectSizeLessThan`` or an ``And`` of
several. Input is the xmltodict shape of the request body; failures raise the S3 error AWS
answers with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidArgument, InvalidRequest, MalformedXML
from gateway.s3.xml import as_list, element, integer, only_known, text

MAX_PREFIX_BYTES = 1024
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
_CRITERIA = ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan")


@dataclass(frozen=True, slots=True)
class Filter:
    """Every criterion given must hold. ``prefix`` is None when none was given."""

    prefix: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None
    # How it was written, so that GetBucketLifecycleConfiguration shows it back.
    legacy: bool = False
    use_and: bool = False

    def matches(self, key: str, size_bytes: int, tags: Mapping[str, str]) -> bool:
        return (
            key.startswith(self.prefix or "")
            and all(tags.get(name) == value for name, value in self.tags)
            and (self.size_greater_than is None or size_bytes > self.size_greater_than)
            and (self.size_less_than is None or size_bytes < self.size_less_than)
        )

    def describe(self) -> str:
        """The filter as AWS names it in error messages."""
        return f"(prefix={self.prefix or ''})"


def parse_filter(rule: Mapping[str, Any]) -> Filter:
    """The filter of one rule (its legacy ``Prefix`` or its ``Filter`` element)."""
    if ("Filter" in rule) == ("Prefix" in rule):
        raise MalformedXML("A rule must have either a Filter or a Prefix, not both or neither.")
    if "Prefix" in rule:
        return Filter(prefix=_prefix(rule["Prefix"]), legacy=True)
    children = element(rule["Filter"], "Filter")
    only_known(children, (*_CRITERIA, "And"), "Filter")
    if len(children) > 1:
        raise MalformedXML("Filter must have exactly one of Prefix, Tag, ObjectSize or And.")
    if "And" in children:
        conjunction = element(children["And"], "And")
        only_known(conjunction, _CRITERIA, "And")
        return _criteria(conjunction, use_and=True)
    if len(as_list(children.get("Tag"))) > 1:
        raise MalformedXML("Several tags must be combined with And.")
    return _criteria(children, use_and=False)


def _criteria(children: Mapping[str, Any], use_and: bool) -> Filter:
    prefix = _prefix(children["Prefix"]) if "Prefix" in children else None
    greater = _size(children, "ObjectSizeGreaterThan")
    less = _size(children, "ObjectSizeLessThan")
    if greater is not None and less is not None and greater >= less:
        raise InvalidArgument(
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan.",
            ArgumentName="ObjectSizeGreaterThan",
        )
    tags = _tags(as_list(children.get("Tag")))
    return Filter(prefix, tags, greater, less, use_and=use_and)


def _prefix(value: Any) -> str:
    prefix = text(value, "Prefix")
    if len(prefix.encode()) > MAX_PREFIX_BYTES:
        raise InvalidRequest("The maximum size of a prefix is 1024.")
    return prefix


def _size(children: Mapping[str, Any], name: str) -> int | None:
    if name not in children:
        return None
    size = integer(children[name], name)
    if size < 0:
        raise InvalidArgument(f"{name} must be a nonnegative integer.", ArgumentName=name)
    return size


def _tags(items: list[Any]) -> tuple[tuple[str, str], ...]:
    tags: dict[str, str] = {}
    for item in items:
        tag = element(item, "Tag")
        if "Key" not in tag or "Value" not in tag or len(tag) != 2:
            raise MalformedXML("A Tag must have exactly a Key and a Value.")
        key, value = text(tag["Key"], "Key"), text(tag["Value"], "Value")
        if not 1 <= len(key) <= MAX_TAG_KEY_CHARS or len(value) > MAX_TAG_VALUE_CHARS:
            raise InvalidRequest("The TagKey or TagValue you have provided is invalid.")
        if key in tags:
            raise InvalidRequest("Duplicate Tag Keys are not allowed.")
        tags[key] = value
    return tuple(tags.items())


def render_filter(found: Filter) -> dict[str, Any]:
    """The rule elements that express ``found``: a legacy Prefix or a Filter."""
    if found.legacy:
        return {"Prefix": found.prefix or ""}
    criteria: dict[str, Any] = {}
    if found.prefix is not None:
        criteria["Prefix"] = found.prefix
    if found.tags:
        criteria["Tag"] = [{"Key": k, "Value": v} for k, v in found.tags]
    if found.size_greater_than is not None:
        criteria["ObjectSizeGreaterThan"] = str(found.size_greater_than)
    if found.size_less_than is not None:
        criteria["ObjectSizeLessThan"] = str(found.size_less_than)
    return {"Filter": {"And": criteria} if found.use_and else criteria}
