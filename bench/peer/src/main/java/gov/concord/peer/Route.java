package gov.concord.peer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.Error;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;

/**
 * The gateway's route (gateway/routing.py) as a Kafka Streams processor: per ingress record, the checks in order
 * (size, envelope, contract version, sender may publish it, payload JSON, schema, subject, recipient), then the
 * shared record (not-shared fields removed), one delivery per consumer cut to its unconditional fields (there
 * are no agreements here, so no conditional field is delivered in clear: masked where its contract says how) and
 * the audit entry; or, refused, the dead
 * letter, the sender's exchange.event-rejected notice and the audit entry. Each output goes to its sink by name;
 * Streams writes them in the task's transaction with the input offsets (exactly_once_v2).
 *
 * <p>Not done here, unlike the router: the duplicate-id check (PostgreSQL) and sharing agreements.
 */
final class Route implements Processor<byte[], byte[], byte[], Route.Out> {

    /** An output record's destination topic and bytes; the sinks take the topic from it. */
    record Out(String topic, byte[] value) {}

    static final String SHARED = "shared";
    static final String DELIVER = "deliver";
    static final String AUDIT = "audit";
    static final String DEADLETTER = "deadletter";
    static final String EXCHANGE = "exchange";
    static final String SENDER_HEADER = "concord_sender";
    static final String EXCHANGE_PREFIX = "concord_";
    static final String REJECTED_CONTRACT = "exchange.event-rejected";
    static final DateTimeFormatter ISO = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSSxxx");
    static final SecureRandom RANDOM = new SecureRandom();

    private record Output(String sink, String topic, byte[] key, byte[] value, Headers headers) {}

    private static final class Rejection extends Exception {
        final String reason;

        Rejection(String reason, String detail) {
            super(detail, null, false, false);
            this.reason = reason;
        }
    }

    private final Contracts contracts;
    private final Topics topics;
    private final Map<String, String> senders;  // ingress topic -> department: never from the record
    private final Predicate<String> provisioned;
    private final int maxPayloadBytes;
    private final ObjectMapper mapper;
    private final Masks masks;
    private ProcessorContext<byte[], Out> context;

    Route(Contracts contracts, Topics topics, Map<String, String> senders, Predicate<String> provisioned,
          int maxPayloadBytes, ObjectMapper mapper, Masks masks) {
        this.contracts = contracts;
        this.masks = masks;
        this.topics = topics;
        this.senders = senders;
        this.provisioned = provisioned;
        this.maxPayloadBytes = maxPayloadBytes;
        this.mapper = mapper;
    }

    @Override
    public void init(ProcessorContext<byte[], Out> context) {
        this.context = context;
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        RecordMetadata at = context.recordMetadata().orElseThrow();
        String sender = senders.get(at.topic());
        String now = OffsetDateTime.now(ZoneOffset.UTC).format(ISO);
        List<Output> outputs;
        try {
            outputs = route(record, at, sender, now);
            List<String> missing = outputs.stream().map(Output::topic).filter(provisioned.negate()).distinct().sorted()
                    .toList();
            if (!missing.isEmpty()) {
                throw new Rejection("not_provisioned", "no topic " + String.join(", ", missing) + " yet");
            }
        } catch (Rejection rejection) {
            outputs = reject(record, at, sender, now, rejection);
            outputs.removeIf(out -> !provisioned.test(out.topic()) && !out.topic().equals(topics.audit()));
        }
        for (Output out : outputs) {
            context.forward(new Record<>(out.key(), new Out(out.topic(), out.value()), record.timestamp(),
                    out.headers()), out.sink());
        }
    }

