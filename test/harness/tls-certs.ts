import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinary } from './ensure-binary.ts';

export interface TestPki {
  dir: string;
  /** The root's PEM file: what clients trust (curl --cacert, `ca` of node's clients). */
  caFile: string;
  ca: string;
  /** The intermediate's PEM file (the chain a server must send after its leaf). */
  intermediateFile: string;
  /** Issues a leaf for these DNS names (and 127.0.0.1) signed by the intermediate; see `Leaf`. */
  leaf(name: string, dnsNames: string[], options?: { days?: number }): Leaf;
}

export interface Leaf {
  /** The leaf alone. */
  certFile: string;
  /** Leaf then intermediate, as servers are given it. */
  fullchainFile: string;
  keyFile: string;
  /** SHA-256 fingerprint as node's `getPeerCertificate().fingerprint256` spells it. */
  fingerprint256: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * A throw-away PKI made with the openssl command: a root CA, an intermediate CA and leaves signed by the
 * intermediate (P-256 keys: quick to make and to handshake). `days: -1` makes an expired leaf.
 *
 * @example
 *   const pki = makeTestPki();
 *   const leaf = pki.leaf('site', ['localhost']);
 *   createBalancer({ tls: { cert: leaf.fullchainFile, key: leaf.keyFile } });
 *   // curl --cacert pki.caFile https://localhost:PORT/
 */
export function makeTestPki(dir = mkdtempSync(join(tmpdir(), 'clones-pki-'))): TestPki {
  const openssl = ensureBinary('openssl');
  mkdirSync(dir, { recursive: true });
  const run = (...args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  const ext = (name: string, lines: string[]) => {
    writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
    return name;
  };
  run(
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '30',
    '-subj',
    '/CN=clones test root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('req', ...EC, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=clones test intermediate');
  run(
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '30',
    '-out',
    'int.crt',
    '-extfile',
    ext('int.ext', [
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ]),
  );
  let serial = 0;
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    intermediateFile: join(dir, 'int.crt'),
    leaf(name, dnsNames, options = {}) {
      const base = `${name}-${++serial}`;
      run(
        'req',
        ...EC,
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
        '-subj',
        `/CN=${dnsNames[0] ?? name}`,
      );
      run(
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        'int.crt',
        '-CAkey',
        'int.key',
        '-CAcreateserial',
        '-days',
        String(options.days ?? 30),
        '-out',
        `${base}.crt`,
        '-extfile',
        ext(`${base}.ext`, [
          'basicConstraints=CA:FALSE',
          'keyUsage=critical,digitalSignature',
          'extendedKeyUsage=serverAuth',
          `subjectAltName=${[...dnsNames.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',')}`,
        ]),
      );
      const cert = readFileSync(join(dir, `${base}.crt`), 'utf8');
      writeFileSync(join(dir, `${base}-fullchain.pem`), cert + readFileSync(join(dir, 'int.crt'), 'utf8'));
      const fingerprint = run('x509', '-in', `${base}.crt`, '-noout', '-fingerprint', '-sha256').toString();
      return {
        certFile: join(dir, `${base}.crt`),
        fullchainFile: join(dir, `${base}-fullchain.pem`),
        keyFile: join(dir, `${base}.key`),
        fingerprint256: fingerprint.trim().split('=')[1]!,
      };
    },
  };
}
