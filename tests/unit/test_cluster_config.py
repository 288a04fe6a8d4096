"""The local stack's Kafka, one node or a cluster, as configured (files in a temporary folder, nothing started):
ports, quorum, replication, the size the stack keeps, and the addresses clients are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.kafka import Replication
from base.settings import Settings
from deploy.stack import KafkaNode, StackError, ensure_secrets, kafka_nodes, settled_size


def stack(tmp_path: Path, **given: object) -> Settings:
    defaults: dict[str, object] = {"kafka_port": 29092, "kafka_controller_port": 29093, "kafka_brokers": None}
    return Settings(stack_dir=tmp_path, kafka_bootstrap="", secrets_dir=None, **(defaults | given))  # type: ignore[arg-type]


def configured(node: KafkaNode) -> dict[str, str]:
    node.write_config()
    lines = [line for line in node.config.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_by_default_the_stack_runs_one_node_as_it_always_did(tmp_path: Path) -> None:
    settings = stack(tmp_path)
    ensure_secrets(settings)
    [node] = kafka_nodes(settings)
    assert settled_size(settings) == settings.brokers == 1
    assert settings.bootstrap == "127.0.0.1:29092" and node.home == tmp_path / "kafka"
    config = configured(node)
    assert config["node.id"] == "1" and config["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert config["listeners"] == "CLIENT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert {config[k] for k in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                                "default.replication.factor", "transaction.state.log.min.isr",
                                "min.insync.replicas")} == {"1"}
    assert settings.replication == Replication(1, 1)


def test_three_brokers_are_three_controllers_of_one_quorum_with_ports_folders_and_replicas_of_their_own(
        tmp_path: Path) -> None:
    settings = stack(tmp_path, kafka_brokers=3)
    ensure_secrets(settings)
    nodes = kafka_nodes(settings)
    configs = [configured(node) for node in nodes]
    assert settled_size(settings) == 3
    assert settings.bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"  # every broker
    voters = "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"
    for i, (node, config) in enumerate(zip(nodes, configs, strict=True), 1):
        assert config["node.id"] == str(i) and config["controller.quorum.voters"] == voters
        assert config["listeners"] == f"CLIENT://127.0.0.1:{29090 + 2 * i},CONTROLLER://127.0.0.1:{29091 + 2 * i}"
        assert config["log.dirs"] == str(tmp_path / "kafka" / f"node-{i}" / "data")
        assert config["inter.broker.listener.name"] == "CLIENT"  # brokers replicate over SASL_SSL, as the admin
        assert config["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SASL_SSL"
        assert config["ssl.keystore.location"] == configs[0]["ssl.keystore.location"]  # one CA, one certificate
        assert config["offsets.topic.replication.factor"] == config["transaction.state.log.replication.factor"] \
            == config["default.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == config["min.insync.replicas"] == "2"
        assert node.quorum.cluster_id() == nodes[0].quorum.cluster_id()  # one cluster
    assert settings.replication == Replication(3, 2)


def test_the_stack_keeps_the_size_it_was_first_brought_up_with(tmp_path: Path) -> None:
    settings = stack(tmp_path, kafka_brokers=3)
    settings.brokers_file.parent.mkdir(parents=True)
    settings.brokers_file.write_text(f"{settled_size(settings)}\n")  # as `concord stack up --brokers 3` does
    later = stack(tmp_path)  # `concord stack down`, `status`, a client: no size given
    assert later.brokers == 3 and len(kafka_nodes(later)) == 3 and later.bootstrap.count(",") == 2
    with pytest.raises(StackError, match="concord stack reset"):
        settled_size(stack(tmp_path, kafka_brokers=1))


def test_a_single_node_from_before_the_record_is_one_node(tmp_path: Path) -> None:
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    assert settled_size(stack(tmp_path)) == 1
    with pytest.raises(StackError, match="1 Kafka node"):
        settled_size(stack(tmp_path, kafka_brokers=3))


def test_ports_that_would_collide_are_refused_with_the_rule(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="odd number"):
        settled_size(stack(tmp_path, kafka_brokers=3, kafka_controller_port=29094))


@pytest.mark.parametrize(("brokers", "factor", "min_insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_replication_keeps_acknowledged_writes_through_the_loss_of_one_node(
        brokers: int, factor: int, min_insync: int) -> None:
    assert Replication.on(brokers) == Replication(factor, min_insync)


def test_the_brokers_jvm_takes_the_options_given_before_its_main_class(tmp_path: Path) -> None:
    settings = stack(tmp_path, kafka_jvm_options="-XX:TieredStopAtLevel=1  -Dconcord.note='two words'")
    [node] = kafka_nodes(settings)
    command = node._java("kafka.Kafka", "server.properties")
    assert command[0] == "java" and command[-2:] == ["kafka.Kafka", "server.properties"]
    assert command.index("-XX:TieredStopAtLevel=1") < command.index("-cp")
    assert "-Dconcord.note=two words" in command
    assert "-XX:TieredStopAtLevel=1" not in kafka_nodes(stack(tmp_path, kafka_jvm_options=""))[0]._java("kafka.Kafka")