    private List<Output> route(Record<byte[], byte[]> record, RecordMetadata at, String sender, String now)
            throws Rejection {
        byte[] value = record.value() == null ? new byte[0] : record.value();
        if (value.length > maxPayloadBytes) {
            throw new Rejection("payload_too_large", value.length + " bytes > limit " + maxPayloadBytes);
        }
        Envelope envelope;
        try {
            envelope = Envelope.decode(record.headers(), record.key());
        } catch (Envelope.Malformed e) {
            throw new Rejection("malformed_envelope", e.getMessage());
        }
        Contracts.Contract contract = contracts.get(envelope.contractId(), envelope.version());
        if (contract == null) {
            throw new Rejection("unknown_contract", "no contract " + envelope.contractId() + " version "
                    + envelope.version());
        }
        if (!contract.publishers().contains(sender)) {
            throw new Rejection("producer_not_authorised", sender + " may not publish " + contract.id()
                    + "; publishers: [" + String.join(", ", contract.publishers().stream().sorted()
                    .map(p -> "'" + p + "'").toList()) + "]");
        }
        JsonNode payload;
        try {
            payload = mapper.readTree(value);
        } catch (IOException e) {
            throw new Rejection("malformed_payload", "body is not UTF-8 JSON");
        }
        if (payload == null || payload.isMissingNode()) {
            throw new Rejection("malformed_payload", "body is not UTF-8 JSON: empty");
        }
        if (!payload.isObject()) {
            throw new Rejection("schema_violation", "(root): must be a JSON object");
        }
        List<Error> errors = contract.schema().validate(payload);
        if (!errors.isEmpty()) {
            throw new Rejection("schema_violation", String.join("; ", errors.stream().limit(10)
                    .map(e -> e.getInstanceLocation() + ": " + e.getMessage()).toList()));
        }
        JsonNode subject = payload.get(contract.subjectField());
        if (subject == null || !(subject.isTextual() ? subject.asText() : subject.toString()).equals(envelope.subject())) {
            throw new Rejection("schema_violation", "ce_subject differs from " + contract.subjectField());
        }
        List<String> named = addressees(contract, payload);
        if (contract.recipientField() != null && (named.isEmpty() || !contract.consumers().containsAll(named))) {
            throw new Rejection("schema_violation", contract.recipientField() + " must name consumers of "
                    + contract.id());
        }

        RecordHeaders headers = new RecordHeaders();
        for (Header h : record.headers()) {  // the envelope travels on; nothing else the sender wrote
            boolean trace = h.key().equals(Envelope.TRACEPARENT) && envelope.traceparent();
            if (h.value() != null && (h.key().startsWith("ce_") || h.key().equals(Envelope.CONTENT_TYPE) || trace)) {
                headers.add(h.key(), h.value());
            }
        }
        headers.add(SENDER_HEADER, bytes(sender));
        headers.setReadOnly();

        Set<String> present = new LinkedHashSet<>();
        payload.fieldNames().forEachRemaining(present::add);
        Map<Set<String>, byte[]> views = new HashMap<>();  // consumers who see the same fields get the same bytes
        List<Output> outputs = new ArrayList<>();
        outputs.add(new Output(SHARED, topics.shared(contract.id()), record.key(),
                view(contract, payload, present, contract.shareable(), value, views), headers));
        List<String> recipients = contract.recipientField() != null ? named
                : contract.consumers().stream().filter(c -> !c.equals(sender)).sorted().toList();
        ObjectNode delivered = mapper.createObjectNode();
        ObjectNode masked = mapper.createObjectNode();  // the fields each consumer was given masked
        ObjectNode digests = mapper.createObjectNode();  // the SHA-256 of the bytes each consumer was given
        for (String consumer : recipients) {
            Set<String> visible = contract.unconditional();  // no agreements: no conditional field
            byte[] delivery = view(contract, payload, present, visible, value, views);
            outputs.add(new Output(DELIVER, topics.deliver(consumer), record.key(), delivery, headers));
            ArrayNode fields = delivered.putArray(consumer);
            present.stream().filter(visible::contains).sorted().forEach(fields::add);
            List<String> hidden = present.stream()
                    .filter(f -> !visible.contains(f) && contract.masks().containsKey(f)).sorted().toList();
            if (!hidden.isEmpty()) {
                hidden.forEach(masked.putArray(consumer)::add);
            }
            digests.put(consumer, sha256(delivery));
        }
        ObjectNode entry = audit("routed", now, envelope.id(), envelope.subject(), sender, contract.id(), at);
        entry.put("version", contract.version());
        entry.set("ingress", entry.remove("ingress"));  // AuditEntry's order: version, ingress, delivered, masked
        entry.set("delivered", delivered);
        if (!masked.isEmpty()) {
            entry.set("masked", masked);
        }
        entry.set("delivered_sha256", digests);
        outputs.add(new Output(AUDIT, topics.audit(), bytes(envelope.subject()), json(entry), new RecordHeaders()));
        return outputs;
    }

