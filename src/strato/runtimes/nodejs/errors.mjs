// Errors as the Runtime API receives them: {errorType, errorMessage, trace}, the shape of
// Lambda's Node.js runtimes (an Error gives its name, message and stack lines; any other
// thrown value gives its typeof, its string and no trace).

/** An error of the runtime itself, with Lambda's `Runtime.*` type as its name. */
export class RuntimeError extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = type;
    if (cause !== undefined) this.cause = cause;
  }
}

function isError(value) {
  return value instanceof Error
    || (value !== null && typeof value === 'object' && typeof value.message === 'string'
        && typeof value.stack === 'string');
}

/** The Runtime API body of `value` thrown (or passed to a callback) by user code. */
export function errorBody(value) {
  if (isError(value)) {
    let type = value.name;
    if (typeof type !== 'string' || type === '') type = value.constructor?.name || 'Error';
    return {
      errorType: type,
      errorMessage: String(value.message),
      trace: typeof value.stack === 'string' ? value.stack.split('\n') : [],
    };
  }
  return { errorType: typeof value, errorMessage: String(value), trace: [] };
}
