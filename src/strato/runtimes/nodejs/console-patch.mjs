// console.* as Lambda's Node.js runtimes write it
// (https://docs.aws.amazon.com/lambda/latest/dg/nodejs-logging.html).
//
// Text format (the default): one line per call, `<ISO time>\t<request id>\t<LEVEL>\t<message>`,
// the message's newlines written as carriage returns so that a call stays one log event.
// JSON format (AWS_LAMBDA_LOG_FORMAT=JSON): one JSON record per call with `timestamp`,
// `level`, `requestId` and `message` (a lone argument as itself, an Error as its
// errorType/errorMessage/stackTrace; several arguments formatted into one string, the first
// Error among them also given as errorType/errorMessage/stackTrace), and calls below
// AWS_LAMBDA_LOG_LEVEL dropped.

import { format } from 'node:util';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const METHODS = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', log: 'INFO', warn: 'WARN',
                  error: 'ERROR', fatal: 'FATAL' };

function errorFields(error) {
  return {
    errorType: error?.constructor?.name ?? 'UnknownError',
    errorMessage: error.message,
    stackTrace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
  };
}

function replaceErrors(_key, value) {
  return value instanceof Error ? { ...value, ...errorFields(value) } : value;
}

/** The JSON record of one call (exported for the runtime's tests). */
export function jsonRecord(timestamp, level, requestId, params) {
  const record = { timestamp, level, requestId };
  if (params.length === 1) {
    record.message = params[0];
    try {
      return JSON.stringify(record, replaceErrors);
    } catch {
      // Circular or BigInt: the message as util.format shows it.
      record.message = format(params[0]);
      return JSON.stringify(record);
    }
  }
  record.message = format(...params);
  const error = params.find((param) => param instanceof Error);
  if (error !== undefined) Object.assign(record, errorFields(error));
  return JSON.stringify(record);
}

/** The text line of one call (without its newline). */
export function textLine(timestamp, level, requestId, params) {
  return `${timestamp}\t${requestId}\t${level}\t${format(...params).replace(/\n/g, '\r')}`;
}

/**
 * Replace console's methods; `currentRequestId()` names the invocation under way
 * (undefined during INIT, as on Lambda). Writes synchronously to stdout (fd 1).
 */
export function patchConsole(environment, currentRequestId, write) {
  const json = (environment.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const wanted = (environment.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase();
  const threshold = json && LEVELS.includes(wanted) ? LEVELS.indexOf(wanted) : 0;
  for (const [method, level] of Object.entries(METHODS)) {
    if (LEVELS.indexOf(level) < threshold) {
      console[method] = () => {};
      continue;
    }
    console[method] = (...params) => {
      const timestamp = new Date().toISOString();
      const requestId = currentRequestId();
      write((json ? jsonRecord(timestamp, level, requestId, params)
        : textLine(timestamp, level, requestId, params)) + '\n');
    };
  }
}
