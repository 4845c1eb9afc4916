package com.amazonaws.services.lambda.runtime;

/** A handler whose event is deserialized from JSON into {@code I} and whose {@code O} result
 * is serialized back to JSON. */
public interface RequestHandler<I, O> {
    O handleRequest(I input, Context context);
}
