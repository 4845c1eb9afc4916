// A module resolution hook (registered with node:module's `register` before a function's
// first ES module loads): a bare specifier that node's own resolution does not find is
// looked for in the runtime's module directories too (NODE_PATH's node_modules entries and
// the AWS SDK's), which ES modules' resolution ignores, so that an ES module imports the
// SDK strato provides as on Lambda. A function's own node_modules is searched first, so
// its bundled copy wins.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

let roots = [];

export function initialize(data) {
  roots = data.roots;
}

function isBare(specifier) {
  return !specifier.startsWith('.') && !specifier.startsWith('/') && !/^[a-z][a-z0-9+.-]*:/i.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw error;
    for (const root of roots) {
      // Resolved as if imported by a file in the directory that holds `root`'s packages.
      const parentURL = pathToFileURL(path.join(root, '.strato-search.mjs')).href;
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {
        // not in this directory
      }
    }
    throw error;
  }
}
