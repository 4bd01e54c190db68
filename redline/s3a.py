"""A lake on S3 (or an S3-compatible store) through Hadoop's S3A connector.

Three things the Spark session needs when the lake root is ``s3a://``, in one place:

- the S3A jars (``jvm`` group ``s3a``), on the classpath of that session only;
- the endpoint settings, which spark-conf/ reads as placeholders (``${REDLINE_S3_...}``);
- credentials. S3A takes them from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (the AWS
  SDK v2's ``EnvironmentVariableCredentialsProvider``, spark-conf/). When both are set they
  are used as they are. Otherwise, when ``lake.s3_endpoint`` is the managed object store's,
  redline puts that store's generated keys (``<home>/secrets``, 0600) into its own process
  environment before the JVM starts: never into a Spark setting (those reach command lines
  and event logs), never into a log.

Failures of the store reach users as ``RedlineError`` (``explain``): refused keys, a missing
bucket and an unreachable endpoint each get their own code, not a Java stack trace.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from redline import secrets
from redline.config import Config
from redline.credentials import OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY
from redline.errors import RedlineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ACCESS_KEY_ENV, SECRET_KEY_ENV = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
SCHEME = "s3a://"

#: Where this process's S3 keys came from ("environment", "managed") and the endpoint they
#: are for, for error messages.
_source: str | None = None
_endpoint = ""


def is_s3a(lake_root: str) -> bool:
    return lake_root.startswith(SCHEME)


def uses_managed_store(cfg: Config) -> bool:
    """Whether the lake lives on the object store redline manages (``objectstore``)."""
    return is_s3a(cfg.lake_root) and \
        cfg.lake.s3_endpoint.rstrip("/") == cfg.objectstore.endpoint


def placeholders(cfg: Config) -> dict[str, str]:
    """Values of the ``${REDLINE_S3_*}`` placeholders of spark-conf/ files."""
    endpoint = cfg.lake.s3_endpoint.rstrip("/")
    return {
        "${REDLINE_S3_ENDPOINT}": endpoint,
        "${REDLINE_S3_PATH_STYLE}": "true" if cfg.lake.s3_path_style else "false",
        # A custom endpoint has no region of its own, but the SDK signs with one.
        "${REDLINE_S3_REGION}": cfg.lake.s3_region or ("us-east-1" if endpoint else ""),
    }


def export_credentials(cfg: Config) -> str | None:
    """Make the lake's S3 keys visible to the Spark JVM this process is about to start.

    Returns where they come from: ``"environment"`` (both variables already set),
    ``"managed"`` (the managed store's generated keys, exported now), or None (not an s3a
    lake, or no keys: S3A reports that itself and ``require_access`` explains it).
    """
    global _source, _endpoint
    if not is_s3a(cfg.lake_root):
        return None
    _endpoint = cfg.lake.s3_endpoint
    present = [v for v in (ACCESS_KEY_ENV, SECRET_KEY_ENV) if os.environ.get(v)]
    if len(present) == 1:
        missing = SECRET_KEY_ENV if present == [ACCESS_KEY_ENV] else ACCESS_KEY_ENV
        raise RedlineError("S3_CREDENTIALS", f"{present[0]} is set but {missing} is not; set "
                                             f"both (or neither, to use the managed object "
                                             f"store's generated keys)")
    if present:
        _source = "environment"
    elif uses_managed_store(cfg):
        os.environ[ACCESS_KEY_ENV] = secrets.read(cfg.home, OBJECTSTORE_ACCESS_KEY)
        os.environ[SECRET_KEY_ENV] = secrets.read(cfg.home, OBJECTSTORE_SECRET_KEY)
        _source = "managed"
    return _source


def _describe_keys() -> str:
    if _source == "managed":
        return (f"the managed object store's generated keys ({OBJECTSTORE_ACCESS_KEY}, "
                f"{OBJECTSTORE_SECRET_KEY} in the secrets folder)")
    if os.environ.get(ACCESS_KEY_ENV):
        return f"the keys in {ACCESS_KEY_ENV}/{SECRET_KEY_ENV}"
    return "no keys at all"


def _texts(exc: BaseException | None):
    """The message of ``exc`` and of each cause, with the JVM stack trace pyspark keeps (a
    Py4JJavaError's own text carries the Java exception and its causes)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield f"{exc}\n{getattr(exc, '_stackTrace', '') or ''}"
        exc = getattr(exc, "_cause", None) or exc.__cause__


_DENIED = ("AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "Status Code: 403", "(403)")
_NO_KEYS = ("NoAuthWithAWSException", "Unable to load credentials", "No AWS Credentials")
_NO_BUCKET = ("UnknownStoreException", "NoSuchBucket")
_UNREACHABLE = ("Connection refused", "ConnectException", "Unable to execute HTTP request",
                "UnknownHostException", "ConnectTimeoutException", "SocketTimeoutException",
                "AWSClientIOException", "NoHttpResponseException")


def explain(exc: BaseException, lake_root: str) -> RedlineError | None:
    """A ``RedlineError`` for an S3 failure of an s3a:// lake, or None for any other."""
    if not is_s3a(lake_root):
        return None
    text = "\n".join(_texts(exc))
    where = f"{lake_root} (at {_endpoint or 'AWS S3'})"
    bucket = lake_root[len(SCHEME):].split("/", 1)[0]
    if any(m in text for m in _NO_KEYS):
        return RedlineError(
            "LAKE_NO_CREDENTIALS",
            f"the lake {where} needs S3 keys and none were found: set {ACCESS_KEY_ENV} and "
            f"{SECRET_KEY_ENV}, or point lake.s3_endpoint at the managed object store "
            f"(objectstore.endpoint) to use its generated keys")
    if any(m in text for m in _DENIED):
        return RedlineError(
            "LAKE_ACCESS_DENIED",
            f"the object store refused access to {where} with {_describe_keys()}: check "
            f"that the keys are current and allowed to read and write bucket {bucket!r}")
    if any(m in text for m in _NO_BUCKET):
        return RedlineError(
            "LAKE_BUCKET_MISSING",
            f"bucket {bucket!r} of the lake {where} does not exist: create it (the managed "
            f"object store creates objectstore.bucket at start) or fix lake.root")
    if any(m in text for m in _UNREACHABLE):
        return RedlineError(
            "LAKE_UNREACHABLE",
            f"the object store of the lake {where} did not answer (S3A retried first). "
            f"Start it (`redline up objectstore` for the managed one) or fix "
            f"lake.s3_endpoint, then run the command again: streaming queries resume from "
            f"their checkpoints, and their writes are idempotent (nothing lands twice)")
    return None


def require_access(spark: SparkSession, cfg: Config) -> None:
    """Look at the lake root once, so that refused keys, a missing bucket or a store that is
    down stop a command at its start with a clear error, not deep inside a job."""
    if not is_s3a(cfg.lake_root):
        return
    from py4j.protocol import Py4JJavaError

    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(cfg.lake_root)
    try:
        path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path)
    except Py4JJavaError as exc:
        error = explain(exc, cfg.lake_root)
        if error is None:
            first = str(exc.java_exception.toString()).splitlines()[0]
            error = RedlineError("LAKE_UNAVAILABLE", f"cannot read the lake {cfg.lake_root}: "
                                                     f"{first}")
        raise error from None
