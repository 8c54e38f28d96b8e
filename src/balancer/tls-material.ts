import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { ClonesError, tlsExpired, tlsUnusable } from '../errors.ts';
import type { ResolvedTls } from './tls-options.ts';

/** One certificate as the admin API and the logs show it. */
export interface CertificateInfo {
  file: string;
  names: string[];
  notAfter: string;
  fingerprint256: string;
}

/** Everything one load produced; a reload builds a new one and swaps it in whole. */
export interface TlsMaterial {
  /** Options of the default certificate (the one for clients that send no SNI, or an unknown name). */
  defaultOptions: SecureContextOptions;
  /** SNI name (lower case) -> context; wildcard certificates are keyed '*.example.com'. */
  byName: Map<string, SecureContext>;
  defaultContext: SecureContext;
  certificates: CertificateInfo[];
  /** Each certificate as one PEM (chain, then key), the default first: what HAProxy loads from a directory. */
  bundles: string[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const CERT_FILE = /\.(crt|pem|cert)$/i;

/**
 * Reads and checks every certificate and key the TLS options name: each file readable, PEM inside, the key
 * matching its certificate, the chain in order (each certificate issued by the next); an expired or
 * not-yet-valid certificate is logged (`CLONES_TLS_EXPIRED`) but served. Throws the first `CLONES_TLS_*`
 * error, so a bad reload changes nothing.
 *
 * @example
 *   const material = await loadTlsMaterial(options.tls, logger);
 *   server.setSecureContext(material.defaultOptions);
 */
export async function loadTlsMaterial(tls: ResolvedTls, logger: Logger): Promise<TlsMaterial> {
  const pairs: { cert: string; key: string; chain?: string }[] = [];
  if (tls.cert !== undefined && tls.key !== undefined)
    pairs.push({ cert: tls.cert, key: tls.key, chain: tls.chain });
  if (tls.dir !== undefined) pairs.push(...(await pairsIn(tls.dir)));
  if (pairs.length === 0) throw tlsUnusable('DIR_EMPTY', tls.dir ?? '', 'holds no certificate and key pair');

  const profile: SecureContextOptions = {
    minVersion: tls.minVersion,
    ciphers: tls.ciphers,
    ecdhCurve: tls.ecdhCurve,
    honorCipherOrder: tls.honorCipherOrder,
    dhparam: 'auto',
  };
  const byName = new Map<string, SecureContext>();
  const certificates: CertificateInfo[] = [];
  const bundles: string[] = [];
  let defaultOptions: SecureContextOptions | undefined;
  let defaultContext: SecureContext | undefined;
  for (const pair of pairs) {
    const certPem = await read(pair.cert);
    const chainPem = pair.chain === undefined ? '' : await read(pair.chain);
    const keyPem = await read(pair.key);
    const chain = parseChain(pair.cert, `${certPem.trim()}\n${chainPem.trim()}`);
    const leaf = chain[0]!;
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      throw tlsUnusable('PEM', pair.key, `not a usable private key (${(err as Error).message})`);
    }
    if (!leaf.checkPrivateKey(key))
      throw tlsUnusable(
        'KEY_MISMATCH',
        pair.key,
        `this key does not belong to the certificate in ${pair.cert}`,
      );
    const now = Date.now();
    if (Date.parse(leaf.validTo) < now || Date.parse(leaf.validFrom) > now)
      logger.warn({ code: 'CLONES_TLS_EXPIRED' }, tlsExpired(pair.cert, leaf.validTo).message);
    const options: SecureContextOptions = {
      ...profile,
      cert: chain.map((c) => c.toString()).join(''),
      key: keyPem,
    };
    let context: SecureContext;
    try {
      context = createSecureContext(options);
    } catch (err) {
      throw tlsUnusable('PEM', pair.cert, (err as Error).message);
    }
    const names = dnsNames(leaf);
    for (const name of names) if (!byName.has(name)) byName.set(name, context);
    certificates.push({
      file: pair.cert,
      names,
      notAfter: leaf.validTo,
      fingerprint256: leaf.fingerprint256,
    });
    bundles.push(`${String(options.cert).trim()}\n${keyPem.trim()}\n`);
    defaultOptions ??= options;
    defaultContext ??= context;
  }
  return { defaultOptions: defaultOptions!, defaultContext: defaultContext!, byName, certificates, bundles };
}

async function read(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw tlsUnusable('FILE', file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function parseChain(file: string, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw tlsUnusable('PEM', file, 'holds no PEM certificate');
  const chain = blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw err instanceof ClonesError
        ? err
        : tlsUnusable('PEM', file, 'holds a certificate that does not parse');
    }
  });
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!))
      throw tlsUnusable(
        'CHAIN',
        file,
        `certificate ${i + 1} (${chain[i]!.subject.replace(/\n/g, ', ')}) is not issued by the next one; put the leaf first, then each issuer`,
      );
  }
  return chain;
}

/** The certificate's DNS names (subjectAltName), or its CN when it has none. */
function dnsNames(cert: X509Certificate): string[] {
  const names = (cert.subjectAltName ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  if (names.length > 0) return names;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

/**
 * The pairs in a certificate directory: `NAME.crt|.pem|.cert` with `NAME.key` beside it, and sub-directories
 * laid out as certbot and Caddy write them (`fullchain.pem` + `privkey.pem`).
 */
async function pairsIn(dir: string): Promise<{ cert: string; key: string }[]> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (err) {
    throw tlsUnusable('FILE', dir, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const names = new Set(entries);
  const pairs: { cert: string; key: string }[] = [];
  for (const entry of entries) {
    const path = join(dir, entry);
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) {
      const inner = new Set(await readdir(path).catch(() => []));
      if (inner.has('fullchain.pem') && inner.has('privkey.pem'))
        pairs.push({ cert: join(path, 'fullchain.pem'), key: join(path, 'privkey.pem') });
      continue;
    }
    if (!CERT_FILE.test(entry)) continue;
    const key = `${entry.replace(CERT_FILE, '')}.key`;
    if (names.has(key)) pairs.push({ cert: path, key: join(dir, key) });
  }
  return pairs;
}
