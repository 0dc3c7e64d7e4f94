"""S3 XML: a small, fast renderer and a size-capped parser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from xml.parsers import expat
from xml.parsers.expat import ExpatError
from xml.sax.saxutils import escape

import xmltodict

from gateway.errors import MalformedXML

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Request bodies that are parsed are small by nature; anything larger is refused unread.
MAX_XML_BODY_BYTES = 2 * 1024 * 1024
# The deepest S3 request document (LifecycleConfiguration/Rule/Filter/And/Tag/Key) has 6
# levels; a deeper one is refused before it is turned into nested dicts.
MAX_XML_DEPTH = 20

# A value is text, a number, a nested element, or a list of repeated elements.
Element = str | int | bool | None | Mapping[str, Any] | Sequence[Any]


def iso_time(moment: datetime) -> str:
    # Whole seconds, as S3 does: a listing's LastModified must equal HEAD's Last-Modified.
    # A page holds a thousand of these: asyncpg's datetimes are already in UTC, and %
    # formatting costs a third less than isoformat and a fraction of strftime. ListObjects
    # has PostgreSQL format the same (metadata/listing.py, _LISTED_COLUMNS): keep them alike.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.000Z" % (  # noqa: UP031 (f-strings are slower here)
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
    )  # fmt: skip


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


class Raw(str):
    """Markup already rendered (and escaped) by the caller, inserted verbatim."""


class Sequence_(list[tuple[str, "Element"]]):
    """Differently named sibling elements kept in order (Version and DeleteMarker)."""


def _render(name: str, value: Element, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, Raw):
        out.append(value)
        return
    if isinstance(value, Sequence_):
        for child, child_value in value:
            _render(child, child_value, out)
        return
    if isinstance(value, Mapping):
        out.append(f"<{name}>")
        for child, child_value in value.items():
            _render(child, child_value, out)
        out.append(f"</{name}>")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _render(name, item, out)
    else:
        out.append(f"<{name}>{_text(value)}</{name}>")  # type: ignore[arg-type]


def render(root: str, body: Mapping[str, Element], *, namespace: bool = True) -> bytes:
    """Render ``{child: value}`` under ``root``; lists repeat an element, None omits it."""
    out = [XML_DECLARATION, f'<{root} xmlns="{S3_NS}">' if namespace else f"<{root}>"]
    for name, value in body.items():
        _render(name, value, out)
    out.append(f"</{root}>")
    return "".join(out).encode()


def render_text(root: str, text: str) -> bytes:
    """A document whose root element holds only text (GetBucketLocation)."""
    return f'{XML_DECLARATION}<{root} xmlns="{S3_NS}">{escape(text)}</{root}>'.encode()


def parse(data: bytes, root: str) -> dict[str, Any]:
    """Parse a request document whose root element must be ``root``; MalformedXML otherwise."""
    if len(data) > MAX_XML_BODY_BYTES:
        raise MalformedXML()
    try:
        _check_shape(data)
        doc = xmltodict.parse(data, process_namespaces=False, disable_entities=True)
    except (ExpatError, ValueError, LookupError):
        # LookupError: the XML declaration names an encoding Python does not know.
        raise MalformedXML() from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise MalformedXML()
    ((name, content),) = doc.items()
    if name.split(":")[-1] != root:
        raise MalformedXML()
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise MalformedXML()
    return {k.split(":")[-1]: v for k, v in content.items() if not k.startswith("@")}


def _check_shape(data: bytes) -> None:
    """MalformedXML for a document type declaration (S3 documents have none, and it is where
    entity expansion attacks live) or for nesting deeper than ``MAX_XML_DEPTH``; a cheap
    pass of expat that builds nothing."""
    parser = expat.ParserCreate()
    depth = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise MalformedXML(f"The XML is nested deeper than {MAX_XML_DEPTH} levels.")

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def doctype(*args: object) -> None:
        raise MalformedXML("The XML you provided may not declare a document type.")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    parser.Parse(data, True)


def as_list(value: Any) -> list[Any]:
    """xmltodict gives a dict for one repeated element and a list for several."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text(value: Any, what: str) -> str:
    """An element that holds only text (an empty element is the empty string)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedXML(f"{what} must be a single text element.")
    return value


def integer(value: Any, what: str) -> int:
    raw = text(value, what).strip()
    try:
        return int(raw)
    except ValueError:
        raise MalformedXML(f"{what} must be an integer.") from None


def element(value: Any, what: str) -> dict[str, Any]:
    """A single element with children (an empty one is an empty mapping)."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise MalformedXML(f"{what} must appear once, with child elements.")
    return {k: v for k, v in value.items() if not k.startswith("@")}


def only_known(children: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(children) - set(known))
    if unknown:
        raise MalformedXML(f"Unexpected element {unknown[0]} in {where}.")
