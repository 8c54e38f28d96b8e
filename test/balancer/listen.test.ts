import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { createBalancer } from '../../src/balancer/index.ts';
import { silent } from './helpers.ts';

test('a port already in use is a coded error that suggests --port, not CLONES_INTERNAL', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  const lb = createBalancer({ logger: silent, healthCheck: { enabled: false } });
  try {
    await assert.rejects(lb.listen(port, '127.0.0.1'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_PORT_UNAVAILABLE');
      assert.match(err.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*--port`));
      return true;
    });
  } finally {
    await lb.close();
    taken.close();
  }
});
