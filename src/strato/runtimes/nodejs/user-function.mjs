// Loading the function's handler, `<path/>module.export` (_HANDLER), as Lambda's Node.js
// runtimes do (https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html): the module
// is `<task root>/<path/>module` with `.js`, `.mjs` or `.cjs`; `.mjs` and a `.js` below a
// package.json of `"type": "module"` are ES modules, the others CommonJS; a name that is no
// file is required as a package. Failures carry Lambda's error types.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { RuntimeError } from './errors.mjs';

// Named after the entry point, so a require stack reads as Lambda's (/var/runtime/index.mjs).
const requireHere = createRequire(new URL('./index.mjs', import.meta.url));
const EXTENSIONS = ['.js', '.mjs', '.cjs'];

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The `type` of the package.json nearest above `file` ("commonjs" when none says). */
function packageType(file) {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      const type = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type;
      return type === 'module' ? 'module' : 'commonjs';
    } catch (error) {
      if (error.code !== 'ENOENT' && error.code !== 'ENOTDIR' && error.code !== 'EACCES') {
        return 'commonjs';  // an unreadable package.json: node treats the file as CommonJS
      }
    }
    if (dir === path.dirname(dir)) return 'commonjs';
  }
}

function loadFailure(error) {
  if (error instanceof SyntaxError) {
    return new RuntimeError('Runtime.UserCodeSyntaxError', String(error), error);
  }
  if (error?.code === 'MODULE_NOT_FOUND' || error?.code === 'ERR_MODULE_NOT_FOUND') {
    return new RuntimeError('Runtime.ImportModuleError', String(error), error);
  }
  return error;
}

/** What the module `modulePath` (relative to `taskRoot`) exports; `esm()` is called
 * before the first ES module is imported. */
async function loadModule(taskRoot, modulePath, esm) {
  const base = path.resolve(taskRoot, modulePath);
  const file = EXTENSIONS.map((ext) => base + ext).find(isFile);
  try {
    if (file === undefined) {
      return requireHere(modulePath);  // a package, found through the module paths
    }
    if (file.endsWith('.mjs') || (file.endsWith('.js') && packageType(file) === 'module')) {
      esm();
      return await import(pathToFileURL(file).href);
    }
    return requireHere(file);
  } catch (error) {
    throw loadFailure(error);
  }
}

/**
 * The handler function `handlerString` names below `taskRoot`. Throws a RuntimeError of
 * type Runtime.MalformedHandlerName, Runtime.ImportModuleError, Runtime.UserCodeSyntaxError
 * or Runtime.HandlerNotFound, or whatever the module threw while it loaded.
 */
export async function loadHandler(taskRoot, handlerString, esm) {
  const slash = handlerString.lastIndexOf('/');
  const name = handlerString.slice(slash + 1);
  const dot = name.indexOf('.');
  if (dot <= 0 || dot === name.length - 1) {
    throw new RuntimeError('Runtime.MalformedHandlerName', 'Bad handler');
  }
  const modulePath = handlerString.slice(0, slash + 1) + name.slice(0, dot);
  const exported = await loadModule(taskRoot, modulePath, esm);
  // A dotted export (`index.api.handler`) is a path into the module's exports.
  const handler = name.slice(dot + 1).split('.').reduce((value, key) => value?.[key], exported);
  if (typeof handler !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound',
      `${handlerString} is undefined or not exported`);
  }
  return handler;
}
