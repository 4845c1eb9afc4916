package strato.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogFormat;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The {@link LambdaLogger} of the execution environment, as Lambda's Java runtime formats it.
 *
 * <p>TEXT (the default): a message as it is, prefixed with {@code [LEVEL] } when logged with a
 * level. JSON ({@code AWS_LAMBDA_LOG_FORMAT=JSON}): one object per message with
 * {@code timestamp} (UTC, milliseconds), {@code level} (INFO for a message without one),
 * {@code message} and {@code AWSRequestId} (absent during INIT). A message whose level is below
 * {@code AWS_LAMBDA_LOG_LEVEL} is dropped (in TEXT, one without a level never is). Each message
 * ends one line (a newline is added when missing), which the platform reads as a log event.
 * Thread-safe: the request id is volatile and each message is written in one call.
 */
final class RuntimeLogger implements LambdaLogger {
    private static final DateTimeFormatter TIMESTAMP =
        DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private final PrintStream out;
    private final LogFormat format;
    private final LogLevel minimum;
    private volatile String requestId;

    RuntimeLogger(PrintStream out, LogFormat format, LogLevel minimum) {
        this.out = out;
        this.format = format;
        this.minimum = minimum;
    }

    /** The logger the variables {@code AWS_LAMBDA_LOG_FORMAT} and {@code AWS_LAMBDA_LOG_LEVEL}
     * describe (TEXT and no filtering when unset or unknown). */
    static RuntimeLogger fromEnvironment(PrintStream out) {
        LogFormat format = LogFormat.TEXT;
        LogLevel minimum = LogLevel.UNDEFINED;
        try {
            String name = System.getenv("AWS_LAMBDA_LOG_FORMAT");
            if (name != null && !name.isEmpty()) {
                format = LogFormat.fromString(name);
            }
        } catch (IllegalArgumentException e) {
            format = LogFormat.TEXT;
        }
        try {
            String name = System.getenv("AWS_LAMBDA_LOG_LEVEL");
            if (name != null && !name.isEmpty()) {
                minimum = LogLevel.fromString(name);
            }
        } catch (IllegalArgumentException e) {
            minimum = LogLevel.UNDEFINED;
        }
        return new RuntimeLogger(out, format, minimum);
    }

    void setRequestId(String id) {
        requestId = id;
    }

    boolean isJson() {
        return format == LogFormat.JSON;
    }

    public void log(String message) {
        log(message, LogLevel.UNDEFINED);
    }

    public void log(byte[] message) {
        log(new String(message, StandardCharsets.UTF_8), LogLevel.UNDEFINED);
    }

    public void log(byte[] message, LogLevel level) {
        log(new String(message, StandardCharsets.UTF_8), level);
    }

    public void log(String message, LogLevel level) {
        if (format == LogFormat.JSON && level == LogLevel.UNDEFINED) {
            level = LogLevel.INFO;
        }
        if (level != LogLevel.UNDEFINED && level.ordinal() < minimum.ordinal()) {
            return;
        }
        String text = String.valueOf(message);
        if (format == LogFormat.JSON) {
            emit(Json.write(record(level, text)));
        } else {
            emit(level == LogLevel.UNDEFINED ? text : "[" + level + "] " + text);
        }
    }

    /** An uncaught error ({@code document} from {@link ErrorDocument}): in JSON, an ERROR record
     * with the document's members; in TEXT, its message and type, then the stack trace. */
    void uncaught(Map<String, Object> document, Throwable error) {
        if (format == LogFormat.JSON) {
            Map<String, Object> record = record(LogLevel.ERROR, (String) document.get("errorMessage"));
            record.putAll(document);
            emit(Json.write(record));
            return;
        }
        StringBuilder text = new StringBuilder();
        text.append(document.get("errorMessage")).append(": ").append(document.get("errorType"));
        text.append('\n').append(error);
        for (StackTraceElement frame : error.getStackTrace()) {
            text.append("\n\tat ").append(frame);
        }
        emit(text.toString());
    }

    private Map<String, Object> record(LogLevel level, String message) {
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("timestamp", TIMESTAMP.format(java.time.Instant.now()));
        record.put("level", level.toString());
        record.put("message", message);
        String id = requestId;
        if (id != null) {
            record.put("AWSRequestId", id);
        }
        return record;
    }

    private void emit(String line) {
        String text = line.endsWith("\n") ? line : line + "\n";
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        synchronized (out) {
            out.write(bytes, 0, bytes.length);
            out.flush();
        }
    }
}
