"""Certificates of the managed broker's SASL_SSL listener, made with the JDK's keytool.

A private certificate authority signs the broker's key (subject alternative names
127.0.0.1, localhost and the configured host). Everything lands in ``<home>/secrets``,
mode 0600:

- ``kafka_broker_keystore.p12``: the broker's key and certificate chain (PKCS12), its
  password in ``kafka_broker_keystore_password``; the broker reads that password through
  Kafka's FileConfigProvider, never from its command line;
- ``kafka_truststore.p12``: the authority's certificate for Java clients (Spark, Kafka's
  console tools), its password in ``kafka_truststore_password``;
- ``kafka_ca.pem``: the same certificate in PEM, kafka-python's ``ssl_cafile``;
- ``kafka_broker_cert.pem``: the broker's certificate, read to tell when it expires.

The authority's own key exists only while the broker's certificate is signed (in a
private temporary folder that is then deleted): nothing can sign another certificate
with it later. The set is made again, whole, when a file is missing, when the broker's
certificate expires within ``RENEW_DAYS`` or does not name the host. keytool reads every
password from a file (``-storepass:file``), so none is ever on a command line.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe

from redline import secrets
from redline.errors import RedlineError

KEYSTORE = "kafka_broker_keystore.p12"
KEYSTORE_PASSWORD = "kafka_broker_keystore_password"
TRUSTSTORE = "kafka_truststore.p12"
TRUSTSTORE_PASSWORD = "kafka_truststore_password"
CA_PEM = "kafka_ca.pem"
BROKER_PEM = "kafka_broker_cert.pem"
FILES = (KEYSTORE, KEYSTORE_PASSWORD, TRUSTSTORE, TRUSTSTORE_PASSWORD, CA_PEM, BROKER_PEM)

#: Days the authority and the broker's certificate are valid, and how many days before
#: the end a start makes new ones.
VALID_DAYS = 365
RENEW_DAYS = 30
_SAN_BASE = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ClientTrust:
    """What a client needs to trust the managed broker's certificate."""

    ca_pem: Path
    truststore: Path
    truststore_password: str


def keytool(java: str) -> str:
    """The keytool of the JDK that ``java`` belongs to."""
    tool = Path(os.path.realpath(java)).parent / "keytool"
    if not tool.is_file():
        raise RedlineError("KEYTOOL_MISSING",
                           f"no keytool next to {os.path.realpath(java)}; the SASL_SSL "
                           f"listener needs a full JDK (apt-get install "
                           f"openjdk-17-jdk-headless)")
    return str(tool)


def san_names(host: str) -> tuple[str, ...]:
    """Names the broker's certificate carries: loopback, localhost and ``host``."""
    return _SAN_BASE if host in _SAN_BASE else (*_SAN_BASE, host)


def _san_ext(host: str) -> str:
    import ipaddress

    def one(name: str) -> str:
        try:
            ipaddress.ip_address(name)
            return f"ip:{name}"
        except ValueError:
            return f"dns:{name}"
    return "SAN=" + ",".join(one(n) for n in san_names(host))


def renewal_reason(home: Path, host: str, now: dt.datetime | None = None) -> str:
    """Why the certificate set must be made (again); empty when it is fine."""
    folder = secrets.secrets_dir(home)
    missing = [f for f in FILES if not (folder / f).exists()]
    if missing:
        return f"missing {', '.join(missing)}"
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((folder / BROKER_PEM).read_bytes())
    now = now or dt.datetime.now(dt.UTC)
    left = cert.not_valid_after_utc - now
    if left < dt.timedelta(days=RENEW_DAYS):
        return f"the broker certificate expires {cert.not_valid_after_utc:%Y-%m-%d}"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "the broker certificate names no host"
    names = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    names |= set(san.get_values_for_type(x509.DNSName))
    if not set(san_names(host)) <= names:
        return f"the broker certificate does not name {host}"
    return ""


def ensure(home: Path, host: str, java: str,
           progress: Callable[[str], None] = print) -> bool:
    """Make the certificate set unless it is complete and valid; True when it was made."""
    reason = renewal_reason(home, host)
    if not reason:
        return False
    _generate(home, host, keytool(java))
    progress(f"kafka: made a certificate authority and the broker's TLS certificate "
             f"({reason}; valid {VALID_DAYS} days) in {secrets.secrets_dir(home)}")
    return True


