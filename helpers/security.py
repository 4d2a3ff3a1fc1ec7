"""Secured servers: where the course reads its security settings, and TLS and passwords for Redis.

Redis (every ``rediss://`` URL; the user name and password travel in ``REDIS_URL`` itself,
``redis://user:password@host:port/0``)::

    REDIS_TLS_CA     CA file (PEM) that signed the server's certificate (default: the system's CAs)
    REDIS_TLS_CERT   client certificate (PEM), when the server asks for one (tls-auth-clients yes)
    REDIS_TLS_KEY    its private key (PEM, unencrypted; default: inside REDIS_TLS_CERT)

Kafka's settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*) and what turns them into
kafka-python, librdkafka and Java-tool settings live in :mod:`helpers.kafka_security`, built on the
environment reading here (:func:`setting`, :func:`readable_file`) and :func:`ssl_context`.
A secret is never put on a command line, in a ``repr`` or in a message. When a connection fails,
:mod:`helpers.security_check` finds out why and says it in one sentence naming the variable to fix.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ServiceUnavailable

REDIS_VARS = ("REDIS_TLS_CA", "REDIS_TLS_CERT", "REDIS_TLS_KEY")
SECURITY_DOC = "see \"Secured servers\" in README.md"


def setting(name: str) -> str | None:
    """The value of environment variable ``name`` without surrounding blanks (None when unset or blank)."""
    value = os.environ.get(name, "").strip()
    return value or None


def readable_file(var: str) -> str | None:
    """The file named by environment variable ``var`` (None when unset); one sentence when it is unreadable."""
    path = setting(var)
    if path is None:
        return None
    path = str(Path(path).expanduser())
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ServiceUnavailable(f"{var}={path!r} is not a readable file: point it at the PEM file "
                                 f"(absolute path), or unset it; {SECURITY_DOC}.")
    return path


# --- Redis -----------------------------------------------------------------------------------------
def redis_tls_files() -> dict:
    """``{"ca", "cert", "key"}`` from REDIS_TLS_CA / REDIS_TLS_CERT / REDIS_TLS_KEY (None when unset)."""
    files = {"ca": readable_file("REDIS_TLS_CA"), "cert": readable_file("REDIS_TLS_CERT"),
             "key": readable_file("REDIS_TLS_KEY")}
    if files["key"] and not files["cert"]:
        raise ServiceUnavailable("REDIS_TLS_KEY is set but REDIS_TLS_CERT is not: set both (the client "
                                 f"certificate and its key), or neither; {SECURITY_DOC}.")
    return files


def redis_ssl_kwargs(url: str, *, constructor: bool = False) -> dict:
    """redis-py keyword arguments for ``url``: the TLS settings for a ``rediss://`` URL, else nothing.

    ``constructor=True`` adds ``ssl=True`` for ``redis.Redis(host=..., ...)`` (``from_url`` takes TLS
    from the scheme). The certificate of the server is always verified, its name included.
    """
    if urlsplit(url).scheme != "rediss":
        return {}
    files = redis_tls_files()
    kwargs = {"ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": files["ca"],
              "ssl_certfile": files["cert"], "ssl_keyfile": files["key"]}
    if constructor:
        kwargs["ssl"] = True
    return kwargs


def redis_ssl_context(url: str) -> ssl.SSLContext | None:
    """An SSL context with the same settings as the course's redis-py clients (None for ``redis://``)."""
    if urlsplit(url).scheme != "rediss":
        return None
    files = redis_tls_files()
    return ssl_context(files["ca"], files["cert"], files["key"])


def ssl_context(cafile: str | None, certfile: str | None, keyfile: str | None, verify: bool = True) -> ssl.SSLContext:
    """A client SSL context: the server's certificate and name verified against ``cafile`` (default: the
    system's CAs), with a client certificate when given; ``verify=False`` only to ask "does it speak TLS?"."""
    ctx = ssl.create_default_context(cafile=cafile) if verify else ssl._create_unverified_context()  # noqa: S323
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx

