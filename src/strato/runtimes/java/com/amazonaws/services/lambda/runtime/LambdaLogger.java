package com.amazonaws.services.lambda.runtime;

import com.amazonaws.services.lambda.runtime.logging.LogLevel;

/** Writes one log event per call to the function's log stream. */
public interface LambdaLogger {
    void log(String message);

    void log(byte[] message);

    /** Logs {@code message} at {@code logLevel}; dropped below AWS_LAMBDA_LOG_LEVEL. */
    default void log(String message, LogLevel logLevel) {
        log(message);
    }

    default void log(byte[] message, LogLevel logLevel) {
        log(message);
    }
}