def _generate(home: Path, host: str, tool: str) -> None:
    folder = secrets.secrets_dir(home)
    work = folder / f".kafka-tls.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        passwords = {name: work / name
                     for name in ("ca_password", KEYSTORE_PASSWORD, TRUSTSTORE_PASSWORD)}
        for path in passwords.values():
            _write_private(path, token_urlsafe(32) + "\n")
        ca_store, ca_pass = work / "ca.p12", passwords["ca_password"]
        key_store, key_pass = work / KEYSTORE, passwords[KEYSTORE_PASSWORD]
        trust_store, trust_pass = work / TRUSTSTORE, passwords[TRUSTSTORE_PASSWORD]
        csr, signed, ca_pem = work / "broker.csr", work / BROKER_PEM, work / CA_PEM
        days = str(VALID_DAYS)

        def run(*args: str) -> None:
            # keytool is a short-lived JVM: the quick compiler and a small GC halve its time.
            result = subprocess.run([tool, "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", *args], capture_output=True, text=True,
                                    stdin=subprocess.DEVNULL, cwd=work)
            if result.returncode != 0:
                raise RedlineError("KAFKA_TLS",
                                   f"keytool {args[0]} failed making the broker's "
                                   f"certificates:\n{result.stdout[-1500:]}"
                                   f"{result.stderr[-1500:]}")

        run("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "3072",
            "-dname", "CN=redline local Kafka CA", "-validity", days,
            "-ext", "bc:c=ca:true,pathlen:0", "-ext", "ku:c=keyCertSign,cRLSign",
            "-storetype", "PKCS12", "-keystore", str(ca_store), "-storepass:file", str(ca_pass))
        run("-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca_store),
            "-storepass:file", str(ca_pass), "-file", str(ca_pem))
        run("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
            "-dname", "CN=localhost", "-validity", days, "-ext", _san_ext(host),
            "-storetype", "PKCS12", "-keystore", str(key_store),
            "-storepass:file", str(key_pass))
        run("-certreq", "-alias", "broker", "-keystore", str(key_store),
            "-storepass:file", str(key_pass), "-file", str(csr))
        run("-gencert", "-rfc", "-alias", "ca", "-keystore", str(ca_store),
            "-storepass:file", str(ca_pass), "-infile", str(csr), "-outfile", str(signed),
            "-validity", days, "-ext", _san_ext(host),
            "-ext", "ku:c=digitalSignature,keyEncipherment", "-ext", "eku=serverAuth")
        # The chain: the authority first, so that the signed reply is accepted.
        run("-importcert", "-noprompt", "-alias", "ca", "-file", str(ca_pem),
            "-keystore", str(key_store), "-storepass:file", str(key_pass))
        run("-importcert", "-alias", "broker", "-file", str(signed),
            "-keystore", str(key_store), "-storepass:file", str(key_pass))
        run("-importcert", "-noprompt", "-alias", "ca", "-file", str(ca_pem),
            "-storetype", "PKCS12", "-keystore", str(trust_store),
            "-storepass:file", str(trust_pass))
        # The authority's key goes with the work folder; the rest replaces the old set.
        for name in FILES:
            os.chmod(work / name, 0o600)
            os.replace(work / name, folder / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def client_trust(home: Path) -> ClientTrust:
    """The files a client trusts the managed broker with; a clear error before the
    broker made them."""
    folder = secrets.secrets_dir(home)
    missing = [f for f in (CA_PEM, TRUSTSTORE, TRUSTSTORE_PASSWORD)
               if not (folder / f).exists()]
    if missing:
        raise RedlineError("KAFKA_TLS_MISSING",
                           f"{', '.join(str(folder / f) for f in missing)} missing: the "
                           f"managed broker makes its certificates when it starts "
                           f"(`redline up`)")
    return ClientTrust(folder / CA_PEM, folder / TRUSTSTORE,
                       secrets.read(home, TRUSTSTORE_PASSWORD))


def keystore_password(home: Path) -> str:
    return secrets.read(home, KEYSTORE_PASSWORD)
