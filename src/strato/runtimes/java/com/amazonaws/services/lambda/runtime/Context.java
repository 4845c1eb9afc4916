package com.amazonaws.services.lambda.runtime;

/**
 * What a handler learns about its invocation and execution environment (the public interface
 * of aws-lambda-java-core, implemented by strato's runtime client).
 */
public interface Context {
    String getAwsRequestId();

    String getLogGroupName();

    String getLogStreamName();

    String getFunctionName();

    String getFunctionVersion();

    String getInvokedFunctionArn();

    /** The Amazon Cognito identity of a mobile SDK caller, or null. */
    CognitoIdentity getIdentity();

    /** The client context a mobile SDK caller sent, or null. */
    ClientContext getClientContext();

    /** Milliseconds left before the invocation times out. */
    int getRemainingTimeInMillis();

    int getMemoryLimitInMB();

    LambdaLogger getLogger();

    /** The X-Ray trace id of this invocation, or null. */
    default String getXrayTraceId() {
        return null;
    }

    /** The tenant of a multi-tenant function's invocation, or null. */
    default String getTenantId() {
        return null;
    }
}
