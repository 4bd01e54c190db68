"""JVM artifacts from Maven Central, pinned here and nowhere else.

Two classpaths are resolved with Maven's ``dependency:copy-dependencies`` into the
cache folder (``REDLINE_CACHE``, default ``.cache/`` in the checkout):

* ``spark``: Delta Lake and the Kafka connector, added to every Spark driver and to the
  Thrift Server with ``spark.jars``. Jars that pyspark already ships are removed so that
  one version of each library is on the classpath.
* ``kafka``: the Apache Kafka broker (KRaft) and its tools, run with plain ``java``.
* ``s3a``: Hadoop's S3A connector and the AWS SDK v2 modules it uses, added to a Spark
  driver only when the lake root is ``s3a://``. It is resolved on demand (``make
  objectstore``, or ``python -m redline.jvm CACHE PYSPARK_JARS s3a``), never by ``make
  setup``: the local profile does not need it.

Spark's own ``spark.jars.packages`` (Ivy at session start) is deliberately not used:
resolution happens once at setup, and a session never touches the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SPARK_VERSION = "4.2.0"
SCALA_BINARY = "2.13"
DELTA_VERSION = "4.4.0"
KAFKA_VERSION = "4.3.1"
#: Hadoop of pyspark 4.2.0 (its jars folder ships hadoop-client-api-3.5.0): hadoop-aws must
#: match it exactly.
HADOOP_VERSION = "3.5.0"
#: ``aws-java-sdk-v2.version`` of hadoop-project 3.5.0's POM, the SDK hadoop-aws is built on.
AWS_SDK_VERSION = "2.35.4"

ARTIFACTS: Mapping[str, Sequence[str]] = {
    "spark": (
        f"io.delta:delta-spark_4.2_{SCALA_BINARY}:{DELTA_VERSION}",
        f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_BINARY}:{SPARK_VERSION}",
        # Maven Central has no spark-token-provider-kafka 4.2.0 (nor 4.1.x); the 4.0.0
        # build of this small helper library works with the 4.2.0 connector.
        f"org.apache.spark:spark-token-provider-kafka-0-10_{SCALA_BINARY}:4.0.0",
    ),
    "kafka": (
        f"org.apache.kafka:kafka_{SCALA_BINARY}:{KAFKA_VERSION}",
        f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}",
        "org.slf4j:slf4j-api:2.0.17",
        "org.apache.logging.log4j:log4j-slf4j2-impl:2.24.3",
        "org.apache.logging.log4j:log4j-core:2.24.3",
    ),
    # hadoop-aws depends on the SDK's ``bundle`` jar (686 MB: every AWS service, shaded).
    # It is excluded below; these modules are what S3A calls: the S3 client (sync, and
    # async through the transfer manager for copies and uploads), STS for assumed roles,
    # and the Apache and Netty HTTP clients they bring. About 30 MB in all.
    "s3a": (
        f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}",
        f"software.amazon.awssdk:s3:{AWS_SDK_VERSION}",
        f"software.amazon.awssdk:s3-transfer-manager:{AWS_SDK_VERSION}",
        f"software.amazon.awssdk:sts:{AWS_SDK_VERSION}",
    ),
}

#: Groups that ``make setup`` skips: fetched only by the command that needs them.
ON_DEMAND = ("s3a",)
#: Groups added to a Spark JVM: jars pyspark already ships are removed from them.
SPARK_GROUPS = ("spark", "s3a")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.redline</groupId>
  <artifactId>redline-{group}-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""

# Spark's parent POM declares extra repositories (a GCS mirror) that this network cannot
# reach; every request goes to Maven Central instead.
_SETTINGS = """<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror><id>central-only</id><mirrorOf>*</mirrorOf>
      <url>https://repo1.maven.org/maven2</url></mirror>
  </mirrors>
