package gov.concord.peer;

import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;

/**
 * The CloudEvents envelope in Kafka's binary binding (ce_* headers), checked as contracts/envelope.py's
 * decode() does: limits, each attribute once, the required attributes by the exchange's rules, content type,
 * extension attributes, ce_dataschema naming a contract version of ce_type, the key being ce_subject.
 */
record Envelope(String id, String type, String subject, String contractId, int version, boolean traceparent) {

    static final String JSON = "application/json";
    static final String CONTENT_TYPE = "content-type";
    static final String TRACEPARENT = "traceparent";
    static final String DATASCHEMA_PREFIX = "urn:concord:contract:";
    static final List<String> REQUIRED = List.of("ce_id", "ce_source", "ce_type", "ce_subject", "ce_time",
            "ce_dataschema");
    static final Set<String> STANDARD = Set.of("ce_id", "ce_source", "ce_type", "ce_subject", "ce_time",
            "ce_dataschema", "ce_specversion", "ce_datacontenttype");
    static final int MAX_HEADERS = 64;
    static final int MAX_HEADER_BYTES = 16 * 1024;
    static final int MAX_EXTENSIONS = 16;
    static final Map<String, Pattern> RULES = Map.of(
            "ce_id", Pattern.compile("[\\x21-\\x7e]{1,256}"),
            "ce_source", Pattern.compile("[\\x21-\\x7e]{1,512}"),
            "ce_type", Pattern.compile("[a-z][a-z0-9]*\\.[a-z][a-z0-9-]{0,126}"),
            "ce_subject", Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}"),
            "ce_time", Pattern.compile("[0-9T:.+Zz-]{10,64}"),
            "ce_dataschema", Pattern.compile("[\\x21-\\x7e]{1,256}"));
    static final Pattern EXTENSION = Pattern.compile("ce_[a-z0-9]{1,20}");
    static final Pattern EXTENSION_VALUE = Pattern.compile("[\\x20-\\x7e]{0,256}");
    static final Pattern TRACE = Pattern.compile("00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");

    /** A record that is not a CloudEvent of the exchange. */
    static final class Malformed extends Exception {
        Malformed(String message) {
            super(message, null, false, false);
        }
    }

    static Envelope decode(Headers headers, byte[] key) throws Malformed {
        Header[] all = headers.toArray();
        if (all.length > MAX_HEADERS) {
            throw new Malformed(all.length + " headers: at most " + MAX_HEADERS);
        }
        int size = 0;
        Map<String, Integer> counts = new HashMap<>();
        Map<String, byte[]> map = new HashMap<>();
        for (Header h : all) {
            size += h.key().getBytes(StandardCharsets.UTF_8).length + (h.value() == null ? 0 : h.value().length);
            counts.merge(h.key(), 1, Integer::sum);
            map.put(h.key(), h.value());
        }
        if (size > MAX_HEADER_BYTES) {
            throw new Malformed(size + " bytes of headers: at most " + MAX_HEADER_BYTES);
        }
        Set<String> repeated = new TreeSet<>();
        counts.forEach((name, n) -> {
            if (n > 1 && (name.startsWith("ce_") || name.equals(CONTENT_TYPE) || name.equals(TRACEPARENT))) {
                repeated.add(name);
            }
        });
        if (!repeated.isEmpty()) {
            throw new Malformed("headers given more than once: " + String.join(", ", repeated));
        }
        if (!Arrays.equals(map.get("ce_specversion"), "1.0".getBytes(StandardCharsets.US_ASCII))) {
            throw new Malformed("not a CloudEvents 1.0 record in binary mode (ce_specversion must be 1.0)");
        }
        List<String> missing = REQUIRED.stream().filter(n -> map.get(n) == null || map.get(n).length == 0).toList();
        if (!missing.isEmpty()) {
            throw new Malformed("missing " + String.join(", ", missing));
        }
        byte[] contentType = map.get(CONTENT_TYPE);
        String mediaType = contentType == null ? "" : new String(contentType, StandardCharsets.UTF_8).split(";", -1)[0];
        if (!mediaType.strip().equals(JSON)) {
            throw new Malformed("content-type must be " + JSON);
        }
        Map<String, String> found = new HashMap<>();
        for (String name : REQUIRED) {
            String text = attribute(map.get(name), name);
            if (text == null) {
                throw new Malformed(name + " breaks the exchange's rules for it");
            }
            found.put(name, text);
        }
        try {
            OffsetDateTime.parse(found.get("ce_time"));
        } catch (DateTimeParseException notOffset) {
            try {
                LocalDateTime.parse(found.get("ce_time"));
                throw new Malformed("ce_time needs a time zone offset (RFC 3339)");
            } catch (DateTimeParseException e) {
                throw new Malformed("ce_time is not an RFC 3339 time");
            }
        }
        int extensions = 0;
        for (Map.Entry<String, byte[]> h : map.entrySet()) {
            if (!h.getKey().startsWith("ce_") || STANDARD.contains(h.getKey())) {
                continue;
            }
            extensions++;
            byte[] value = h.getValue() == null ? new byte[0] : h.getValue();
            if (!EXTENSION.matcher(h.getKey()).matches()
                    || !EXTENSION_VALUE.matcher(new String(value, StandardCharsets.ISO_8859_1)).matches()) {
                extensions = Integer.MAX_VALUE;
                break;
            }
        }
        if (extensions > MAX_EXTENSIONS) {
            throw new Malformed("extension attributes: names ce_ and 1 to 20 lower-case letters or digits, values of "
                    + "at most 256 printable characters, at most " + MAX_EXTENSIONS + " of them");
        }
        String dataschema = found.get("ce_dataschema");
        String named = dataschema.startsWith(DATASCHEMA_PREFIX) ? dataschema.substring(DATASCHEMA_PREFIX.length()) : "";
        int colon = named.lastIndexOf(':');
        String contractId = colon > 0 ? named.substring(0, colon) : "";
        String version = colon > 0 ? named.substring(colon + 1) : "";
        if (contractId.isEmpty() || !version.matches("[0-9]{1,9}")) {
            throw new Malformed("ce_dataschema names no contract version");
        }
        if (!contractId.equals(found.get("ce_type"))) {
            throw new Malformed("ce_type '" + found.get("ce_type") + "' differs from the contract of ce_dataschema");
        }
        if (key == null || !Arrays.equals(key, found.get("ce_subject").getBytes(StandardCharsets.US_ASCII))) {
            throw new Malformed("the record key must be the case id given in ce_subject (it keeps a case's events "
                    + "in order)");
        }
        byte[] trace = map.get(TRACEPARENT);
        boolean traced = trace != null && TRACE.matcher(new String(trace, StandardCharsets.ISO_8859_1)).matches();
        return new Envelope(found.get("ce_id"), found.get("ce_type"), found.get("ce_subject"), contractId,
                Integer.parseInt(version), traced);
    }

    /**
     * One attribute as text if the record carries it once and it follows the exchange's rules for it, else null
     * (contracts/envelope.py's attribute(): for describing records that are not valid envelopes).
     */
    static String attribute(Headers headers, String name) {
        byte[] value = null;
        int n = 0;
        for (Header h : headers.headers(name)) {
            value = h.value();
            n++;
        }
        return n == 1 ? attribute(value, name) : null;
    }

    private static String attribute(byte[] value, String name) {
        if (value == null) {
            return null;
        }
        for (byte b : value) {
            if (b < 0) {
                return null;  // not ASCII
            }
        }
        String text = new String(value, StandardCharsets.US_ASCII);
        Pattern rule = RULES.get(name);
        return rule == null || rule.matcher(text).matches() ? text : null;
    }
}
