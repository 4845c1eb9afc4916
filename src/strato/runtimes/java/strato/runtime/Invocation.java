package strato.runtime;

/** One invocation as {@code /runtime/invocation/next} delivered it. */
record Invocation(String requestId, long deadlineMs, String invokedFunctionArn, String traceId,
                  String clientContext, String cognitoIdentity, byte[] event) {
}
