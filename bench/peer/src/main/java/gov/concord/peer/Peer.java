package gov.concord.peer;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.function.Predicate;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.processor.TopicNameExtractor;
import org.apache.kafka.streams.processor.api.ProcessorSupplier;

/**
 * The benchmark's JVM peer of the gateway router: the same route as a Kafka Streams application, exactly once
 * (exactly_once_v2: the outputs and the input offsets of a task commit in one transaction every
 * commit.interval.ms). No state stores and no repartitioning, so no internal topics.
 *
 * <p>Usage: {@code java -jar concord-peer.jar peer.properties}. The file holds the peer's own settings,
 * {@code peer.namespace} (the topic namespace, may be empty), {@code peer.ingress} (the departments whose ingress
 * topics it reads, comma-separated), {@code peer.contracts} (the folder {@code concord contracts docs} wrote) and
 * {@code peer.max.payload.bytes}; every other key is a Kafka Streams setting: application.id (also the consumer
 * group and the transactional id prefix), bootstrap.servers, security (security.protocol, sasl.mechanism,
 * sasl.jaas.config, ssl.truststore.type=PEM, ssl.truststore.location), commit.interval.ms (100 unless given).
 * It prints its state changes ("concord-peer: RUNNING") on stdout; SIGTERM closes it, leaving the group.
 */
public final class Peer {

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: concord-peer PEER.properties");
            System.exit(2);
        }
        Properties file = new Properties();
        try (Reader reader = Files.newBufferedReader(Path.of(args[0]))) {
            file.load(reader);
        }
        Properties config = streamsConfig(file);
        Topics topics = new Topics(file.getProperty("peer.namespace", ""));
        ObjectMapper mapper = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        Contracts contracts = Contracts.load(Path.of(required(file, "peer.contracts")), mapper);
        Map<String, String> senders = new HashMap<>();
        for (String department : required(file, "peer.ingress").split(",")) {
            senders.put(topics.ingress(department.strip()), department.strip());
        }
        int maxPayload = Integer.parseInt(file.getProperty("peer.max.payload.bytes", "1048576"));

        try (Admin admin = Admin.create(new StreamsConfig(config).getAdminConfigs("concord-peer-topics"))) {
            Provisioned provisioned = new Provisioned(admin);
            Masks masks = Masks.of(file.getProperty("peer.mask.key"));  // hex; none: keyed hashes are withheld
            Topology topology = topology(senders, () -> new Route(contracts, topics, senders, provisioned, maxPayload,
                    mapper, masks));
            System.out.println(contracts.size() + " contract versions; " + topology.describe());
            run(new KafkaStreams(topology, config));
        }
    }

    /** Ingress topics -> the route -> four sinks; each sink takes its topic from the record it is given. */
    static Topology topology(Map<String, String> senders, ProcessorSupplier<byte[], byte[], byte[], Route.Out> route) {
        ByteArrayDeserializer bytes = new ByteArrayDeserializer();
        Serializer<Route.Out> value = (topic, out) -> out.value();
        TopicNameExtractor<byte[], Route.Out> destination = (key, out, context) -> out.topic();
        Topology topology = new Topology();
        topology.addSource("ingress", bytes, bytes, senders.keySet().stream().sorted().toArray(String[]::new));
        topology.addProcessor("route", route, "ingress");
        for (String sink : List.of(Route.SHARED, Route.DELIVER, Route.AUDIT, Route.DEADLETTER)) {
            topology.addSink(sink, destination, new ByteArraySerializer(), value, "route");
        }
        return topology;
    }

    static Properties streamsConfig(Properties file) {
        Serde<byte[]> bytes = Serdes.ByteArray();
        Properties config = new Properties();
        config.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        config.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
        config.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        config.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, "-1");  // no waiting to order records across topics
        config.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, bytes.getClass().getName());
        config.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, bytes.getClass().getName());
        config.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        for (String name : file.stringPropertyNames()) {
            if (!name.startsWith("peer.")) {
                config.put(name, file.getProperty(name));
            }
        }
        return config;
    }

    static void run(KafkaStreams streams) throws InterruptedException {
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("concord-peer: " + now);
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(error -> {
            error.printStackTrace();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(new KafkaStreams.CloseOptions().leaveGroup(true).timeout(Duration.ofSeconds(20)));
            stopped.countDown();
        }));
        streams.start();
        stopped.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            System.exit(1);
        }
    }

    private static String required(Properties file, String name) {
        String value = file.getProperty(name);
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException("missing setting " + name);
        }
        return value;
    }

    /**
     * Whether a topic exists, as the router asks before writing (a new contract's shared topic may not be made
     * yet): the topics the principal can see, listed again when one is missing, at most every 30 seconds.
     */
    static final class Provisioned implements Predicate<String> {
        private final Admin admin;
        private Set<String> known = Set.of();
        private long listedAt;

        Provisioned(Admin admin) {
            this.admin = admin;
            list();
        }

        @Override
        public synchronized boolean test(String topic) {
            if (!known.contains(topic) && System.nanoTime() - listedAt > Duration.ofSeconds(30).toNanos()) {
                list();
            }
            return known.contains(topic);
        }

        private void list() {
            try {
                known = admin.listTopics().names().get();
                listedAt = System.nanoTime();
            } catch (ExecutionException e) {
                throw new IllegalStateException("cannot list topics: " + e.getCause(), e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }

    private Peer() {}
}
