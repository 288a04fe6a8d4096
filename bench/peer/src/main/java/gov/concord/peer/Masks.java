package gov.concord.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.TextNode;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * What a consumer without an agreement sees of a conditional field, as contracts/masks.py computes it: the x-mask a
 * field declares (last characters, a keyed hash under the gateway's key, a birth year, a band). A value a mask
 * cannot generalise, and a keyed hash without a key, become "****".
 */
final class Masks {

    static final String WITHHELD = "****";
    private static final Pattern ID_NUMBER = Pattern.compile("^\\d{6}(\\d{4})(\\d{2})(\\d{2})\\d{3}[\\dXx]$");
    // Sorted keys, as json.dumps(sort_keys=True) writes the value a keyed hash is taken of.
    private static final ObjectMapper CANONICAL = new ObjectMapper()
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

    private final byte[] key;  // null: no key

    Masks(byte[] key) {
        this.key = key;
    }

    static Masks of(String hexKey) {
        return new Masks(hexKey == null || hexKey.isBlank() ? null : HexFormat.of().parseHex(hexKey.strip()));
    }

    JsonNode apply(JsonNode mask, JsonNode value) {
        return TextNode.valueOf(switch (mask.path("kind").asText()) {
            case "last-characters" -> lastCharacters(mask.path("keep").asInt(4), value);
            case "keyed-hash" -> keyedHash(value);
            case "birth-year" -> birthYear(value);
            case "band" -> band(mask, value);
            default -> WITHHELD;
        });
    }

    private static String lastCharacters(int keep, JsonNode value) {
        if (!value.isTextual()) {
            return WITHHELD;
        }
        String text = value.asText();
        int length = text.codePointCount(0, text.length());
        int shown = Math.min(keep, length / 2);
        return WITHHELD + (shown == 0 ? "" : text.substring(text.offsetByCodePoints(0, length - shown)));
    }

    private String keyedHash(JsonNode value) {
        if (key == null || key.length == 0) {
            return WITHHELD;
        }
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            byte[] canonical = CANONICAL.writeValueAsString(CANONICAL.treeToValue(value, Object.class))
                    .getBytes(StandardCharsets.UTF_8);
            return HexFormat.of().formatHex(mac.doFinal(canonical));
        } catch (GeneralSecurityException | com.fasterxml.jackson.core.JsonProcessingException e) {
            return WITHHELD;
        }
    }

    private static String birthYear(JsonNode value) {
        Matcher found = value.isTextual() ? ID_NUMBER.matcher(value.asText()) : null;
        if (found == null || !found.matches()) {
            return WITHHELD;
        }
        int year = Integer.parseInt(found.group(1));
        try {
            LocalDate.of(year, Integer.parseInt(found.group(2)), Integer.parseInt(found.group(3)));
        } catch (DateTimeException e) {
            return WITHHELD;
        }
        return String.format("%04d", year);
    }

    private static String band(JsonNode mask, JsonNode value) {
        if (!value.isNumber() || !Double.isFinite(value.asDouble())) {
            return WITHHELD;
        }
        double number = value.asDouble();
        JsonNode bounds = mask.path("bounds");
        String unit = mask.path("unit").asText("");
        if (number < bounds.get(0).asDouble()) {
            return "<" + number(bounds.get(0).asDouble()) + unit;
        }
        for (int i = 0; i + 1 < bounds.size(); i++) {
            if (number < bounds.get(i + 1).asDouble()) {
                return number(bounds.get(i).asDouble()) + "-" + number(bounds.get(i + 1).asDouble()) + unit;
            }
        }
        return "≥" + number(bounds.get(bounds.size() - 1).asDouble()) + unit;
    }

    private static String number(double bound) {
        return bound == Math.rint(bound) ? Long.toString((long) bound) : Double.toString(bound);
    }
}
