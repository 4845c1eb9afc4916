package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/** What a mobile SDK caller said about its client application. */
public interface ClientContext {
    Client getClient();

    Map<String, String> getCustom();

    Map<String, String> getEnvironment();
}
