package com.amazonaws.services.lambda.runtime.logging;

/** The function's log format (AWS_LAMBDA_LOG_FORMAT). */
public enum LogFormat {
    JSON, TEXT;

    /** The format named {@code name} (any case); IllegalArgumentException for another name. */
    public static LogFormat fromString(String name) {
        try {
            return LogFormat.valueOf(name.trim().toUpperCase());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid log format: '" + name
                + "' expected one of [JSON, TEXT]");
        }
    }
}
