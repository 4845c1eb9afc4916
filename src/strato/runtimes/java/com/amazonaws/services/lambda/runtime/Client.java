package com.amazonaws.services.lambda.runtime;

/** The client application of a mobile SDK caller. */
public interface Client {
    String getInstallationId();

    String getAppTitle();

    String getAppVersionName();

    String getAppVersionCode();

    String getAppPackageName();
}
