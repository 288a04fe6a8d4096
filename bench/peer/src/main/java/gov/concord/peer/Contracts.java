package gov.concord.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SchemaRegistryConfig;
import com.networknt.schema.dialect.Dialect;
import com.networknt.schema.dialect.Dialects;
import com.networknt.schema.keyword.NonValidationKeyword;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The contract versions the peer enforces, from the JSON Schema files `concord contracts docs OUT` writes
 * (OUT/schemas/&lt;id&gt;/v&lt;version&gt;.json): each schema with its x-contract (owner, publishers, consumers,
 * subject, recipient), an x-sharing class on every field, and an x-mask on some conditional ones (top-level fields
 * only: the peer does not follow nested classes).
 */
final class Contracts {

    /** One contract version: who may publish it, who consumes it, which fields travel, and its compiled schema. */
    record Contract(String id, int version, Set<String> publishers, Set<String> consumers, String subjectField,
                    String recipientField, Set<String> unconditional, Set<String> shareable,
                    Map<String, JsonNode> masks, Schema schema) {}

    private final Map<String, Contract> byKey;

    private Contracts(Map<String, Contract> byKey) {
        this.byKey = byKey;
    }

    Contract get(String id, int version) {
        return byKey.get(id + ":" + version);
    }

    int size() {
        return byKey.size();
    }

    static Contracts load(Path folder, ObjectMapper mapper) throws IOException {
        // Format assertions on: the Python registry checks date-time (and date, email) too.
        SchemaRegistryConfig config = SchemaRegistryConfig.builder().formatAssertionsEnabled(true).build();
        Dialect dialect = Dialect.builder(Dialects.getDraft202012())  // 2020-12, knowing the exchange's keywords
                .keyword(new NonValidationKeyword("x-sharing")).keyword(new NonValidationKeyword("x-legal-basis"))
                .keyword(new NonValidationKeyword("x-contract")).keyword(new NonValidationKeyword("x-mask")).build();
        SchemaRegistry registry = SchemaRegistry.withDefaultDialect(dialect,
                builder -> builder.schemaRegistryConfig(config));
        Map<String, Contract> byKey = new HashMap<>();
        List<Path> files;
        try (Stream<Path> walk = Files.walk(folder)) {
            files = walk.filter(p -> p.getFileName().toString().matches("v[0-9]+\\.json")).sorted().toList();
        }
        for (Path file : files) {
            JsonNode schema = mapper.readTree(file.toFile());
            JsonNode meta = schema.path("x-contract");
            if (!meta.isObject()) {
                continue;
            }
            Set<String> publishers = strings(meta.path("publishers"));
            publishers.add(meta.path("owner").asText());  // the owner always may
            Set<String> unconditional = new LinkedHashSet<>();
            Set<String> shareable = new LinkedHashSet<>();
            Map<String, JsonNode> masks = new HashMap<>();  // what a consumer without an agreement sees instead
            schema.path("properties").properties().forEach(field -> {
                String sharing = field.getValue().path("x-sharing").asText("not_shared");
                if (sharing.equals("conditional") && field.getValue().path("x-mask").isObject()) {
                    masks.put(field.getKey(), field.getValue().path("x-mask"));
                }
                if (sharing.equals("unconditional")) {
                    unconditional.add(field.getKey());
                }
                if (sharing.equals("unconditional") || sharing.equals("conditional")) {
                    shareable.add(field.getKey());
                }
            });
            JsonNode recipient = meta.path("recipient");
            Contract contract = new Contract(meta.path("id").asText(), meta.path("version").asInt(),
                    Set.copyOf(publishers), Set.copyOf(strings(meta.path("consumers"))),
                    meta.path("subject").asText(), recipient.isTextual() ? recipient.asText() : null,
                    Set.copyOf(unconditional), Set.copyOf(shareable), Map.copyOf(masks), registry.getSchema(schema));
            byKey.put(contract.id() + ":" + contract.version(), contract);
        }
        if (byKey.isEmpty()) {
            throw new IOException("no contract schemas under " + folder + " (write them with `concord contracts docs`)");
        }
        return new Contracts(byKey);
    }

    private static Set<String> strings(JsonNode array) {
        Set<String> out = new LinkedHashSet<>();
        array.forEach(node -> out.add(node.asText()));
        return out;
    }
}
