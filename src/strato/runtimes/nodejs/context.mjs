// The context object a handler gets
// (https://docs.aws.amazon.com/lambda/latest/dg/nodejs-context.html), built from the
// headers of the invocation and the environment's variables.

function parsed(text) {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The context of the invocation whose `invocation/next` answer had `headers`;
 * `callbacks` holds the legacy `done`/`succeed`/`fail` and the
 * `callbackWaitsForEmptyEventLoop` flag's storage (the invocation's own settlement).
 */
export function makeContext(headers, environment, callbacks) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const context = {
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: environment.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: environment.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: environment.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: environment.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: environment.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parsed(headers['lambda-runtime-client-context']),
    identity: parsed(headers['lambda-runtime-cognito-identity']),
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: (error, result) => callbacks.settle(error, result),
    succeed: (result) => callbacks.settle(null, result),
    fail: (error) => callbacks.settle(error ?? 'handled', undefined),
  };
  Object.defineProperty(context, 'callbackWaitsForEmptyEventLoop', {
    get: () => callbacks.waitForEmptyEventLoop,
    set: (value) => { callbacks.waitForEmptyEventLoop = Boolean(value); },
    enumerable: true,
  });
  return context;
}
