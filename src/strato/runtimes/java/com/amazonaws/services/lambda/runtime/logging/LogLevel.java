package com.amazonaws.services.lambda.runtime.logging;

/** Lambda's application log levels, least severe first; UNDEFINED is a message without one. */
public enum LogLevel {
    UNDEFINED, TRACE, DEBUG, INFO, WARN, ERROR, FATAL;

    /** The level named {@code name} (any case); IllegalArgumentException for another name. */
    public static LogLevel fromString(String name) {
        try {
            return LogLevel.valueOf(name.trim().toUpperCase());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid log level: '" + name
                + "' expected one of [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]");
        }
    }
}
