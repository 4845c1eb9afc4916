// Standby: node booted ahead of its function. The platform starts the client as
// `index.mjs --standby` in a sandbox that has everything but the function (no code at
// /var/task, no variables of its own), fd 3 a connected unix socket; the client imports its
// modules, says it is booted (one byte, `B`, on fd 3) and then waits here, blocked on one
// message on fd 3: the environment's variables as one JSON object, written by the platform
// once it has shown the function's code at /var/task, then the end of the stream. The fd is
// closed before anything of the function runs, and the client then goes on as a freshly
// started one.

import fs from 'node:fs';
import http from 'node:http';
import process from 'node:process';

export const STANDBY_FLAG = '--standby';
const STANDBY_FD = 3;
const BOOTED = 'B';
//: A loopback port nothing listens on in a standby's network (the Runtime API is 9001, and
//: strato's API 9002): connecting is refused at once.
const REFUSING_PORT = 9;

/** Whether this process was started as a standby (the flag is taken out of argv). */
export function isStandby() {
  const at = process.argv.indexOf(STANDBY_FLAG, 2);
  if (at < 0) return false;
  process.argv.splice(at, 1);
  return true;
}

/** Take ahead what node does lazily on the first HTTP request of the Runtime API client
 * (its internal modules, the request and socket code compiled): one request to a port that
 * refuses it. Resolves when it failed (or, should anything answer, when it was answered). */
export function warmUp() {
  return new Promise((resolve) => {
    const request = http.request({ host: '127.0.0.1', port: REFUSING_PORT, path: '/',
      agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) }, (response) => {
      response.resume();
      response.on('end', resolve);
    });
    request.on('error', resolve);
    request.end();
  });
}

/** Wait for the environment's variables on fd 3, read them to the end, close the fd, make
 * them process.env (nothing else stays) and move into the code's directory, which is a
 * mount over the one this process started in. Exits when the message is unreadable. */
export function adoptEnvironment() {
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  try {
    fs.writeSync(STANDBY_FD, BOOTED);
    for (;;) {
      const got = fs.readSync(STANDBY_FD, buffer, 0, buffer.length, null);
      if (got === 0) break;
      chunks.push(Buffer.from(buffer.subarray(0, got)));
    }
  } finally {
    fs.closeSync(STANDBY_FD);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) process.exit(0);  // given up by the platform without a function
  const variables = JSON.parse(text);
  for (const name of Object.keys(process.env)) delete process.env[name];
  for (const [name, value] of Object.entries(variables)) process.env[name] = value;
  process.chdir(process.env.LAMBDA_TASK_ROOT || '/var/task');
}
