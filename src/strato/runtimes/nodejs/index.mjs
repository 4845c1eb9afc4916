// strato's Node.js runtime: runs a function's handler through the Lambda Runtime API at
// AWS_LAMBDA_RUNTIME_API, with the semantics of Lambda's nodejs18.x–22.x runtimes
// (https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html).
//
// INIT: console patched (console-patch.mjs), module paths set, the handler loaded
// (user-function.mjs); a failure is posted to /runtime/init/error and the process exits.
// Then, one invocation at a time: the event from /invocation/next, the handler called with
// it, a context and a callback; the outcome is the first of the callback (posted once the
// event loop is empty, unless context.callbackWaitsForEmptyEventLoop is false), the
// returned promise's settlement, or, when the event loop empties first, null. An uncaught
// exception or unhandled rejection fails the invocation under way (or INIT) and ends the
// process, which the platform restarts.
//
// Argument: the host path of a node_modules holding the AWS SDK, where the environment
// shows none at /var/runtime/node_modules (it is then searched after NODE_PATH); or
// `--standby`: booted ahead of its function, the client waits for its environment first
// (standby.mjs).

import Module from 'node:module';
import path from 'node:path';
import process from 'node:process';

import { patchConsole } from './console-patch.mjs';
import { makeContext } from './context.mjs';
import { RuntimeError, errorBody } from './errors.mjs';
import { RuntimeApi } from './runtime-api.mjs';
import { adoptEnvironment, isStandby, warmUp } from './standby.mjs';
import { HttpResponseStream, isStreaming, runStreaming, streamifyResponse } from './streaming.mjs';
import { loadHandler } from './user-function.mjs';

if (isStandby()) {
  await warmUp();
  adoptEnvironment();
}
const environment = process.env;
const FATAL_EXIT = 129;

/** The invocation under way: {id, settle(outcome)}, or undefined (INIT, between). */
let current;
patchConsole(environment, () => current?.id, (line) => process.stdout.write(line));
const api = new RuntimeApi(environment.AWS_LAMBDA_RUNTIME_API);

// The module paths: NODE_PATH as Lambda sets it (given by the platform, else Lambda's value
// for this major version), then the SDK's host path when one is given.
const major = process.versions.node.split('.')[0];
if (!environment.NODE_PATH) {
  environment.NODE_PATH = [`/opt/nodejs/node${major}/node_modules`, '/opt/nodejs/node_modules',
    '/var/runtime/node_modules', '/var/runtime', '/var/task'].join(':');
}
const sdk = process.argv[2];
if (sdk && !environment.NODE_PATH.split(':').includes(sdk)) environment.NODE_PATH += `:${sdk}`;
Module._initPaths();  // require's search paths, from NODE_PATH as it is now
const moduleRoots = environment.NODE_PATH.split(':')
  .filter((root) => path.basename(root) === 'node_modules');

let esmReady = false;
function prepareEsm() {
  if (esmReady || typeof Module.register !== 'function') return;
  esmReady = true;
  Module.register('./esm-search.mjs', import.meta.url, { data: { roots: moduleRoots } });
}

/** Log what ends the process, post it where it belongs, and exit. */
async function fatal(error, invocation) {
  const body = errorBody(error);
  console.error(invocation ? 'Invoke Error' : 'Uncaught Exception',
    JSON.stringify({ errorType: body.errorType, errorMessage: body.errorMessage, stack: body.trace }));
  try {
    if (invocation) {
      await invocation.post({ error });
    } else if (!handler) {
      await api.postInitError(body);
    }
  } finally {
    process.exit(FATAL_EXIT);
  }
}

process.on('uncaughtException', (error) => fatal(error, current));
process.on('unhandledRejection', (reason) => {
  const error = new RuntimeError('Runtime.UnhandledPromiseRejection', String(reason));
  if (reason instanceof Error && typeof reason.stack === 'string') error.stack = reason.stack;
  fatal(error, current);
});

// Waiters for the event loop to empty ('beforeExit': nothing left but this wait).
let loopWaiters = [];
process.on('beforeExit', () => {
  const waiters = loopWaiters;
  loopWaiters = [];
  for (const resolve of waiters) resolve();
});
function emptyEventLoop() {
  return new Promise((resolve) => loopWaiters.push(resolve));
}

// Lambda's global for streaming handlers, there before the function's code loads.
globalThis.awslambda = { streamifyResponse, HttpResponseStream };

let handler;
try {
  handler = await loadHandler(environment.LAMBDA_TASK_ROOT || process.cwd(),
    environment._HANDLER || '', prepareEsm);
} catch (error) {
  await fatal(error, undefined);
}

/** One invocation: its context, settlement and single post. */
function startInvocation(next) {
  const headers = next.headers;
  const id = headers['lambda-runtime-aws-request-id'];
  let settle;
  const settled = new Promise((resolve) => { settle = resolve; });
  let posted = false;
  const invocation = {
    id,
    callbacks: {
      waitForEmptyEventLoop: true,
      settle: (error, result) => settle({ error, result, callback: true }),
    },
    settled,
    settle,
    /** Post `outcome` ({error} or {result}) unless something was posted already. */
    async post(outcome) {
      if (posted) return;
      posted = true;
      if (outcome.error !== undefined && outcome.error !== null) {
        await api.postError(id, errorBody(outcome.error));
        return;
      }
      let payload;
      try {
        payload = JSON.stringify(outcome.result === undefined ? null : outcome.result);
      } catch (error) {
        await api.postError(id, errorBody(error));
        return;
      }
      await api.postResponse(id, payload);
    },
  };
  if (headers['lambda-runtime-trace-id']) {
    environment._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
  } else {
    delete environment._X_AMZN_TRACE_ID;
  }
  return invocation;
}

async function invoke(next) {
  const invocation = startInvocation(next);
  current = invocation;
  const context = makeContext(next.headers, environment, invocation.callbacks);
  if (isStreaming(handler)) {
    let event;
    try {
      event = JSON.parse(next.body);
    } catch (error) {
      await invocation.post({ error });
      current = undefined;
      return;
    }
    await runStreaming(api, invocation.id, handler, event, context);
    current = undefined;
    return;
  }
  try {
    const event = JSON.parse(next.body);
    const returned = handler(event, context, invocation.callbacks.settle);
    if (returned !== null && typeof returned?.then === 'function') {
      returned.then((result) => invocation.settle({ result }),
        (error) => invocation.settle({ error: error ?? new Error('the handler rejected') }));
    }
  } catch (error) {
    invocation.settle({ error });
  }
  const outcome = await Promise.race([invocation.settled, emptyEventLoop().then(() => ({}))]);
  if (outcome.callback && invocation.callbacks.waitForEmptyEventLoop) await emptyEventLoop();
  if (outcome.error !== undefined && outcome.error !== null) {
    const body = errorBody(outcome.error);
    console.error('Invoke Error',
      JSON.stringify({ errorType: body.errorType, errorMessage: body.errorMessage, stack: body.trace }));
  }
  await invocation.post(outcome);
  current = undefined;
}

for (;;) {
  await invoke(await api.next());
}