</settings>
"""

# Dependencies whose own transitive dependencies are not wanted: the connector's
# token provider is replaced by the pinned one above, whose kafka-clients is too old.
EXCLUDE_TRANSITIVE: Mapping[str, Sequence[str]] = {
    f"spark-sql-kafka-0-10_{SCALA_BINARY}": (
        f"org.apache.spark:spark-token-provider-kafka-0-10_{SCALA_BINARY}",),
    f"spark-token-provider-kafka-0-10_{SCALA_BINARY}": ("*:*",),
    "hadoop-aws": ("software.amazon.awssdk:bundle",),
    # pyspark's jcl-over-slf4j provides the commons-logging API the SDK's HTTP client uses.
    **{a: ("commons-logging:commons-logging",) for a in ("s3", "s3-transfer-manager", "sts")},
}

_DEP = """    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>
      <exclusions>{exclusions}</exclusions></dependency>"""
_EXCLUSION = "<exclusion><groupId>{g}</groupId><artifactId>{a}</artifactId></exclusion>"


def classpath_dir(cache: Path, group: str) -> Path:
    """Folder holding the resolved jars of one classpath group."""
    return cache / "jars" / group


def jars(cache: Path, group: str) -> list[Path]:
    """The resolved jars of ``group``; raises if setup has not fetched them."""
    folder = classpath_dir(cache, group)
    marker = folder / ".complete"
    if not marker.exists() or marker.read_text() != _fingerprint(group):
        from redline.errors import RedlineError

        fix = ("`make s3a` (or `make objectstore`)" if group == "s3a"
               else "`make setup` (or `redline setup jars`)")
        raise RedlineError(
            "JARS_MISSING",
            f"the {group} jars are not in {folder}; run {fix} to fetch them from Maven "
            f"Central",
        )
    return sorted(folder.glob("*.jar"))


def _fingerprint(group: str) -> str:
    return "\n".join(ARTIFACTS[group]) + "\n"


def _pom(group: str) -> str:
    deps = []
    for coord in ARTIFACTS[group]:
        g, a, v = coord.split(":")
        exclusions = "".join(
            _EXCLUSION.format(g=eg, a=ea)
            for eg, ea in (e.split(":") for e in EXCLUDE_TRANSITIVE.get(a, ())))
        deps.append(_DEP.format(g=g, a=a, v=v, exclusions=exclusions))
    return _POM.format(group=group, deps="\n".join(deps))


def _artifact_name(jar: Path) -> str:
    """``delta-spark_2.13-4.4.0.jar`` -> ``delta-spark_2.13``."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar.name)


def fetch(cache: Path, pyspark_jars: Path | None, group: str) -> list[Path]:
    """Resolve ``group`` with Maven into the cache (idempotent) and return its jars."""
    folder = classpath_dir(cache.resolve(), group)
    marker = folder / ".complete"
    if marker.exists() and marker.read_text() == _fingerprint(group):
        return sorted(folder.glob("*.jar"))
    if shutil.which("mvn") is None:
        raise SystemExit("Maven (mvn) is required to fetch JVM artifacts: apt-get install maven")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    work = cache / "maven" / group
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_pom(group))
    (work / "settings.xml").write_text(_SETTINGS)
    print(f"resolving {group} jars from Maven Central: {', '.join(ARTIFACTS[group])}", flush=True)
    subprocess.run(
        ["mvn", "-B", "-q", "-Dstyle.color=never",
         "-s", str(work / "settings.xml"), "-f", str(work / "pom.xml"),
         "dependency:copy-dependencies", f"-DoutputDirectory={folder}",
         "-DincludeScope=runtime"],
        check=True,
    )
    if pyspark_jars is not None:
        shipped = {_artifact_name(j) for j in pyspark_jars.glob("*.jar")}
        for jar in folder.glob("*.jar"):
            if _artifact_name(jar) in shipped:
                jar.unlink()
    marker.write_text(_fingerprint(group))
    found = sorted(folder.glob("*.jar"))
    print(f"{group}: {len(found)} jars in {folder}", flush=True)
    return found


def main(argv: Sequence[str]) -> None:
    """``python -m redline.jvm CACHE [PYSPARK_JARS_DIR [GROUP ...]]``: fetch the named
    groups, by default every group but the on-demand ones (``ON_DEMAND``)."""
    cache = Path(argv[0]).resolve()
    pyspark_jars = Path(argv[1]) if len(argv) > 1 else None
    groups = argv[2:] or [g for g in ARTIFACTS if g not in ON_DEMAND]
    unknown = [g for g in groups if g not in ARTIFACTS]
    if unknown:
        raise SystemExit(f"no classpath group {', '.join(unknown)}; groups: {', '.join(ARTIFACTS)}")
    for group in groups:
        fetch(cache, pyspark_jars if group in SPARK_GROUPS else None, group)


if __name__ == "__main__":
    main(sys.argv[1:])
