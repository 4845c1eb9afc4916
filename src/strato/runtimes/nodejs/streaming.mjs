// Response streaming as Lambda's Node.js runtimes offer it
// (https://docs.aws.amazon.com/lambda/latest/dg/config-rs-write-functions.html):
// `awslambda.streamifyResponse(handler)` marks a handler `(event, responseStream, context)`
// whose response is streamed, and `awslambda.HttpResponseStream.from(stream, metadata)`
// begins a function URL's response with its status, headers and cookies (the JSON prelude,
// then 8 NUL bytes, under the http-integration content type).
//
// The response stream is the Runtime API post itself, in its streaming mode
// (runtime-api.mjs `openStream`): each write leaves as a chunk at once. The stream ends when
// the handler ends it or its promise settles; an error (a rejection, a throw) ends it with the
// Lambda-Runtime-Function-Error-* trailers.

import { errorBody } from './errors.mjs';

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';
const PRELUDE_END = Buffer.alloc(8);

export function streamifyResponse(handler) {
  const streaming = (event, responseStream, context) => handler(event, responseStream, context);
  streaming[STREAMING] = true;
  return streaming;
}

export const HttpResponseStream = {
  from(stream, metadata) {
    stream.setContentType(HTTP_INTEGRATION);
    stream.write(JSON.stringify(metadata ?? {}));
    stream.write(PRELUDE_END);
    return stream;
  },
};

export function isStreaming(handler) {
  return handler?.[STREAMING] === true;
}

/** Run the streaming `handler` for invocation `id`; resolves once the platform answered
 * the streamed post. Errors are logged as an invocation's are and sent in the trailers. */
export async function runStreaming(api, id, handler, event, context) {
  const { stream, answered } = api.openStream(id);
  stream.setContentType = (type) => {
    if (!stream.headersSent) stream.setHeader('Content-Type', type);
  };
  let failure;
  try {
    await handler(event, stream, context);
  } catch (error) {
    failure = error ?? new Error('the handler rejected');
  }
  if (failure !== undefined) {
    const body = errorBody(failure);
    console.error('Invoke Error',
      JSON.stringify({ errorType: body.errorType, errorMessage: body.errorMessage, stack: body.trace }));
    if (!stream.writableEnded) {
      stream.addTrailers({
        'Lambda-Runtime-Function-Error-Type': body.errorType,
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(body)).toString('base64'),
      });
    }
  }
  if (!stream.writableEnded) stream.end();
  await answered;
}
