package strato.runtime;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The Lambda Runtime API (2018-06-01) over one kept-alive HTTP/1.1 connection to
 * {@code AWS_LAMBDA_RUNTIME_API}, reopened when the platform closes it. A plain socket rather
 * than HttpURLConnection: the JVM then loads no URL handlers, proxy selection or logging
 * framework before the first invocation, which is a cold start's CPU time. Answers are read by
 * their Content-Length, or chunked. One thread at a time.
 */
final class RuntimeApiClient {
    private static final String PREFIX = "/2018-06-01/runtime";

    private final String host;
    private final int port;
    private Socket socket;
    private InputStream in;
    private OutputStream out;

    RuntimeApiClient(String address) {
        int colon = address.lastIndexOf(':');
        this.host = address.substring(0, colon);
        this.port = Integer.parseInt(address.substring(colon + 1));
    }

    /** Blocks until the platform delivers the next invocation. */
    Invocation next() throws IOException {
        Answer answer = exchange("GET", PREFIX + "/invocation/next", null, null);
        if (answer.status != 200) {
            throw new IOException("/invocation/next answered " + answer.status + ": "
                                  + new String(answer.body, StandardCharsets.UTF_8));
        }
        String deadline = answer.headers.get("lambda-runtime-deadline-ms");
        return new Invocation(
            answer.headers.get("lambda-runtime-aws-request-id"),
            deadline == null ? Long.MAX_VALUE : Long.parseLong(deadline.trim()),
            answer.headers.get("lambda-runtime-invoked-function-arn"),
            answer.headers.get("lambda-runtime-trace-id"),
            answer.headers.get("lambda-runtime-client-context"),
            answer.headers.get("lambda-runtime-cognito-identity"),
            answer.body);
    }

    void respond(String requestId, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/invocation/" + requestId + "/response", body, null);
    }

    void fail(String requestId, String errorType, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/invocation/" + requestId + "/error", body, errorType);
    }

    void failInit(String errorType, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/init/error", body, errorType);
    }

    private record Answer(int status, Map<String, String> headers, byte[] body) {
    }

    private Answer exchange(String method, String path, byte[] body, String errorType) throws IOException {
        StringBuilder head = new StringBuilder();
        head.append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ")
            .append(host).append(':').append(port).append("\r\n");
        if (body != null) {
            head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length)
                .append("\r\n");
        }
        if (errorType != null) {
            head.append("Lambda-Runtime-Function-Error-Type: ").append(errorType).append("\r\n");
        }
        head.append("\r\n");
        byte[] request = head.toString().getBytes(StandardCharsets.UTF_8);
        boolean reused = socket != null;
        try {
            return send(request, body);
        } catch (IOException e) {
            close();
            if (!reused) {
                throw e;
            }
            // The platform closed an idle kept-alive connection: one new one.
            return send(request, body);
        }
    }

    private Answer send(byte[] request, byte[] body) throws IOException {
        if (socket == null) {
            socket = new Socket();
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port));
            in = new BufferedInputStream(socket.getInputStream(), 65536);
            out = socket.getOutputStream();
        }
        out.write(request);
        if (body != null) {
            out.write(body);
        }
        out.flush();
        String status = line();
        if (status == null) {
            throw new IOException("the Runtime API closed the connection");
        }
        String[] parts = status.split(" ", 3);
        int code = Integer.parseInt(parts[1]);
        Map<String, String> headers = new HashMap<>();
        for (String header = line(); header != null && !header.isEmpty(); header = line()) {
            int colon = header.indexOf(':');
            if (colon > 0) {
                headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT),
                            header.substring(colon + 1).trim());
            }
        }
        byte[] answer;
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            answer = chunked();
        } else {
            String length = headers.get("content-length");
            answer = in.readNBytes(length == null ? 0 : Integer.parseInt(length));
        }
        if ("close".equalsIgnoreCase(headers.get("connection"))) {
            close();
        }
        return new Answer(code, headers, answer);
    }

    private byte[] chunked() throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        while (true) {
            String size = line();
            if (size == null) {
                throw new IOException("the Runtime API closed the connection mid-answer");
            }
            int semicolon = size.indexOf(';');
            int length = Integer.parseInt((semicolon >= 0 ? size.substring(0, semicolon) : size).trim(), 16);
            if (length == 0) {
                for (String trailer = line(); trailer != null && !trailer.isEmpty(); trailer = line()) {
                    continue;
                }
                return body.toByteArray();
            }
            body.write(in.readNBytes(length));
            line();
        }
    }

    /** One header line without its CRLF; null at the end of the stream. */
    private String line() throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(128);
        int c;
        while ((c = in.read()) != -1) {
            if (c == '\n') {
                byte[] text = bytes.toByteArray();
                int end = text.length > 0 && text[text.length - 1] == '\r' ? text.length - 1 : text.length;
                return new String(text, 0, end, StandardCharsets.ISO_8859_1);
            }
            bytes.write(c);
        }
        return bytes.size() == 0 ? null : bytes.toString(StandardCharsets.ISO_8859_1);
    }

    private void close() {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException e) {
                // Closing a broken connection: nothing is left to release.
            }
        }
        socket = null;
    }
}
