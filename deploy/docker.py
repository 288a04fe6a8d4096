"""The secrets of the Docker Compose deployment (``docker-compose.yml``), made by its ``secrets`` job into a
shared volume: the same model as the local stack (SCRAM over TLS, ACLs, a role per component), with the broker's
files readable by the Kafka image's user and the superuser's password by the PostgreSQL image's."""

from __future__ import annotations

import os
from pathlib import Path

from base.credentials import write_secret
from base.settings import ADMIN, Settings
from deploy.pki import KEYSTORE
from deploy.stack import KAFKA_DIR, ensure_secrets, new_cluster_id

KAFKA_UID = 1000  # appuser in the apache/kafka image
POSTGRES_UID = 999  # postgres in the postgres image
KAFKA_PORT = 9092
CONTROLLER_PORT = 9093
KAFKA_DATA = "/var/lib/kafka/data"


def _own(path: Path, uid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, uid)


def prepare(settings: Settings, advertised: str) -> Path:
    """Every secret of the deployment (kept across runs), and the broker's configuration and start script."""
    store = settings.secrets
    ensure_secrets(settings, hosts=[advertised, "localhost", "127.0.0.1"])
    os.chmod(store.root, 0o711)  # each image reads only its own folder below
    kafka = store.root / "kafka"
    cluster_file = kafka / "cluster-id"
    cluster_id = cluster_file.read_text().strip() if cluster_file.exists() else new_cluster_id()
    password = store.kafka_admin_password()
    write_secret(cluster_file, cluster_id)
    write_secret(kafka / "ca.pem", store.ca_file.read_text())
    write_secret(kafka / KEYSTORE, (store.root / KEYSTORE).read_text())
    properties = (KAFKA_DIR / "server.properties").read_text().format(
        node_id=1, voters=f"1@127.0.0.1:{CONTROLLER_PORT}", replicas=1, min_isr=1,
        bind="0.0.0.0", advertised=advertised, port=KAFKA_PORT, controller_port=CONTROLLER_PORT, data=KAFKA_DATA,
        keystore=f"/secrets/kafka/{KEYSTORE}", truststore="/secrets/kafka/ca.pem", admin_password=password)
    write_secret(kafka / "server.properties", properties)
    write_secret(kafka / "admin.properties", "\n".join([
        "security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
        f'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
        f'password="{password}";',
        "ssl.truststore.type=PEM", "ssl.truststore.location=/secrets/kafka/ca.pem", ""]))
    write_secret(kafka / "start.sh", "\n".join([
        "#!/bin/sh", "set -e",
        f"/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t {cluster_id} "
        f"-c /secrets/kafka/server.properties --add-scram 'SCRAM-SHA-512=[name={ADMIN},password={password}]'",
        "exec /opt/kafka/bin/kafka-server-start.sh /secrets/kafka/server.properties", ""]))
    _own(kafka, KAFKA_UID)
    postgres = store.root / "postgres"
    write_secret(postgres / "superuser", store.postgres_passwords()[settings.postgres_user])
    _own(postgres, POSTGRES_UID)
    return store.root

