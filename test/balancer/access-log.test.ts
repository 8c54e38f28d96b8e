import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lineTime } from '../../src/fleet/log-reader.ts';
import { fetchText, startBalancer, startUpstream } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-access-'));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const engine of ['builtin', 'haproxy'] as const)
  test(`accessLog on the ${engine} engine: one Combined Log Format line per proxied request, with the clone and the time; off by default`, async () => {
    const up = await startUpstream('c1');
    const file = join(dir, engine, 'access.log');
    const lb = await startBalancer({ engine, targets: [{ id: 'c1', url: up.url }], accessLog: file });
    const quiet = await startBalancer({ engine, targets: [{ id: 'c1', url: up.url }] });
    try {
      const a = await fetchText(`${lb.url}/cart?x=1`, {
        headers: { 'user-agent': 'probe/1.0 (x; y)', referer: 'https://shop.example/' },
      });
      assert.equal(a.status, 200);
      await fetchText(`${lb.url}/missing`, { method: 'POST', body: 'x=1' });
      assert.equal((await fetchText(`${quiet.url}/quiet`)).status, 200);
    } finally {
      await lb.lb.close();
      await quiet.lb.close();
      await up.close();
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(
      lines[0]!,
      /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/cart\?x=1 HTTP\/1\.1" 200 \d+ "https:\/\/shop\.example\/" "probe\/1\.0 \(x; y\)" c1 \d+(\.\d)?$/,
    );
    assert.match(lines[1]!, /"POST \/missing HTTP\/1\.1" \d{3} (\d+|-) "-" "-" c1 /);
    // `clones logs --since` reads the time of such a line.
    assert.ok(Math.abs(lineTime(lines[0]!)! - Date.now()) < 60_000);
    assert.equal(statSync(file).mode & 0o077, 0, 'the access log is private');
  });

test('accessLog must be a file path', async () => {
  await assert.rejects(
    async () => startBalancer({ accessLog: '' }),
    (err: Error & { code?: string }) => err.code === 'CLONES_INVALID_OPTION' && /accessLog/.test(err.message),
  );
});
