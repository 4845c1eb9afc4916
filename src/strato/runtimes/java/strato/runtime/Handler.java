package strato.runtime;

import com.amazonaws.services.lambda.runtime.Context;

/** A loaded handler: one invocation's event bytes in, its response bytes out. */
interface Handler {
    /** Throws what the function threw (unwrapped), or what (de)serialization did. */
    byte[] handle(byte[] event, Context context) throws Throwable;
}
