package strato.runtime;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;

/**
 * The Lambda Runtime API (2018-06-01) over HTTP/1.1, at {@code AWS_LAMBDA_RUNTIME_API}.
 * HttpURLConnection keeps the connection alive between calls (its cache of idle connections),
 * and loads far fewer classes at start than java.net.http. One thread at a time.
 */
final class RuntimeApiClient {
    private final String base;

    RuntimeApiClient(String address) {
        this.base = "http://" + address + "/2018-06-01/runtime";
    }

    /** Blocks until the platform delivers the next invocation. */
    Invocation next() throws IOException {
        HttpURLConnection connection = open("/invocation/next");
        connection.setReadTimeout(0);
        int status = connection.getResponseCode();
        byte[] body = read(status < 400 ? connection.getInputStream() : connection.getErrorStream());
        if (status != 200) {
            throw new IOException("/invocation/next answered " + status + ": " + new String(body));
        }
        String deadline = connection.getHeaderField("Lambda-Runtime-Deadline-Ms");
        return new Invocation(
            connection.getHeaderField("Lambda-Runtime-Aws-Request-Id"),
            deadline == null ? Long.MAX_VALUE : Long.parseLong(deadline.trim()),
            connection.getHeaderField("Lambda-Runtime-Invoked-Function-Arn"),
            connection.getHeaderField("Lambda-Runtime-Trace-Id"),
            connection.getHeaderField("Lambda-Runtime-Client-Context"),
            connection.getHeaderField("Lambda-Runtime-Cognito-Identity"),
            body);
    }

    void respond(String requestId, byte[] body) throws IOException {
        post("/invocation/" + requestId + "/response", body, null);
    }

    void fail(String requestId, String errorType, byte[] body) throws IOException {
        post("/invocation/" + requestId + "/error", body, errorType);
    }

    void failInit(String errorType, byte[] body) throws IOException {
        post("/init/error", body, errorType);
    }

    private void post(String path, byte[] body, String errorType) throws IOException {
        HttpURLConnection connection = open(path);
        connection.setRequestMethod("POST");
        connection.setDoOutput(true);
        connection.setFixedLengthStreamingMode(body.length);
        connection.setRequestProperty("Content-Type", "application/json");
        if (errorType != null) {
            connection.setRequestProperty("Lambda-Runtime-Function-Error-Type", errorType);
        }
        try (OutputStream out = connection.getOutputStream()) {
            out.write(body);
        }
        int status = connection.getResponseCode();
        // Reading the answer to its end returns the connection to the keep-alive cache.
        read(status < 400 ? connection.getInputStream() : connection.getErrorStream());
    }

    private HttpURLConnection open(String path) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) new URL(base + path).openConnection(
            java.net.Proxy.NO_PROXY);
        connection.setUseCaches(false);
        return connection;
    }

    private static byte[] read(InputStream in) throws IOException {
        if (in == null) {
            return new byte[0];
        }
        try (in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        }
    }
}
