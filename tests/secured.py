"""A secured Redis and a secured Kafka listener for tests/test_secured_servers.py, made here and now.

- :func:`make_pki`: a throwaway certificate authority (``trustme``) with a server certificate for
  127.0.0.1/localhost, a client certificate, and a second CA that signed nothing of ours.
- :class:`SecuredRedis`: ``redis-server`` with ``requirepass``, an ACL user limited to the course's
  names (``~streamslab:*``), a plain port and a TLS port that demands a client certificate. Every
  secret is in a 0600 config file, never on its command line.
- :class:`SecuredKafka`: a KRaft broker (:class:`helpers.services.kafka_server.KafkaBroker`) with a
  second listener, ``SECURED``, speaking SASL_SSL (SCRAM-SHA-512 and PLAIN) and requiring a client
  certificate. Its PLAINTEXT listener
  stays for the supervisor's readiness check and to create the SCRAM credential with the admin API
  (so no password is given on a command line, not even the storage tool's ``--add-scram``).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from helpers.services.kafka_server import KafkaBroker
from helpers.services.process import free_port, port_open
from helpers.services.redis_server import find_redis_server

USER = "alice"
#: three secrets, each checked for in every message, log, result and command line
REDIS_PASSWORD = "rds-Acl-7f3k9Q"
DEFAULT_PASSWORD = "rds-Req-2m8w4Z"
KAFKA_PASSWORD = "kfk-Scram-5h1x6V"
PLAIN_PASSWORD = "kfk-Plain-9c2r7T"
SECRETS = (REDIS_PASSWORD, DEFAULT_PASSWORD, KAFKA_PASSWORD, PLAIN_PASSWORD)


@dataclass
class Pki:
    ca: Path          # the CA that signed the servers' and the client's certificates
    other_ca: Path    # a CA that signed nothing here (the "wrong CA")
    server_cert: Path
    server_key: Path
    server_pem: Path  # key + certificate chain in one file (Kafka's PEM keystore)
    client_cert: Path
    client_key: Path
    client_key_pkcs8: Path  # the same key as PKCS#8, the form Kafka's Java tools read


def _private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _pkcs8(pem: bytes) -> bytes:
    """The key as unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): the form Kafka's PEM keystore reads."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_pki(home: Path) -> Pki:
    import trustme

    home.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("streamslab-learner@example.org")
    ca.cert_pem.write_to_path(str(home / "ca.pem"))
    other.cert_pem.write_to_path(str(home / "other-ca.pem"))
    chain = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    (home / "server.crt").write_bytes(chain)
    _private(home / "server.key", server.private_key_pem.bytes())
    _private(home / "server.pem", _pkcs8(server.private_key_pem.bytes()) + chain)
    (home / "client.crt").write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    _private(home / "client.key", client.private_key_pem.bytes())
    _private(home / "client-pkcs8.key", _pkcs8(client.private_key_pem.bytes()))
    return Pki(home / "ca.pem", home / "other-ca.pem", home / "server.crt", home / "server.key",
               home / "server.pem", home / "client.crt", home / "client.key", home / "client-pkcs8.key")


class SecuredRedis:
    """redis-server: ``port`` plain TCP, ``tls_port`` TLS with client certificates required."""

    def __init__(self, home: Path, pki: Pki):
        self.home, self.pki = home, pki
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port(27400)
        self.tls_port = free_port(self.port + 1)
        conf = "\n".join([
            f"port {self.port}", f"tls-port {self.tls_port}", "bind 127.0.0.1", "protected-mode yes",
            f"dir {home}", f"logfile {home / 'redis.log'}", 'save ""', "appendonly no",
            f"tls-cert-file {pki.server_cert}", f"tls-key-file {pki.server_key}",
            f"tls-ca-cert-file {pki.ca}", "tls-auth-clients yes",
            f"requirepass {DEFAULT_PASSWORD}",
            # a learner's account: the course's names only, no server administration (but INFO)
            f"user {USER} on >{REDIS_PASSWORD} ~streamslab:* &streamslab:* +@all -@dangerous +info",
        ]) + "\n"
        self.conf = _private(home / "redis.conf", conf.encode())
        self.proc = subprocess.Popen([find_redis_server(), str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not port_open(self.tls_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the secured redis-server did not start: {self.log()[-800:]}")
            time.sleep(0.05)
        self.admin = redis.Redis(port=self.port, password=DEFAULT_PASSWORD, socket_timeout=5, decode_responses=True)
        self.admin.ping()

    def url(self, tls: bool = True, user: str = USER, password: str = REDIS_PASSWORD) -> str:
        scheme, port = ("rediss", self.tls_port) if tls else ("redis", self.port)
        return f"{scheme}://{user}:{password}@127.0.0.1:{port}/0"

    def log(self) -> str:
        try:
            return (self.home / "redis.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class SecuredKafka:
    """One KRaft broker with a SASL_SSL listener ``SECURED`` on :attr:`port` (the PLAINTEXT one is internal)."""

    def __init__(self, home: Path, pki: Pki, libs: Path):
        self.pki = pki
        plain = free_port(29500)
        while free_port(plain + 1) != plain + 1:
            plain = free_port(plain + 2)
        self.port = free_port(plain + 2)
        lname = "listener.name.secured"
        extra = {
            "listeners": f"PLAINTEXT://127.0.0.1:{plain},CONTROLLER://127.0.0.1:{plain + 1},"
                         f"SECURED://127.0.0.1:{self.port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain},SECURED://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SECURED:SASL_SSL",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            f"{lname}.sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            f"{lname}.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{lname}.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{PLAIN_PASSWORD}";',
            f"{lname}.ssl.keystore.type": "PEM",
            f"{lname}.ssl.keystore.location": str(pki.server_pem),
            f"{lname}.ssl.truststore.type": "PEM",
            f"{lname}.ssl.truststore.location": str(pki.ca),
            f"{lname}.ssl.client.auth": "required",  # and a client certificate signed by the CA
        }
        self.broker = KafkaBroker("kafka", home, plain, controller_port=plain + 1, libs=libs, heap="384m",
                                  extra_config=extra)

    def start(self) -> SecuredKafka:
        """Format, start, create the SCRAM user (about 15 s); the ports are known before."""
        self.broker.start()
        os.chmod(self.broker.home / "server.properties", 0o600)
        self._add_scram_user()
        return self

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _add_scram_user(self, timeout: float = 30.0) -> None:
        from kafka import KafkaAdminClient
        from kafka.admin._users import UserScramCredentialUpsertion

        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=10000,
                                 client_id="streamslab-test-setup")
        try:
            result = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(USER, "SCRAM-SHA-512", KAFKA_PASSWORD)])
            assert result == {USER: None}, result
            deadline = time.monotonic() + timeout
            while not admin.describe_user_scram_credentials([USER]).get(USER, {}).get("credential_infos"):
                assert time.monotonic() < deadline, "the SCRAM credential did not show up"
                time.sleep(0.2)
        finally:
            admin.close()

    def env(self, **override) -> dict:
        """The environment a learner sets for this broker."""
        return {"KAFKA_BOOTSTRAP": self.bootstrap, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": USER,
                "KAFKA_SASL_PASSWORD": KAFKA_PASSWORD, "KAFKA_SSL_CAFILE": str(self.pki.ca),
                "KAFKA_SSL_CERTFILE": str(self.pki.client_cert), "KAFKA_SSL_KEYFILE": str(self.pki.client_key_pkcs8),
                **override}

    def log(self) -> str:
        try:
            return (self.broker.home / "logs" / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self.broker.stop(timeout=15)
