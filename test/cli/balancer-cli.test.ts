import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { removeTree } from '../../src/fleet/release.ts';
import { bin, cli, get } from '../fleet/fleet-harness.ts';
import { freePort } from '../harness/free-port.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-lb-cli-'));
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
  removeTree(dir);
});

async function upstream(name: string): Promise<number> {
  const server = createServer((_req, res) => res.end(name));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

test('clones balancer --port --target: one group from flags alone', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const port = await freePort();
  const child = spawn(process.execPath, [
    bin,
    'balancer',
    '--port',
    String(port),
    '--target',
    `http://127.0.0.1:${a}`,
    '--target',
    `http://127.0.0.1:${b}`,
    '--json',
  ]);
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (c) => resolve(String(c)));
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    assert.equal(JSON.parse(line).targets, 2);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await get(port, '/')).body);
    assert.deepEqual([...seen].sort(), ['a', 'b']);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('clones balancer --config: every error reported at once with its path', () => {
  const file = join(dir, 'bad.json');
  writeFileSync(
    file,
    JSON.stringify({ port: 'x', healthCheck: { intervl: 5, timeout: 'slow' }, stickyy: true, targets: [] }),
  );
  assertFourConfigErrors(file);
});

test('clones balancer --config FILE.yaml: the same checks, every error at once with its path', () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    ['port: x', 'healthCheck:', '  intervl: 5', '  timeout: slow', 'stickyy: true', 'targets: []', ''].join(
      '\n',
    ),
  );
  assertFourConfigErrors(file);
  const broken = join(dir, 'broken.yml');
  writeFileSync(broken, 'port: 1\nport: 2\n');
  const dup = cli(dir, ['balancer', '--config', broken, '--target', 'http://127.0.0.1:1']);
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /CLONES_USAGE/);
  assert.match(dup.stderr, /unique/i);
});

test('clones balancer --config FILE.yml: a valid YAML config runs the balancer', async () => {
  const a = await upstream('yaml-a');
  const port = await freePort();
  const file = join(dir, 'ok.yml');
  writeFileSync(
    file,
    [
      '# a YAML config: comments allowed',
      `port: ${port}`,
      'algorithm: round-robin',
      'healthCheck:',
      '  path: /',
      'targets:',
      `  - { id: a, url: "http://127.0.0.1:${a}" }`,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [bin, 'balancer', '--config', file, '--json']);
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (c) => resolve(String(c)));
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    assert.equal(JSON.parse(line).url, `http://127.0.0.1:${port}`);
    assert.equal((await get(port, '/')).body, 'yaml-a');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('clones balancer --config: durations as on the command line; a bad one named, with the range errors', () => {
  const file = join(dir, 'durations.yaml');
  writeFileSync(
    file,
    ['healthCheck:', '  interval: 2s', '  timeout: soon', 'sticky:', '  duration: 1ms', ''].join('\n'),
  );
  const r = cli(dir, ['balancer', '--config', file, '--target', 'http://127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /CLONES_INVALID_OPTION/);
  assert.match(r.stderr, /2 error\(s\)/);
  assert.match(r.stderr, /healthCheck\.timeout: must be a number \(milliseconds\) or a duration/);
  assert.match(r.stderr, /sticky\.duration: must be a number from 1000/);
  assert.doesNotMatch(r.stderr, /healthCheck\.interval/);
});

/** The bad config of both tests (JSON and YAML) is refused with its 4 errors at once, each with its path. */
function assertFourConfigErrors(file: string): void {
  const r = cli(dir, ['balancer', '--config', file, '--target', 'http://127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /CLONES_INVALID_OPTION/);
  assert.match(r.stderr, /4 error\(s\)/);
  for (const path of [
    'port: must be a number',
    'healthCheck.intervl: unknown option',
    'healthCheck.timeout: must be a number',
    'stickyy: unknown option',
  ]) {
    assert.ok(r.stderr.includes(path), `${path} in ${r.stderr}`);
  }
}
