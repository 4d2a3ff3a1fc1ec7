"""Why a connection to a secured server failed, in one sentence naming the variable to fix.

Called by ``require_redis()`` / ``require_kafka()`` after a failure (never on the way to a working
connection): a TLS handshake of its own tells a certificate this machine cannot verify (wrong
``REDIS_TLS_CA`` / ``KAFKA_SSL_CAFILE``), a server that wants a client certificate, a TLS port reached
in plain text and a plain port reached with TLS. kafka-python only sees the broker close the
connection after a refused SASL login, so a short librdkafka probe asks for the broker's reason
(invalid credentials, a mechanism it does not offer).
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from urllib.parse import urlsplit

from . import config, kafka_security, security


def tls_probe(host: str, port: int, ctx: ssl.SSLContext, timeout: float = 1.5) -> tuple[str, str]:
    """Open one TLS connection as ``ctx`` would. Returns ``(kind, detail)``; kind is ``ok``,
    ``untrusted`` (certificate not verified), ``client-cert`` (the server wants/refused a client
    certificate), ``refused`` (the server sent a TLS alert), ``plain`` (the port does not speak TLS),
    ``timeout`` or ``unreachable``."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return "unreachable", exc.strerror or type(exc).__name__
    try:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(0.3)  # TLS 1.3: a refused client certificate arrives after the handshake
            try:
                tls.recv(1)
            except TimeoutError:
                pass
            return "ok", tls.version() or "TLS"
    except ssl.SSLCertVerificationError as exc:
        return "untrusted", exc.verify_message or exc.reason or "certificate verify failed"
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "CERTIFICATE_REQUIRED" in reason or "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reason:
            return "client-cert", reason.lower().replace("_", " ")
        if reason.startswith(("TLSV1_ALERT", "TLSV13_ALERT", "SSLV3_ALERT")):
            kind = "client-cert" if re.search(r"CERTIFICATE|UNKNOWN_CA", reason) else "refused"
            return kind, reason.lower().replace("_", " ")
        return "plain", reason.lower().replace("_", " ")
    except TimeoutError:
        return "timeout", f"no TLS handshake within {timeout:g} s"
    except OSError as exc:  # reset or closed during the handshake: not a TLS server
        return "plain", exc.strerror or type(exc).__name__
    finally:
        raw.close()


