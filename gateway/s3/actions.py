"""The IAM action and the resource ARN each S3 operation is authorized as."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.s3.router import Op

ACTIONS: dict[Op, str] = {
    Op.ListBuckets: "s3:ListAllMyBuckets",
    Op.CreateBucket: "s3:CreateBucket",
    Op.DeleteBucket: "s3:DeleteBucket",
    Op.HeadBucket: "s3:ListBucket",
    Op.GetBucketLocation: "s3:GetBucketLocation",
    Op.GetBucketVersioning: "s3:GetBucketVersioning",
    Op.PutBucketVersioning: "s3:PutBucketVersioning",
    Op.GetBucketTagging: "s3:GetBucketTagging",
    Op.PutBucketTagging: "s3:PutBucketTagging",
    Op.DeleteBucketTagging: "s3:PutBucketTagging",
    Op.GetBucketCors: "s3:GetBucketCORS",
    Op.PutBucketCors: "s3:PutBucketCORS",
    Op.DeleteBucketCors: "s3:PutBucketCORS",
    Op.GetBucketPolicy: "s3:GetBucketPolicy",
    Op.PutBucketPolicy: "s3:PutBucketPolicy",
    Op.DeleteBucketPolicy: "s3:DeleteBucketPolicy",
    Op.GetBucketPolicyStatus: "s3:GetBucketPolicyStatus",
    Op.GetBucketAcl: "s3:GetBucketAcl",
    Op.GetBucketEncryption: "s3:GetEncryptionConfiguration",
    Op.PutBucketEncryption: "s3:PutEncryptionConfiguration",
    Op.DeleteBucketEncryption: "s3:PutEncryptionConfiguration",
    Op.PutBucketAcl: "s3:PutBucketAcl",
    Op.GetBucketLifecycleConfiguration: "s3:GetLifecycleConfiguration",
    Op.PutBucketLifecycleConfiguration: "s3:PutLifecycleConfiguration",
    # AWS has no action of its own for deleting the configuration.
    Op.DeleteBucketLifecycle: "s3:PutLifecycleConfiguration",
    Op.RestoreObject: "s3:RestoreObject",
    Op.ListObjects: "s3:ListBucket",
    Op.ListObjectsV2: "s3:ListBucket",
    Op.ListObjectVersions: "s3:ListBucketVersions",
    Op.ListMultipartUploads: "s3:ListBucketMultipartUploads",
    Op.DeleteObjects: "s3:DeleteObject",
    Op.PutObject: "s3:PutObject",
    Op.CopyObject: "s3:PutObject",
    Op.GetObject: "s3:GetObject",
    Op.HeadObject: "s3:GetObject",
    Op.DeleteObject: "s3:DeleteObject",
    Op.GetObjectTagging: "s3:GetObjectTagging",
    Op.PutObjectTagging: "s3:PutObjectTagging",
    Op.DeleteObjectTagging: "s3:DeleteObjectTagging",
    Op.GetObjectAcl: "s3:GetObjectAcl",
    Op.PutObjectAcl: "s3:PutObjectAcl",
    Op.CreateMultipartUpload: "s3:PutObject",
    Op.UploadPart: "s3:PutObject",
    Op.UploadPartCopy: "s3:PutObject",
    Op.CompleteMultipartUpload: "s3:PutObject",
    Op.AbortMultipartUpload: "s3:AbortMultipartUpload",
    Op.ListParts: "s3:ListMultipartUploadParts",
}
# Reading or deleting one version is its own action, as in AWS.
_VERSIONED = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
}


def action(op: Op, query: Mapping[str, str]) -> str:
    name = ACTIONS[op]
    return _VERSIONED.get(name, name) if "versionId" in query else name


def versioned(name: str, version_id: str | None) -> str:
    return _VERSIONED.get(name, name) if version_id else name
