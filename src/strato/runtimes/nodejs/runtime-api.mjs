// The Lambda Runtime API as a client: the next invocation, its response or error, and an
// INIT error (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). One
// keep-alive connection, reused from one call to the next; node keeps an idle keep-alive
// socket unreferenced, so it never holds the event loop open.

import http from 'node:http';

const PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';

export class RuntimeApi {
  /** `address` is AWS_LAMBDA_RUNTIME_API: `host:port`. */
  constructor(address) {
    const colon = address.lastIndexOf(':');
    this.host = address.slice(0, colon);
    this.port = Number(address.slice(colon + 1));
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  _request(method, path, body, headers = {}) {
    return new Promise((resolve, reject) => {
      const request = http.request({
        host: this.host, port: this.port, method, path: PREFIX + path, agent: this.agent,
        headers: body === undefined ? headers
          : { ...headers, 'Content-Type': 'application/json',
              'Content-Length': Buffer.byteLength(body) },
      }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => resolve({
          status: response.statusCode, headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  }

  /** The next invocation: `{headers, body}` (the event as text). Waits for it. */
  async next() {
    const answer = await this._request('GET', '/invocation/next');
    if (answer.status !== 200) {
      throw new Error(`the Runtime API answered ${answer.status} to invocation/next: ${answer.body}`);
    }
    return answer;
  }

  /** Post the result of invocation `id`: `payload` is the JSON text of the response. */
  async postResponse(id, payload) {
    await this._post(`/invocation/${id}/response`, payload);
  }

  /** Post the error of invocation `id` (`body`: errorBody's shape). */
  async postError(id, body) {
    await this._post(`/invocation/${id}/error`, JSON.stringify(body),
      { [ERROR_TYPE_HEADER]: body.errorType });
  }

  /** Post an error of INIT (`body`: errorBody's shape). */
  async postInitError(body) {
    await this._post('/init/error', JSON.stringify(body), { [ERROR_TYPE_HEADER]: body.errorType });
  }

  /** A streamed response post for invocation `id` (the Runtime API's streaming response
   * mode): `stream` is the request, written chunk by chunk; `answered` resolves once the
   * platform answered it (after the stream's end). */
  openStream(id) {
    const path = `/invocation/${id}/response`;
    const stream = http.request({
      host: this.host, port: this.port, method: 'POST', path: PREFIX + path, agent: this.agent,
      headers: {
        'Content-Type': 'application/octet-stream',
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
      },
    });
    const answered = new Promise((resolve) => {
      stream.on('response', (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          if (response.statusCode >= 300) {
            process.stderr.write(`The Runtime API answered ${response.statusCode} to ${path}: `
              + `${Buffer.concat(chunks).toString('utf8')}\n`);
          }
          resolve();
        });
        response.on('error', () => resolve());
      });
      stream.on('error', (error) => {
        process.stderr.write(`The Runtime API connection failed while streaming: ${error}\n`);
        resolve();
      });
    });
    return { stream, answered };
  }

  async _post(path, body, headers) {
    const answer = await this._request('POST', path, body, headers);
    if (answer.status >= 300) {
      // The platform refused the post (too large, or not this invocation's): it has
      // recorded the invocation's outcome itself; carry on with the next one.
      process.stderr.write(`The Runtime API answered ${answer.status} to ${path}: ${answer.body}\n`);
    }
  }
}
