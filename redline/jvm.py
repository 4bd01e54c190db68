"""JVM artifacts from Maven Central, pinned here and nowhere else.

Two classpaths are resolved with Maven's ``dependency:copy-dependencies`` into the
cache folder (``REDLINE_CACHE``, default ``.cache/`` in the checkout):

* ``spark``: Delta Lake and the Kafka connector, added to every Spark driver and to the
  Thrift Server with ``spark.jars``. Jars that pyspark already ships are removed so that
  one version of each library is on the classpath.
* ``kafka``: the Apache Kafka broker (KRaft) and its tools, run with plain ``java``.

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
}

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

        raise RedlineError(
            "JARS_MISSING",
            f"the {group} jars are not in {folder}; run `make setup` "
            f"(or `redline setup jars`) to fetch them from Maven Central",
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
    """``python -m redline.jvm CACHE [PYSPARK_JARS_DIR]``: fetch every group."""
    cache = Path(argv[0]).resolve()
    pyspark_jars = Path(argv[1]) if len(argv) > 1 else None
    for group in ARTIFACTS:
        fetch(cache, pyspark_jars if group == "spark" else None, group)


if __name__ == "__main__":
    main(sys.argv[1:])
