"""STORAGE_URL -> Django's STORAGES: where media (images, exemplars, exports, uploads) lives.

Forms (docs/deploy.md):
  (unset or empty)                 local disk under MEDIA_ROOT (var/media), the embedded default
  file:///srv/razmetka/media       local disk at that absolute path
  s3://BUCKET[/PREFIX][?OPTIONS]   S3 or any S3-compatible server (MinIO, Ceph, R2, ...)
  s3://KEY_ID:SECRET@BUCKET/...    the same with credentials in the URL (percent-encode / + @ :)

OPTIONS (query string): endpoint_url (http(s)://host:port of a non-AWS server), region,
addressing_style (path | virtual | auto; path by default when endpoint_url is given, since a
bucket sub-domain of a container host name like `minio` does not resolve), verify (true/false:
check the server's TLS certificate). Without credentials in the URL, boto3's own chain is used:
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the instance role.

Kept free of Django imports (besides the exception) so settings can call it at import time.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

LOCAL_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_BACKEND = "storages.backends.s3.S3Storage"
STATIC_BACKEND = "django.contrib.staticfiles.storage.StaticFilesStorage"

S3_QUERY_OPTIONS = {"endpoint_url", "region", "addressing_style", "verify"}
ADDRESSING_STYLES = {"path", "virtual", "auto"}
# S3's bucket naming rules, which MinIO enforces too.
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _fail(message: str) -> ImproperlyConfigured:
    # The URL itself may carry a secret, so it is never echoed back.
    return ImproperlyConfigured(f"STORAGE_URL: {message} See docs/deploy.md for the accepted forms.")


def storages_from_url(url: str | None) -> dict:
    """The STORAGES setting for this URL; raises ImproperlyConfigured naming what is wrong."""
    url = (url or "").strip()
    static = {"BACKEND": STATIC_BACKEND}
    if not url:
        return {"default": {"BACKEND": LOCAL_BACKEND}, "staticfiles": static}
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return {"default": _local(parts), "staticfiles": static}
    if scheme == "s3":
        return {"default": {"BACKEND": S3_BACKEND, "OPTIONS": s3_options(url)}, "staticfiles": static}
    raise _fail(f"unsupported scheme {parts.scheme + '://' if parts.scheme else '(none)'}; use s3:// or file://.")


def _local(parts) -> dict:
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/") or parts.query:
        raise _fail("a file:// URL must be an absolute path with no host or options, e.g. file:///srv/media.")
    return {"BACKEND": LOCAL_BACKEND, "OPTIONS": {"location": unquote(parts.path)}}


def s3_options(url: str) -> dict:
    """django-storages S3Storage options for an s3:// URL."""
    parts = urlsplit(url)
    try:
        # Not .hostname: it lowercases, and a bucket named with capitals must be refused, not changed.
        bucket = parts.netloc.rpartition("@")[2]
        username, password = parts.username, parts.password
        # Accessing .port validates it; a bucket has no port.
        if parts.port is not None:
            raise _fail("an s3:// URL names a bucket, not host:port; put the server in ?endpoint_url=.")
    except ValueError:
        raise _fail("the bucket part of the URL is malformed (percent-encode / + @ : in credentials).") from None
    if not bucket:
        raise _fail("no bucket name: use s3://BUCKET[/PREFIX].")
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        raise _fail(f"'{bucket}' is not a valid bucket name (3-63 lowercase letters, digits, '.' or '-').")
    if ".." in parts.path.split("/"):
        raise _fail("the prefix after the bucket may not contain '..'.")
    if (username is None) != (password is None) or username == "" or password == "":
        raise _fail("credentials in the URL need both parts: s3://KEY_ID:SECRET@BUCKET.")

    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in S3_QUERY_OPTIONS:
            raise _fail(f"unknown option '{key}'; allowed: {', '.join(sorted(S3_QUERY_OPTIONS))}.")
        if key in query:
            raise _fail(f"option '{key}' is given twice.")
        query[key] = value

    options: dict = {
        "bucket_name": bucket,
        "location": parts.path.strip("/"),
        # Private objects; every read goes through the app's membership check (core/files.py).
        "default_acl": None,
        "querystring_auth": True,
        # Names are app-generated uuids; refusing to overwrite costs a HEAD and guards the rest.
        "file_overwrite": False,
        "signature_version": "s3v4",
    }
    if username is not None:
        options["access_key"] = unquote(username)
        options["secret_key"] = unquote(password)
    endpoint = query.get("endpoint_url")
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname:
            raise _fail("endpoint_url must be an http(s)://host[:port] URL, e.g. http://minio:9000.")
        options["endpoint_url"] = endpoint.rstrip("/")
    if "region" in query:
        if not re.match(r"^[a-z0-9-]+$", query["region"]):
            raise _fail(f"'{query['region']}' is not a region name (e.g. us-east-1).")
        options["region_name"] = query["region"]
    style = query.get("addressing_style", "path" if endpoint else None)
    if style is not None:
        if style not in ADDRESSING_STYLES:
            raise _fail(f"addressing_style must be one of {', '.join(sorted(ADDRESSING_STYLES))}.")
        options["addressing_style"] = style
    if "verify" in query:
        flag = query["verify"].lower()
        if flag not in TRUE | FALSE:
            raise _fail("verify must be true or false.")
        options["verify"] = flag in TRUE
    return options


def ensure_bucket(url: str | None = None) -> bool:
    """Create STORAGE_URL's bucket when it does not exist yet (compose runs this once at start, so a
    fresh MinIO needs no manual step). True when it was created; a no-op for local disk."""
    import os

    import boto3
    from botocore.exceptions import ClientError

    url = os.environ.get("STORAGE_URL", "") if url is None else url
    if urlsplit(url.strip()).scheme.lower() != "s3":
        return False
    o = s3_options(url)
    client = boto3.client(
        "s3", endpoint_url=o.get("endpoint_url"), region_name=o.get("region_name"),
        aws_access_key_id=o.get("access_key"), aws_secret_access_key=o.get("secret_key"), verify=o.get("verify"),
    )
    try:
        client.head_bucket(Bucket=o["bucket_name"])
        return False
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = o.get("region_name")
    # us-east-1 is the one region S3 refuses as an explicit LocationConstraint.
    extra = {"CreateBucketConfiguration": {"LocationConstraint": region}} if region and region != "us-east-1" else {}
    client.create_bucket(Bucket=o["bucket_name"], **extra)
    return True


if __name__ == "__main__":  # python -m backend.config.storage_url: the compose `storage-init` service
    print("bucket created" if ensure_bucket() else "bucket ready (or local disk)")