    private List<Output> reject(Record<byte[], byte[]> record, RecordMetadata at, String sender, String now,
                                Rejection rejection) {
        String position = at.topic() + "/" + at.partition() + "/" + at.offset();
        String eventId = orElse(Envelope.attribute(record.headers(), "ce_id"), "");
        String subject = orElse(Envelope.attribute(record.headers(), "ce_subject"), position);
        String contract = orElse(Envelope.attribute(record.headers(), "ce_type"), "");
        String deadletter = topics.deadletter(sender);

        RecordHeaders kept = new RecordHeaders();
        for (Header h : record.headers()) {
            if (!h.key().startsWith(EXCHANGE_PREFIX)) {
                kept.add(h.key(), h.value());
            }
        }
        kept.add("concord_reason", bytes(rejection.reason));
        kept.add("concord_detail", bytes(rejection.getMessage()));
        kept.add(SENDER_HEADER, bytes(sender));
        kept.add("concord_ingress", bytes(position));

        ObjectNode notice = mapper.createObjectNode();  // contracts/exchange.py's EventRejected, in its order
        notice.put("event_id", eventId).put("subject", subject).put("sender", sender).put("rejected_type", contract)
                .put("reason", rejection.reason).put("detail", rejection.getMessage())
                .put("ingress_topic", at.topic()).put("ingress_partition", at.partition())
                .put("ingress_offset", at.offset()).put("deadletter_topic", deadletter);
        RecordHeaders envelope = new RecordHeaders();
        envelope.add("ce_id", bytes("rejected:" + position));
        envelope.add("ce_source", bytes(EXCHANGE));
        envelope.add("ce_type", bytes(REJECTED_CONTRACT));
        envelope.add("ce_subject", bytes(subject));
        envelope.add("ce_time", bytes(now));
        envelope.add("ce_dataschema", bytes(Envelope.DATASCHEMA_PREFIX + REJECTED_CONTRACT + ":1"));
        envelope.add(Envelope.CONTENT_TYPE, bytes(Envelope.JSON));
        envelope.add("ce_specversion", bytes("1.0"));
        envelope.add(Envelope.TRACEPARENT, bytes(traceparent()));
        envelope.add(SENDER_HEADER, bytes(EXCHANGE));

        ObjectNode entry = audit("rejected", now, eventId, subject, sender, contract, at);
        entry.put("reason", rejection.reason).put("detail", rejection.getMessage());
        List<Output> outputs = new ArrayList<>();
        outputs.add(new Output(DEADLETTER, deadletter, record.key(), record.value(), kept));
        outputs.add(new Output(DELIVER, topics.deliver(sender), bytes(subject), json(notice), envelope));
        outputs.add(new Output(AUDIT, topics.audit(), bytes(subject), json(entry), new RecordHeaders()));
        return outputs;
    }

    /** The payload cut to the visible fields (the original bytes when nothing is cut). */
    /** The payload cut to the visible fields, a field the consumer may not see masked where the contract says how
     * (in its place), removed otherwise. */
    private byte[] view(Contracts.Contract contract, JsonNode payload, Set<String> present, Set<String> visible,
                        byte[] original, Map<Set<String>, byte[]> views) {
        if (visible.containsAll(present)) {
            return original;
        }
        Set<String> kept = new LinkedHashSet<>(present);
        kept.retainAll(visible);  // what is masked follows from what is kept: the cache key
        return views.computeIfAbsent(kept, fields -> {
            ObjectNode cut = mapper.createObjectNode();
            for (String name : present) {
                JsonNode mask = contract.masks().get(name);
                if (fields.contains(name)) {
                    cut.set(name, payload.get(name));
                } else if (mask != null) {
                    cut.set(name, masks.apply(mask, payload.get(name)));
                }
            }
            return json(cut);
        });
    }

    /** Whom an addressed event names: one department, or a list of them (only text counts as a name). */
    private static List<String> addressees(Contracts.Contract contract, JsonNode payload) {
        if (contract.recipientField() == null) {
            return List.of();
        }
        JsonNode named = payload.path(contract.recipientField());
        Set<String> out = new TreeSet<>();
        for (JsonNode n : named.isArray() ? named : List.of(named)) {
            if (n.isTextual()) {
                out.add(n.asText());
            }
        }
        return List.copyOf(out);
    }

    private ObjectNode audit(String action, String now, String eventId, String caseId, String sender,
                             String contract, RecordMetadata at) {
        ObjectNode entry = mapper.createObjectNode();
        entry.put("action", action).put("at", now).put("event_id", eventId).put("case_id", caseId)
                .put("sender", sender).put("contract", contract);
        entry.putObject("ingress").put("topic", at.topic()).put("partition", at.partition())
                .put("offset", at.offset());
        return entry;
    }

    private byte[] json(JsonNode node) {
        try {
            return mapper.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String traceparent() {
        byte[] trace = new byte[16];
        byte[] span = new byte[8];
        RANDOM.nextBytes(trace);
        RANDOM.nextBytes(span);
        return "00-" + HexFormat.of().formatHex(trace) + "-" + HexFormat.of().formatHex(span) + "-01";
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String orElse(String value, String otherwise) {
        return value != null ? value : otherwise;
    }

    private static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }
}