def _speaks_plain_redis(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-ERR", b"-WRONGPASS"))
    except OSError:
        return False


def explain_redis(url: str, exc: BaseException, timeout: float = 1.5) -> str | None:
    """Why a connection to ``url`` failed, when TLS is the reason (one sentence), else None."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    shown = config.mask_url(url)
    plain_sentence = (f"the server at {shown} speaks plain Redis without TLS: use a redis:// URL in REDIS_URL "
                      "(or the server's TLS port with rediss://).")
    if parts.scheme == "rediss":
        if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
            if _speaks_plain_redis(host, port):  # a plain port waits for a line that a TLS hello never ends
                return plain_sentence
        kind, detail = tls_probe(host, port, security.redis_ssl_context(url), timeout)
        if kind == "untrusted":
            ca = security.setting("REDIS_TLS_CA")
            fix = (f"REDIS_TLS_CA ({ca}) is not the CA that signed it" if ca else
                   "set REDIS_TLS_CA to the CA file that signed it")
            return f"Redis at {shown} has a TLS certificate this machine cannot verify ({detail}): {fix}."
        if kind == "client-cert":
            fix = ("the server refused the certificate in REDIS_TLS_CERT: check it was signed by a CA the server "
                   "trusts" if security.setting("REDIS_TLS_CERT") else "set REDIS_TLS_CERT and REDIS_TLS_KEY to your client "
                   "certificate and key")
            return f"Redis at {shown} asks for a client certificate ({detail}): {fix}."
        if kind in ("plain", "timeout") and _speaks_plain_redis(host, port):
            return plain_sentence
        if kind in ("plain", "timeout"):
            return f"the server at {shown} did not answer a TLS handshake ({detail}): check the TLS port in REDIS_URL."
        return None
    text = str(exc).lower()
    if isinstance(exc, (ConnectionError, OSError)) or "reset" in text or "closed" in text:
        kind, _ = tls_probe(host, port, security.ssl_context(None, None, None, verify=False), timeout)
        if kind in ("ok", "client-cert", "refused"):
            return (f"the server at {shown} expects TLS: use a rediss:// URL in REDIS_URL (with REDIS_TLS_CA, "
                    f"and REDIS_TLS_CERT / REDIS_TLS_KEY if it asks for a client certificate); {security.SECURITY_DOC}.")
    return None


def explain_kafka(bootstrap: str, servers: list[tuple[str, int]], timeout: float = 2.0) -> str | None:
    """Why the course's clients could not talk to Kafka at ``bootstrap``, when security settings are
    the reason (one sentence naming the variable to fix), else None. Takes up to ~``timeout`` s."""
    sec = kafka_security.kafka_for(bootstrap)
    host, port = servers[0]
    deadline = time.monotonic() + timeout
    if sec.tls:
        kind, detail = tls_probe(host, port, security.ssl_context(sec.cafile, sec.certfile, sec.keyfile), min(timeout, 1.5))
        if kind == "untrusted":
            fix = (f"KAFKA_SSL_CAFILE ({sec.cafile}) is not the CA that signed it" if sec.cafile else
                   "set KAFKA_SSL_CAFILE to the CA file that signed it")
            return f"Kafka at {bootstrap} has a TLS certificate this machine cannot verify ({detail}): {fix}."
        if kind == "client-cert":
            return (f"Kafka at {bootstrap} asks for a client certificate ({detail}): set KAFKA_SSL_CERTFILE and "
                    "KAFKA_SSL_KEYFILE to your client certificate and key.")
        if kind in ("plain", "timeout"):
            return (f"Kafka at {bootstrap} did not answer a TLS handshake ({detail}) although "
                    f"KAFKA_SECURITY_PROTOCOL={sec.protocol}: use the broker's TLS listener port in KAFKA_BOOTSTRAP, "
                    "or the protocol its listener speaks (PLAINTEXT or SASL_PLAINTEXT).")
    else:
        kind, _ = tls_probe(host, port, security.ssl_context(None, None, None, verify=False), min(timeout, 1.5))
        if kind in ("ok", "client-cert", "refused"):
            return (f"Kafka at {bootstrap} expects TLS but KAFKA_SECURITY_PROTOCOL={sec.protocol}: set it to "
                    f"SASL_SSL (or SSL), with KAFKA_SSL_CAFILE and the KAFKA_SASL_* login; {security.SECURITY_DOC}.")
    if sec.sasl:
        error = _librdkafka_error(bootstrap, sec, max(0.5, deadline - time.monotonic()))
        if error and "mechanism" in error.lower() and "unsupported" in error.lower():
            offered = re.search(r"supported mechanisms: ([\w,-]*)", error)
            return (f"Kafka at {bootstrap} does not offer SASL {sec.mechanism}"
                    f"{f' (it offers {offered.group(1)})' if offered and offered.group(1) else ''}: "
                    "set KAFKA_SASL_MECHANISM to one it offers, or check KAFKA_SECURITY_PROTOCOL against its listener.")
        if error:
            return (f"Kafka at {bootstrap} refused the login of {sec.username!r} with {sec.mechanism} ({error}): "
                    "check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.")
    if sec.secured:
        return (f"Kafka at {bootstrap} closed the connection before answering: check that KAFKA_SECURITY_PROTOCOL "
                f"({sec.protocol}) is what the broker's listener at that port speaks; {security.SECURITY_DOC}.")
    return None


def _librdkafka_error(bootstrap: str, sec: kafka_security.KafkaSecurity, timeout: float) -> str | None:
    """The login error librdkafka reports for ``sec`` at ``bootstrap`` within ``timeout`` s (kafka-python
    only sees the broker close the connection), or None."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return None
    found: list[str] = []

    def on_error(err) -> None:
        if err.name() == "_AUTHENTICATION":
            found.append(err.str())

    client = AdminClient({"bootstrap.servers": bootstrap, **sec.librdkafka(), "error_cb": on_error,
                          "log_level": 0, "socket.timeout.ms": max(1000, int(timeout * 1000))})
    deadline = time.monotonic() + timeout
    while not found and time.monotonic() < deadline:
        client.poll(0.1)
    if not found:
        return None
    text = re.sub(r"^\S+/bootstrap: ", "", found[0])
    text = re.sub(r"\s*\(after \d+ms in state \w+\)\s*$", "", text)
    return text.replace("SASL authentication error: ", "").rstrip(".")
