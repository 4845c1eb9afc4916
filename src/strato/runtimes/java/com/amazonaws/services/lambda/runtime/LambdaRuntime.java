package com.amazonaws.services.lambda.runtime;

/** The execution environment's logger, for code that has no {@link Context} at hand. */
public final class LambdaRuntime {
    private static volatile LambdaLogger logger = new LambdaLogger() {
        public void log(String message) {
            System.out.print(message);
            System.out.flush();
        }

        public void log(byte[] message) {
            System.out.write(message, 0, message.length);
            System.out.flush();
        }
    };

    private LambdaRuntime() {
    }

    public static LambdaLogger getLogger() {
        return logger;
    }

    /** Installs the runtime client's logger; called once, before the handler is loaded. */
    public static void setLogger(LambdaLogger runtimeLogger) {
        logger = runtimeLogger;
    }
}
