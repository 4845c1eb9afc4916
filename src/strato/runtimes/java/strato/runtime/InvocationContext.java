package strato.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.util.Map;

/** The {@link Context} of one invocation: its headers and the environment's variables. */
final class InvocationContext implements Context {
    private final Invocation invocation;
    private final LambdaLogger logger;

    InvocationContext(Invocation invocation, LambdaLogger logger) {
        this.invocation = invocation;
        this.logger = logger;
    }

    public String getAwsRequestId() {
        return invocation.requestId();
    }

    public String getLogGroupName() {
        return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
    }

    public String getLogStreamName() {
        return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
    }

    public String getFunctionName() {
        return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
    }

    public String getFunctionVersion() {
        return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
    }

    public String getInvokedFunctionArn() {
        return invocation.invokedFunctionArn();
    }

    public CognitoIdentity getIdentity() {
        Map<?, ?> identity = object(invocation.cognitoIdentity());
        if (identity == null) {
            return null;
        }
        return new CognitoIdentity() {
            public String getIdentityId() {
                return text(identity.get("cognitoIdentityId"));
            }

            public String getIdentityPoolId() {
                return text(identity.get("cognitoIdentityPoolId"));
            }
        };
    }

    public ClientContext getClientContext() {
        Map<?, ?> context = object(invocation.clientContext());
        if (context == null) {
            return null;
        }
        Map<?, ?> client = context.get("client") instanceof Map<?, ?> m ? m : Map.of();
        return new ClientContext() {
            public Client getClient() {
                return new Client() {
                    public String getInstallationId() {
                        return text(client.get("installation_id"));
                    }

                    public String getAppTitle() {
                        return text(client.get("app_title"));
                    }

                    public String getAppVersionName() {
                        return text(client.get("app_version_name"));
                    }

                    public String getAppVersionCode() {
                        return text(client.get("app_version_code"));
                    }

                    public String getAppPackageName() {
                        return text(client.get("app_package_name"));
                    }
                };
            }

            public Map<String, String> getCustom() {
                return strings(context.get("custom"));
            }

            public Map<String, String> getEnvironment() {
                return strings(context.get("env"));
            }
        };
    }

    public int getRemainingTimeInMillis() {
        return (int) Math.max(0, invocation.deadlineMs() - System.currentTimeMillis());
    }

    public int getMemoryLimitInMB() {
        String memory = System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
        return memory == null ? 0 : Integer.parseInt(memory);
    }

    public LambdaLogger getLogger() {
        return logger;
    }

    public String getXrayTraceId() {
        return invocation.traceId();
    }

    private static Map<?, ?> object(String header) {
        if (header == null || header.isEmpty()) {
            return null;
        }
        try {
            return Json.parse(header) instanceof Map<?, ?> m ? m : null;
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static String text(Object value) {
        return value == null ? null : value.toString();
    }

    private static Map<String, String> strings(Object value) {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        if (value instanceof Map<?, ?> map) {
            map.forEach((k, v) -> out.put(String.valueOf(k), text(v)));
        }
        return out;
    }
}
