// The HTTPS behaviours of the balancer contract, once, for every engine (docs/balancer.md, "Engines").
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BalancerOptions, createBalancer } from '../../src/balancer/index.ts';
import type { ClonesError } from '../../src/errors.ts';
import { curl, peerCertificate, sClient } from '../balancer/fixtures/tls-client.ts';
import { type Running, silent, startBalancer, startUpstream, type Upstream } from '../balancer/helpers.ts';
import { memoryLogger } from '../harness/memory-logger.ts';
import { makeTestPki, type TestPki } from '../harness/tls-certs.ts';
import type { EngineUnderTest } from './balancer-conformance.ts';

/**
 * TLS conformance: the HTTPS listener, SNI, certificate reloads and the HTTP-to-HTTPS redirect, on one engine.
 *
 * @example
 *   tlsConformance({ engine: 'haproxy' });
 */
export function tlsConformance(under: EngineUnderTest): void {
  describe(`TLS conformance: ${under.engine}`, () => {
    const TOKEN = 'tls-test-token-0123456789';

    let pki: TestPki;
    let up: Upstream;
    before(async () => {
      pki = makeTestPki();
      up = await startUpstream('c1');
    });
    after(() => up.close());

    function tlsBalancer(extra: BalancerOptions = {}): Promise<Running> {
      const leaf = pki.leaf('site', ['localhost']);
      return startBalancer({
        engine: under.engine,
        healthCheck: { enabled: false },
        targets: [{ id: 'c1', url: up.url }],
        tls: { cert: leaf.fullchainFile, key: leaf.keyFile },
        ...extra,
      });
    }

    /** A GET over HTTPS with node's client; `agent` decides keep-alive or a new connection. */
    function get(
      port: number,
      agent: Agent | false,
      path = '/',
    ): Promise<{ status: number; fingerprint: string }> {
      return new Promise((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path, servername: 'localhost', ca: pki.ca, agent },
          (res) => {
            const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
              .fingerprint256;
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    }

    describe('HTTPS listener', () => {
      test('curl --http2 and --http1.1 negotiate their protocol and reach the clone with X-Forwarded-Proto https', async () => {
        const lb = await tlsBalancer();
        try {
          for (const [flag, version, via] of [
            ['--http2', '2', '2.0 clones'],
            ['--http1.1', '1.1', '1.1 clones'],
          ] as const) {
            const a = await curl([flag, '--cacert', pki.caFile, `https://localhost:${lb.port}/hello?x=1`]);
            assert.equal(a.status, 200, flag);
            assert.equal(a.version, version, flag);
            const seen = JSON.parse(a.body);
            assert.equal(seen.id, 'c1');
            assert.equal(seen.url, '/hello?x=1');
            assert.equal(seen.headers['x-forwarded-proto'], 'https');
            assert.equal(seen.headers.host, `localhost:${lb.port}`);
            assert.equal(seen.headers.via, via);
            assert.deepEqual(a.headers['x-clones-clone'], ['c1']);
            // No connection-specific field in an HTTP/2 response (curl would refuse it), none invented in 1.1.
            if (version === '2') assert.equal(a.headers.connection, undefined);
          }
        } finally {
          await lb.lb.close();
        }
      });

      test('the chain is sent (leaf + intermediate): a client that trusts only the root verifies it', async () => {
        const lb = await tlsBalancer();
        try {
          const peer = await peerCertificate(lb.port, 'localhost', pki.ca);
          assert.equal(peer.chainLength, 3); // leaf, intermediate, and the root the client holds
          const stdout = await sClient(
            lb.port,
            '-servername',
            'localhost',
            '-showcerts',
            '-CAfile',
            pki.caFile,
          );
          assert.equal((stdout.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length, 2);
          assert.match(stdout, /Verify return code: 0 \(ok\)/);
        } finally {
          await lb.lb.close();
        }
      });

      test('TLS 1.1 is refused, TLS 1.2 and 1.3 are accepted (openssl s_client)', async () => {
        const lb = await tlsBalancer();
        const s = (...flags: string[]) => sClient(lb.port, '-servername', 'localhost', ...flags);
        try {
          // SECLEVEL=0 lets this client offer TLS 1.1 at all, so the refusal seen is the balancer's.
          const old = await s('-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0');
          assert.match(old, /alert protocol version/);
          assert.match(await s('-tls1_2'), /New, TLSv1\.2, Cipher is ECDHE/);
          assert.match(await s('-tls1_3'), /New, TLSv1\.3, Cipher is TLS_/);
          // Mozilla intermediate: no CBC suites in TLS 1.2.
          assert.match(
            await s('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256'),
            /alert handshake failure|no shared cipher/,
          );
        } finally {
          await lb.lb.close();
        }
      });

      test('a directory of certificates is picked by SNI, wildcards included; unknown names get the default', async () => {
        const dir = join(pki.dir, 'sni');
        mkdirSync(join(dir, 'b.test'), { recursive: true });
        const a = pki.leaf('a', ['a.test']);
        const b = pki.leaf('b', ['b.test']);
        const wild = pki.leaf('wild', ['*.wild.test']);
        copyFileSync(a.fullchainFile, join(dir, 'a.crt'));
        copyFileSync(a.keyFile, join(dir, 'a.key'));
        copyFileSync(b.fullchainFile, join(dir, 'b.test', 'fullchain.pem'));
        copyFileSync(b.keyFile, join(dir, 'b.test', 'privkey.pem'));
        copyFileSync(wild.fullchainFile, join(dir, 'wild.pem'));
        copyFileSync(wild.keyFile, join(dir, 'wild.key'));
        const lb = await startBalancer({
          engine: under.engine,
          healthCheck: { enabled: false },
          targets: [{ id: 'c1', url: up.url }],
          tls: { dir },
        });
        try {
          assert.equal((await peerCertificate(lb.port, 'a.test', pki.ca)).fingerprint256, a.fingerprint256);
          assert.equal((await peerCertificate(lb.port, 'b.test', pki.ca)).fingerprint256, b.fingerprint256);
          assert.equal(
            (await peerCertificate(lb.port, 'x.wild.test', pki.ca)).fingerprint256,
            wild.fingerprint256,
          );
          // Sorted by file name, a.crt is the default.
          assert.equal(
            (await peerCertificate(lb.port, 'other.test', pki.ca)).fingerprint256,
            a.fingerprint256,
          );
          const viaCurl = await curl([
            '--http2',
            '--cacert',
            pki.caFile,
            '--resolve',
            `b.test:${lb.port}:127.0.0.1`,
            `https://b.test:${lb.port}/`,
          ]);
          assert.equal(viaCurl.status, 200);
        } finally {
          await lb.lb.close();
        }
      });

      test('unusable files are refused with a coded error at listen', async () => {
        const a = pki.leaf('a', ['localhost']);
        const b = pki.leaf('b', ['localhost']);
        const garbage = join(pki.dir, 'garbage.pem');
        writeFileSync(garbage, 'not a certificate\n');
        const reversed = join(pki.dir, 'reversed.pem');
        writeFileSync(
          reversed,
          readFileSync(pki.intermediateFile, 'utf8') + readFileSync(a.certFile, 'utf8'),
        );
        const emptyDir = join(pki.dir, 'empty');
        mkdirSync(emptyDir, { recursive: true });
        const cases: [BalancerOptions['tls'], string][] = [
          [{ cert: join(pki.dir, 'missing.pem'), key: a.keyFile }, 'CLONES_TLS_FILE'],
          [{ cert: garbage, key: a.keyFile }, 'CLONES_TLS_PEM'],
          [{ cert: a.certFile, key: garbage }, 'CLONES_TLS_PEM'],
          [{ cert: a.fullchainFile, key: b.keyFile }, 'CLONES_TLS_KEY_MISMATCH'],
          [{ cert: reversed, key: a.keyFile }, 'CLONES_TLS_CHAIN'],
          [{ dir: emptyDir }, 'CLONES_TLS_DIR_EMPTY'],
        ];
        for (const [tls, code] of cases) {
          const lb = createBalancer({
            engine: under.engine,
            logger: silent,
            healthCheck: { enabled: false },
            tls,
          });
          await assert.rejects(lb.listen(0), (err: ClonesError) => err.code === code, code);
          await lb.close();
        }
        assert.throws(
          () => createBalancer({ engine: under.engine, tls: { cert: a.certFile } }),
          /CLONES|tls.key/,
        );
        assert.throws(
          () =>
            createBalancer({
              engine: under.engine,
              tls: { cert: a.certFile, key: a.keyFile, minVersion: 'TLSv1.1' as 'TLSv1.2' },
            }),
          (err: ClonesError) => err.code === 'CLONES_INVALID_OPTION' && /tls\.minVersion/.test(err.message),
        );
        assert.throws(
          () => createBalancer({ engine: under.engine, redirect: { port: 0 } }),
          (err: ClonesError) => err.code === 'CLONES_INVALID_OPTION' && /redirect\.port/.test(err.message),
        );
      });

      test('an expired certificate is served but logged as CLONES_TLS_EXPIRED, and the chain comes from tls.chain', async () => {
        const expired = pki.leaf('old', ['localhost'], { days: -1 });
        const { logger, records } = memoryLogger('warn');
        const lb = createBalancer({
          engine: under.engine,
          logger,
          healthCheck: { enabled: false },
          tls: { cert: expired.certFile, chain: pki.intermediateFile, key: expired.keyFile },
        });
        try {
          await lb.listen(0);
          assert.ok(
            records.some((r) => JSON.stringify(r).includes('CLONES_TLS_EXPIRED')),
            JSON.stringify(records),
          );
        } finally {
          await lb.close();
        }
      });
    });

    describe('certificate reload', () => {
      test('admin POST /tls/reload: bad files keep the old certificate (coded 422), good ones serve new connections', async () => {
        const first = pki.leaf('r1', ['localhost']);
        const certFile = join(pki.dir, 'live.pem');
        const keyFile = join(pki.dir, 'live.key');
        copyFileSync(first.fullchainFile, certFile);
        copyFileSync(first.keyFile, keyFile);
        const lb = await startBalancer({
          engine: under.engine,
          healthCheck: { enabled: false },
          targets: [{ id: 'c1', url: up.url }],
          tls: { cert: certFile, key: keyFile, watch: false },
          admin: { port: 0, token: TOKEN },
        });
        const admin = lb.lb.adminAddress()!.port;
        const reload = () =>
          new Promise<{ status: number; body: { error?: { code: string }; certificates?: unknown[] } }>(
            (resolve, reject) => {
              const req = httpRequest(
                {
                  host: '127.0.0.1',
                  port: admin,
                  method: 'POST',
                  path: '/tls/reload',
                  headers: { authorization: `Bearer ${TOKEN}` },
                },
                (res) => {
                  let text = '';
                  res.on('data', (c) => (text += c));
                  res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
                },
              );
              req.on('error', reject);
              req.end();
            },
          );
        try {
          const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
          assert.equal((await get(lb.port, keepAlive)).fingerprint, first.fingerprint256);
          // A key from another certificate: refused, the old certificate stays.
          const other = pki.leaf('r2', ['localhost']);
          copyFileSync(other.fullchainFile, certFile);
          const bad = await reload();
          assert.equal(bad.status, 422);
          assert.equal(bad.body.error?.code, 'CLONES_TLS_KEY_MISMATCH');
          assert.equal((await get(lb.port, false)).fingerprint, first.fingerprint256);
          copyFileSync(other.keyFile, keyFile);
          const good = await reload();
          assert.equal(good.status, 200, JSON.stringify(good.body));
          assert.equal((await get(lb.port, false)).fingerprint, other.fingerprint256);
          // The keep-alive connection opened before the reload still works, with the certificate it had.
          assert.deepEqual(await get(lb.port, keepAlive), { status: 200, fingerprint: first.fingerprint256 });
          keepAlive.destroy();
        } finally {
          await lb.lb.close();
        }
      });

      test('a reload under load (2,000 requests, keep-alive and new connections) fails none; the file watch picks up renewals', async () => {
        const first = pki.leaf('w1', ['localhost']);
        const dir = join(pki.dir, 'watched');
        mkdirSync(dir, { recursive: true });
        const certFile = join(dir, 'cert.pem');
        const keyFile = join(dir, 'key.pem');
        copyFileSync(first.fullchainFile, certFile);
        copyFileSync(first.keyFile, keyFile);
        const lb = await startBalancer({
          engine: under.engine,
          healthCheck: { enabled: false },
          targets: [{ id: 'c1', url: up.url }],
          tls: { cert: certFile, key: keyFile, reloadDebounce: 100 },
        });
        const leaves = [
          pki.leaf('w2', ['localhost']),
          pki.leaf('w3', ['localhost']),
          pki.leaf('w4', ['localhost']),
        ];
        try {
          const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 });
          let failed = 0;
          let done = 0;
          const seen = new Set<string>();
          const worker = async (agent: Agent | false, count: number) => {
            for (let i = 0; i < count; i++) {
              try {
                const r = await get(lb.port, agent);
                if (r.status !== 200) failed++;
                seen.add(r.fingerprint);
              } catch {
                failed++;
              }
              done++;
            }
          };
          const renew = async () => {
            for (const leaf of leaves) {
              while (done < 400 * (leaves.indexOf(leaf) + 1)) await sleep(5);
              // Renewal as certbot does it: write new files beside, then rename over the old ones.
              copyFileSync(leaf.fullchainFile, `${certFile}.new`);
              copyFileSync(leaf.keyFile, `${keyFile}.new`);
              renameSync(`${keyFile}.new`, keyFile);
              renameSync(`${certFile}.new`, certFile);
            }
          };
          await Promise.all([
            ...Array.from({ length: 8 }, () => worker(keepAlive, 150)),
            ...Array.from({ length: 4 }, () => worker(false, 200)),
            renew(),
          ]);
          keepAlive.destroy();
          assert.equal(done, 2000);
          assert.equal(failed, 0);
          // The last renewal is served to new connections once its debounce has passed.
          const last = leaves.at(-1)!.fingerprint256;
          const deadline = Date.now() + 5000;
          let now = '';
          while (Date.now() < deadline) {
            now = (await get(lb.port, false)).fingerprint;
            if (now === last) break;
            await sleep(50);
          }
          assert.equal(now, last);
          assert.ok(seen.size >= 2, 'requests were served by more than one certificate during the run');
        } finally {
          await lb.lb.close();
        }
      });
    });

    describe('HTTP to HTTPS', () => {
      test('the redirect listener sends the same host and path to HTTPS; ACME challenges can go to the clones', async () => {
        const lb = await tlsBalancer({ redirect: { port: 0, acme: true }, hsts: { enabled: true } });
        const port = lb.lb.redirectAddress()!.port;
        try {
          const a = await curl(['-H', 'Host: localhost', `http://127.0.0.1:${port}/shop/cart?id=7`]);
          assert.equal(a.status, 308);
          assert.deepEqual(a.headers.location, [`https://localhost:${lb.port}/shop/cart?id=7`]);
          assert.equal(a.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP');
          const withPort = await curl(['-H', 'Host: localhost:80', `http://127.0.0.1:${port}/`]);
          assert.deepEqual(withPort.headers.location, [`https://localhost:${lb.port}/`]);
          const bad = await curl(['-H', 'Host: evil.example/../x@y', `http://127.0.0.1:${port}/`]);
          assert.equal(bad.status, 400);
          assert.match(bad.body, /CLONES_BALANCER_BAD_REQUEST/);
          const acme = await curl([
            '-H',
            'Host: localhost',
            `http://127.0.0.1:${port}/.well-known/acme-challenge/tok`,
          ]);
          assert.equal(acme.status, 200);
          const seen = JSON.parse(acme.body);
          assert.equal(seen.url, '/.well-known/acme-challenge/tok');
          assert.equal(seen.headers['x-forwarded-proto'], 'http');
        } finally {
          await lb.lb.close();
        }
      });

      test('HSTS is on HTTPS responses only when enabled; sticky and group cookies are Secure over TLS, h1 and h2', async () => {
        const on = await tlsBalancer({
          hsts: { enabled: true, maxAge: 63_072_000, includeSubDomains: true, preload: true },
          sticky: { enabled: true },
        });
        const off = await tlsBalancer();
        const plain = await startBalancer({
          engine: under.engine,
          healthCheck: { enabled: false },
          targets: [{ id: 'c1', url: up.url }],
          sticky: { enabled: true },
        });
        try {
          for (const flag of ['--http2', '--http1.1']) {
            const a = await curl([flag, '--cacert', pki.caFile, `https://localhost:${on.port}/`]);
            assert.deepEqual(a.headers['strict-transport-security'], [
              'max-age=63072000; includeSubDomains; preload',
            ]);
            const sticky = a.headers['set-cookie']?.find((c) => c.startsWith('clones_sticky='));
            assert.ok(sticky, flag);
            assert.match(sticky, /; Secure/i, flag);
            const b = await curl([flag, '--cacert', pki.caFile, `https://localhost:${off.port}/`]);
            assert.equal(b.headers['strict-transport-security'], undefined);
          }
          const p = await curl([`http://127.0.0.1:${plain.port}/`]);
          const cookie = p.headers['set-cookie']?.find((c) => c.startsWith('clones_sticky='));
          assert.ok(cookie);
          assert.doesNotMatch(cookie, /Secure/i);
        } finally {
          await Promise.all([on.lb.close(), off.lb.close(), plain.lb.close()]);
        }
      });

      test('reloadTls without TLS is CLONES_TLS_OFF', async () => {
        const lb = createBalancer({ engine: under.engine, logger: silent, healthCheck: { enabled: false } });
        await assert.rejects(lb.reloadTls(), (err: ClonesError) => err.code === 'CLONES_TLS_OFF');
      });
    });
  });
}
