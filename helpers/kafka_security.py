"""Secured Kafka: SASL and TLS settings from environment variables, for every kind of client.

Applied to the Kafka the course is pointed at (``config.kafka_bootstrap()``; the throwaway clusters
the course starts on 127.0.0.1 stay PLAINTEXT)::

    KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    KAFKA_SASL_MECHANISM      PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with SASL_*)
    KAFKA_SASL_USERNAME       the login (with SASL_*)
    KAFKA_SASL_PASSWORD       its password (with SASL_*)
    KAFKA_SSL_CAFILE          CA file (PEM) that signed the broker's certificate (default: the system's CAs)
    KAFKA_SSL_CERTFILE        client certificate (PEM), when the listener asks for one (ssl.client.auth)
    KAFKA_SSL_KEYFILE         its private key (PEM, unencrypted PKCS#8 for Kafka's Java tools)

The same settings reach kafka-python (:meth:`KafkaSecurity.kafka_python`), librdkafka / confluent-kafka
(:meth:`KafkaSecurity.librdkafka`) and Kafka's Java tools (:func:`command_config`: a 0600 properties
file, removed after the command). A secret is never put on a command line, in a ``repr`` or in a
message. Redis's TLS settings and the environment reading shared with them are in :mod:`helpers.security`.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import ServiceUnavailable
from .security import SECURITY_DOC, readable_file, setting

KAFKA_VARS = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
              "KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach the course's Kafka; the password is never part of ``repr``."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def secured(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def describe(self) -> str:
        """``SASL_SSL, SCRAM-SHA-512 as alice, CA /path/ca.pem`` (no secret)."""
        parts = [self.protocol]
        if self.sasl:
            parts.append(f"{self.mechanism} as {self.username}")
        if self.tls:
            parts.append(f"CA {self.cafile}" if self.cafile else "the system's CAs")
            if self.certfile:
                parts.append(f"client certificate {self.certfile}")
        return ", ".join(parts)

    def kafka_python(self) -> dict:
        """Keyword arguments for kafka-python's KafkaProducer / KafkaConsumer / KafkaAdminClient."""
        opts: dict = {"security_protocol": self.protocol}
        if self.sasl:
            opts.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                        sasl_plain_password=self.password)
        if self.tls:
            opts.update(ssl_check_hostname=True, ssl_cafile=self.cafile, ssl_certfile=self.certfile,
                        ssl_keyfile=self.keyfile)
        return opts

    def librdkafka(self) -> dict:
        """The same settings as librdkafka (confluent-kafka) configuration properties."""
        opts: dict = {"security.protocol": self.protocol.lower()}
        if self.sasl:
            opts.update({"sasl.mechanism": self.mechanism, "sasl.username": self.username,
                         "sasl.password": self.password})
        if self.tls:
            opts["ssl.endpoint.identification.algorithm"] = "https"
            for key, value in (("ssl.ca.location", self.cafile), ("ssl.certificate.location", self.certfile),
                               ("ssl.key.location", self.keyfile)):
                if value:
                    opts[key] = value
        return opts

    def java_properties(self) -> str:
        """The same settings as a Java client properties file (Kafka's tools: ``--command-config``)."""
        lines = [f"security.protocol={self.protocol}"]
        if self.sasl:
            module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if self.mechanism == "PLAIN"
                      else "org.apache.kafka.common.security.scram.ScramLoginModule")
            jaas = f'{module} required username="{_jaas(self.username)}" password="{_jaas(self.password)}";'
            lines += [f"sasl.mechanism={self.mechanism}", f"sasl.jaas.config={_prop(jaas)}"]
        if self.tls:
            lines.append("ssl.endpoint.identification.algorithm=https")
            if self.cafile:
                lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={_prop(self.cafile)}"]
            if self.certfile:
                key = Path(self.keyfile or self.certfile).read_text()
                chain = Path(self.certfile).read_text()
                chain = "".join(re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\s*", chain, re.S))
                key = re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", key, re.S)
                lines += ["ssl.keystore.type=PEM", f"ssl.keystore.certificate.chain={_prop(chain.strip())}",
                          f"ssl.keystore.key={_prop(key.group(0) if key else '')}"]
        return "\n".join(lines) + "\n"


def _jaas(value: str | None) -> str:
    """A value inside a JAAS option's double quotes."""
    return (value or "").replace("\\", "\\\\").replace('"', '\\"')


def _prop(value: str) -> str:
    """A Java .properties value: backslashes, line breaks, leading blanks and non-ASCII escaped."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = "".join(c if ord(c) < 128 else f"\\u{ord(c):04x}" for c in out)
    return ("\\" + out) if out[:1] in (" ", "\t") else out


def kafka_security() -> KafkaSecurity:
    """The settings from the KAFKA_* variables, checked: one sentence naming the variable when one is wrong."""
    protocol = (setting("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ServiceUnavailable(f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {', '.join(PROTOCOLS)}; "
                                 f"{SECURITY_DOC}.")
    given = [v for v in KAFKA_VARS[1:] if setting(v)]
    if protocol == "PLAINTEXT" and given:
        raise ServiceUnavailable(f"{given[0]} is set but KAFKA_SECURITY_PROTOCOL is not: set it to SASL_SSL, "
                                 f"SSL or SASL_PLAINTEXT as the broker's listener expects; {SECURITY_DOC}.")
    mechanism = (setting("KAFKA_SASL_MECHANISM") or "").upper() or None
    username, password = setting("KAFKA_SASL_USERNAME"), os.environ.get("KAFKA_SASL_PASSWORD") or None
    if protocol.startswith("SASL_"):
        if mechanism not in MECHANISMS:
            raise ServiceUnavailable(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM set to "
                                     f"one of {', '.join(MECHANISMS)} (now {mechanism or 'unset'}); {SECURITY_DOC}.")
        missing = [n for n, v in (("KAFKA_SASL_USERNAME", username), ("KAFKA_SASL_PASSWORD", password)) if not v]
        if missing:
            raise ServiceUnavailable(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}: the "
                                     f"login the broker's operator gave you; {SECURITY_DOC}.")
    tls = protocol in ("SSL", "SASL_SSL")
    files = {v: readable_file(v) for v in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")}
    if not tls and any(files.values()):
        raise ServiceUnavailable(f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                                 f"TLS: use SASL_SSL or SSL; {SECURITY_DOC}.")
    if files["KAFKA_SSL_KEYFILE"] and not files["KAFKA_SSL_CERTFILE"]:
        raise ServiceUnavailable("KAFKA_SSL_KEYFILE is set but KAFKA_SSL_CERTFILE is not: set both (the client "
                                 f"certificate and its key), or neither; {SECURITY_DOC}.")
    return KafkaSecurity(protocol, mechanism if protocol.startswith("SASL_") else None,
                         username if protocol.startswith("SASL_") else None,
                         password if protocol.startswith("SASL_") else None,
                         files["KAFKA_SSL_CAFILE"], files["KAFKA_SSL_CERTFILE"], files["KAFKA_SSL_KEYFILE"])


def _servers(bootstrap: str) -> set[str]:
    return {part.strip().lower() for part in (bootstrap or "").split(",") if part.strip()}


def applies_to(bootstrap: str | None) -> bool:
    """True when ``bootstrap`` is the Kafka the course is pointed at (None means that one)."""
    if bootstrap is None:
        return True
    try:
        return _servers(bootstrap) == _servers(config.kafka_bootstrap())
    except ServiceUnavailable:  # no usable endpoint recorded: then ``bootstrap`` is not the course's Kafka
        return False


def kafka_for(bootstrap: str | None = None) -> KafkaSecurity:
    """The settings for a client of ``bootstrap``: the KAFKA_* ones for the course's Kafka, PLAINTEXT
    for another (a throwaway cluster the course started on 127.0.0.1)."""
    return kafka_security() if applies_to(bootstrap) else KafkaSecurity()


def librdkafka_config(bootstrap: str | None = None, **overrides) -> dict:
    """A librdkafka (confluent-kafka) config dict for ``bootstrap`` (default: the course's Kafka), with
    the KAFKA_* security settings when they apply; ``overrides`` use librdkafka's dotted names
    (pass them as ``**{"group.id": g}``)."""
    bootstrap = bootstrap or config.kafka_bootstrap()
    return {"bootstrap.servers": bootstrap, **kafka_for(bootstrap).librdkafka(), **overrides}


# --- Kafka's Java tools ----------------------------------------------------------------------------
@contextmanager
def command_config(sec: KafkaSecurity | None = None):
    """A Java client properties file with ``sec`` (default: the KAFKA_* settings), readable by this
    user only (0600, in a 0700 directory) and deleted when the block ends. Yields its path."""
    sec = sec or kafka_security()
    folder = tempfile.mkdtemp(prefix="streamslab-kafka-")
    path = Path(folder) / "client.properties"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(sec.java_properties())
        yield str(path)
    finally:
        with suppress(OSError):
            path.unlink()
        with suppress(OSError):
            os.rmdir(folder)


def tool_bootstrap(tool: str, args: list[str]) -> str | None:
    """The bootstrap servers a Kafka tool's arguments name (``--bootstrap-server`` or the first
    positional argument of kafka-e2e-latency); None when they name none."""
    if tool == "kafka-e2e-latency":
        return args[0] if args else None
    for i, arg in enumerate(args):
        if arg == "--bootstrap-server" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--bootstrap-server="):
            return arg.split("=", 1)[1]
    return None


def with_command_config(tool: str, args: list[str], path: str) -> list[str]:
    """``args`` with the properties file ``path`` where ``tool`` takes it."""
    if tool == "kafka-e2e-latency":
        return [*args, path] if len(args) == 5 else args
    return [*args, "--command-config", path]


def needs_command_config(tool: str, args: list[str], takes_config: set[str]) -> bool:
    """True when ``tool`` talks to the course's (secured) Kafka and no properties file is given yet."""
    if tool not in takes_config or "--command-config" in args or any(a.startswith("--command-config=") for a in args):
        return False
    bootstrap = tool_bootstrap(tool, args)
    return bootstrap is not None and applies_to(bootstrap) and kafka_security().secured
