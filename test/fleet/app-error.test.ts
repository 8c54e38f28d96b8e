import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appError, lastLogLines } from '../../src/fleet/app-error.ts';

// What Node 20 prints for an uncaught error thrown at the top of an ES module (blank lines included).
const THROWN = [
  'booting',
  'file:///srv/app/server.js:3',
  "throw new Error('DATABASE_URL is not set');",
  '      ^',
  '',
  'Error: DATABASE_URL is not set',
  '    at file:///srv/app/server.js:3:7',
  '    at ModuleJob.run (node:internal/modules/esm/module_job:325:25)',
  '    at async ModuleLoader.import (node:internal/modules/esm/loader:606:24)',
  '',
  'Node.js v20.20.2',
];

test('appError: the message and the first stack frame, not the tail of the stack', () => {
  assert.deepEqual(appError(THROWN), [
    'Error: DATABASE_URL is not set',
    '    at file:///srv/app/server.js:3:7',
  ]);
});

test('appError: of several runs in one log, the last; a code in brackets and a multi-line message are kept', () => {
  const second = [
    'node:internal/modules/esm/resolve:873',
    '        ^',
    "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'pg' imported from /srv/app/",
    'Did you mean to install it?',
    '    at packageResolve (node:internal/modules/esm/resolve:873:9)',
    '    at moduleResolve (node:internal/modules/esm/resolve:946:18) {',
    "  code: 'ERR_MODULE_NOT_FOUND'",
    '}',
    'Node.js v20.20.2',
  ];
  assert.deepEqual(appError([...THROWN, ...second]), [
    "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'pg' imported from /srv/app/",
    'Did you mean to install it?',
    '    at packageResolve (node:internal/modules/esm/resolve:873:9)',
  ]);
});

test('appError: nothing without a stack trace; lastLogLines then drops blank and Node version lines', () => {
  const lines = ['listening on 3000', 'giving up: no config', '', 'Node.js v20.20.2'];
  assert.deepEqual(appError(lines), []);
  assert.deepEqual(lastLogLines(lines), ['listening on 3000', 'giving up: no config']);
});
