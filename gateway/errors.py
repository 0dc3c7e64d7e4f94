"""One error base for the whole gateway.

Every failure that reaches a client is a subclass of :class:`S3Error`. The class carries the
exact S3 code and HTTP status; the middleware renders it once (XML for S3, JSON for admin).
Nothing else builds an error body.
"""

from __future__ import annotations

from typing import ClassVar


class S3Error(Exception):
    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(
        self, message: str | None = None, *, headers: dict[str, str] | None = None, **fields: str
    ) -> None:
        self.message = message or self.default_message
        # Extra XML elements AWS includes for some codes (BucketName, Key, ArgumentName ...).
        self.fields = fields
        # Response headers AWS sends with the error (x-amz-delete-marker, ETag on 304 ...).
        self.headers = headers or {}
        super().__init__(self.message)


def _error(code: str, status: int, message: str) -> type[S3Error]:
    return type(code, (S3Error,), {"code": code, "status": status, "default_message": message})


class InternalError(S3Error):
    pass


class NotImplementedError_(S3Error):
    code = "NotImplemented"
    status = 501
    default_message = (
        "A header or operation you provided implies functionality that is not implemented."
    )


AccessDenied = _error("AccessDenied", 403, "Access Denied")
AuthorizationHeaderMalformed = _error(
    "AuthorizationHeaderMalformed", 400, "The authorization header is malformed."
)
AuthorizationQueryParametersError = _error(
    "AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter."
)
BadDigest = _error(
    "BadDigest",
    400,
    "The Content-MD5 or checksum value that you specified did not match what the server received.",
)
BucketAlreadyExists = _error(
    "BucketAlreadyExists", 409, "The requested bucket name is not available."
)
BucketAlreadyOwnedByYou = _error(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket that you tried to delete is not empty.")
EntityTooLarge = _error(
    "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size."
)
EntityTooSmall = _error(
    "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."
)
IncompleteBody = _error(
    "IncompleteBody",
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
)
InvalidAccessKeyId = _error(
    "InvalidAccessKeyId",
    403,
    "The AWS access key ID that you provided does not exist in our records.",
)
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
InvalidPart = _error(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
)
InvalidPartOrder = _error(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
)
InvalidPartNumber = _error("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
InvalidStorageClass = _error(
    "InvalidStorageClass", 400, "The storage class you specified is not valid."
)
InvalidTag = _error("InvalidTag", 400, "The tag provided was not a valid tag.")
InvalidURI = _error("InvalidURI", 400, "Couldn't parse the specified URI.")
InvalidLocationConstraint = _error(
    "InvalidLocationConstraint", 400, "The specified location constraint is not valid."
)
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long.")
MalformedXML = _error(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema.",
)
MaxMessageLengthExceeded = _error("MaxMessageLengthExceeded", 400, "Your request was too big.")
MetadataTooLarge = _error(
    "MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."
)
MethodNotAllowed = _error(
    "MethodNotAllowed", 405, "The specified method is not allowed against this resource."
)
MissingContentLength = _error(
    "MissingContentLength", 411, "You must provide the Content-Length HTTP header."
)
MissingSecurityHeader = _error(
    "MissingSecurityHeader", 400, "Your request was missing a required header."
)
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist.")
NoSuchCORSConfiguration = _error(
    "NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"
)
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchTagSet = _error("NoSuchTagSet", 404, "The TagSet does not exist")
NoSuchUpload = _error(
    "NoSuchUpload",
    404,
    "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",
)
NoSuchVersion = _error("NoSuchVersion", 404, "The specified version does not exist.")
NotModified = _error("NotModified", 304, "Not Modified")
PreconditionFailed = _error(
    "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"
)
RequestTimeTooSkewed = _error(
    "RequestTimeTooSkewed",
    403,
    "The difference between the request time and the current time is too large.",
)
ServiceUnavailable = _error("ServiceUnavailable", 503, "Please reduce your request rate.")
RequestHeaderSectionTooLarge = _error(
    "RequestHeaderSectionTooLarge",
    400,
    "Your request header section exceeds the maximum allowed size.",
)
RequestTimeout = _error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
)
SlowDown = _error("SlowDown", 503, "Please reduce your request rate.")
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch",
    403,
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
)
XAmzContentSHA256Mismatch = _error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
InvalidObjectState = _error(
    "InvalidObjectState", 403, "The operation is not valid for the current state of the object."
)
ConditionalRequestConflict = _error(
    "ConditionalRequestConflict",
    409,
    "A conflicting conditional action is currently in progress against this resource.",
)


def error_for_code(code: str) -> type[S3Error]:
    """The error class for an S3 code reported by a pure protocol module."""
    for cls in _all_subclasses(S3Error):
        if cls.code == code:
            return cls
    return InvalidRequest


def _all_subclasses(cls: type[S3Error]) -> list[type[S3Error]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


IllegalVersioningConfigurationException = _error(
    "IllegalVersioningConfigurationException",
    400,
    "The versioning configuration specified in the request is invalid.",
)


MalformedACLError = _error(
    "MalformedACLError",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema.",
)
MalformedPolicy = _error(
    "MalformedPolicy", 400, "Policies must be valid JSON and the first byte must be '{'"
)
NoSuchBucketPolicy = _error("NoSuchBucketPolicy", 404, "The bucket policy does not exist")
KMSNotFoundException = _error("KMS.NotFoundException", 400, "Invalid keyId")
ServerSideEncryptionConfigurationNotFoundError = _error(
    "ServerSideEncryptionConfigurationNotFoundError",
    404,
    "The server side encryption configuration was not found",
)
NoSuchLifecycleConfiguration = _error(
    "NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"
)
RestoreAlreadyInProgress = _error(
    "RestoreAlreadyInProgress", 409, "Object restore is already in progress"
)
QuotaExceeded = _error("QuotaExceeded", 403, "The write would exceed a quota.")
