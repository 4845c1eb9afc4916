package strato.runtime;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A throwable as Lambda's Java runtime reports it: {@code errorMessage} (its message, or its
 * class name when it has none), {@code errorType} (its class name) and {@code stackTrace} (each
 * frame's {@code StackTraceElement.toString()}).
 */
final class ErrorDocument {
    private ErrorDocument() {
    }

    static Map<String, Object> of(Throwable error) {
        Map<String, Object> document = new LinkedHashMap<>();
        String message = error.getMessage();
        document.put("errorMessage", message != null ? message : error.getClass().getName());
        document.put("errorType", error.getClass().getName());
        document.put("stackTrace", frames(error));
        return document;
    }

    static List<Object> frames(Throwable error) {
        List<Object> frames = new ArrayList<>();
        for (StackTraceElement frame : error.getStackTrace()) {
            frames.add(frame.toString());
        }
        return frames;
    }
}
