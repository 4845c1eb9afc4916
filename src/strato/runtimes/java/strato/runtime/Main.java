package strato.runtime;

import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * strato's Java runtime client: loads the handler named by {@code _HANDLER} (INIT), then serves
 * invocations from the Runtime API one at a time until the platform stops the process. A
 * handler that cannot be loaded, or whose class initialisation throws, is reported to
 * {@code /runtime/init/error} and ends the process with status 1, as on Lambda. An invocation's
 * uncaught throwable is logged and posted as its error document (errorType = its class).
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) throws IOException {
        PrintStream stdout = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out),
                                             true, StandardCharsets.UTF_8);
        RuntimeLogger logger = RuntimeLogger.fromEnvironment(stdout);
        LambdaRuntime.setLogger(logger);
        RuntimeApiClient api = new RuntimeApiClient(System.getenv("AWS_LAMBDA_RUNTIME_API"));
        Handler handler;
        try {
            handler = HandlerLoader.load(String.valueOf(System.getenv("_HANDLER")));
        } catch (Throwable error) {
            Map<String, Object> document = ErrorDocument.of(error);
            logger.uncaught(document, error);
            api.failInit((String) document.get("errorType"), encode(document));
            System.exit(1);
            return;
        }
        while (true) {
            Invocation invocation = api.next();
            logger.setRequestId(invocation.requestId());
            if (invocation.traceId() != null) {
                System.setProperty("com.amazonaws.xray.traceHeader", invocation.traceId());
            }
            byte[] response;
            try {
                response = handler.handle(invocation.event(), new InvocationContext(invocation, logger));
            } catch (Throwable error) {
                Map<String, Object> document = ErrorDocument.of(error);
                logger.uncaught(document, error);
                System.out.flush();
                System.err.flush();
                api.fail(invocation.requestId(), (String) document.get("errorType"), encode(document));
                continue;
            }
            System.out.flush();
            System.err.flush();
            api.respond(invocation.requestId(), response);
        }
    }

    private static byte[] encode(Map<String, Object> document) {
        return Json.write(document).getBytes(StandardCharsets.UTF_8);
    }
}
