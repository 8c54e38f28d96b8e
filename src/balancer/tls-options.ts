import { OptionIssues } from '../option-issues.ts';

const SECOND = 1000;

/**
 * The Mozilla "intermediate" profile (ssl-config.mozilla.org, guidelines 5.7): TLS 1.2 ciphers with forward
 * secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults, which that profile keeps.
 */
const INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * Defaults of the HTTPS listener, HTTP/2, the HTTP-to-HTTPS redirect and HSTS; part of `balancerDefaults`.
 * TLS is off until `tls.cert` and `tls.key` (or `tls.dir`) are set.
 *
 * @example
 *   createBalancer({ tls: { cert: 'fullchain.pem', key: 'privkey.pem' }, hsts: { enabled: true } });
 */
export const listenerDefaults = Object.freeze({
  tls: Object.freeze({
    /** PEM file: the leaf certificate, optionally followed by its chain. */
    cert: undefined as string | undefined,
    key: undefined as string | undefined,
    /** PEM file of intermediates appended to `cert` when the cert file holds the leaf alone. */
    chain: undefined as string | undefined,
    /** A directory of certificate + key pairs, picked by SNI from each certificate's DNS names. */
    dir: undefined as string | undefined,
    minVersion: 'TLSv1.2' as 'TLSv1.2' | 'TLSv1.3',
    ciphers: INTERMEDIATE_CIPHERS,
    ecdhCurve: 'X25519:prime256v1:secp384r1',
    /** Mozilla intermediate: let the client choose (it knows whether it has AES hardware). */
    honorCipherOrder: false,
    /** Reload when the files change (fs.watch on their directories); SIGHUP and the admin API always can. */
    watch: true,
    /** Quiet time after the last file event before a reload (a renewal writes several files). */
    reloadDebounce: 500,
    /** Session ticket keys are replaced this often (ms), so a stolen key opens at most this much traffic. */
    ticketKeyRotation: 3600 * SECOND,
  }),
  http2: Object.freeze({
    /** Offer h2 through ALPN; HTTP/1.1 stays available to every client. */
    enabled: true,
    maxConcurrentStreams: 100,
    /** Per-stream flow-control window (bytes) the balancer grants to a client's uploads (RFC 9113 default). */
    initialWindowSize: 65_535,
    /** MB of buffered frames a session may hold before it is closed with ENHANCE_YOUR_CALM. */
    maxSessionMemory: 10,
    /** Streams a client may reset (or that end before their response) within `resetWindow` (CVE-2023-44487). */
    maxResets: 100,
    resetWindow: 10 * SECOND,
  }),
  redirect: Object.freeze({
    /** A plain-HTTP listener that sends every request to HTTPS; off while unset. */
    port: undefined as number | undefined,
    /** Its address; default the HTTPS listener's. */
    host: undefined as string | undefined,
    /** 308 keeps the method and body (301 turns a POST into a GET in old clients). */
    status: 308,
    /** Proxy /.well-known/acme-challenge/ to the clones instead of redirecting (HTTP-01 validation). */
    acme: false,
  }),
  hsts: Object.freeze({
    /** Strict-Transport-Security on HTTPS responses; off by default (it is hard to take back). */
    enabled: false,
    maxAge: 31_536_000,
    includeSubDomains: false,
    preload: false,
  }),
});

type Defaults = typeof listenerDefaults;

/** The TLS settings once validated; present only when TLS is on. */
export interface ResolvedTls {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly chain: string | undefined;
  readonly dir: string | undefined;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
  readonly ecdhCurve: string;
  readonly honorCipherOrder: boolean;
  readonly watch: boolean;
  readonly reloadDebounce: number;
  readonly ticketKeyRotation: number;
}

export interface ListenerOptions {
  readonly tls: ResolvedTls | undefined;
  readonly http2: Readonly<{
    [K in keyof Defaults['http2']]: Defaults['http2'][K] extends boolean ? boolean : number;
  }>;
  readonly redirect: Readonly<{
    port: number | undefined;
    host: string | undefined;
    status: number;
    acme: boolean;
  }>;
  /** The Strict-Transport-Security value, or undefined when HSTS is off. */
  readonly hsts: string | undefined;
}

interface Input {
  tls?: Partial<Record<keyof Defaults['tls'], unknown>>;
  http2?: Partial<Record<keyof Defaults['http2'], unknown>>;
  redirect?: Partial<Record<keyof Defaults['redirect'], unknown>>;
  hsts?: Partial<Record<keyof Defaults['hsts'], unknown>>;
}

/**
 * Validates the listener options once (files are read later, by the TLS store) and freezes them. Problems go
 * to `issues` when given (the caller reports them with its own); else they are thrown here, all at once.
 *
 * @example
 *   const { tls, hsts } = resolveListenerOptions({ tls: { cert: 'a.pem', key: 'a.key' }, hsts: { enabled: true } });
 */
export function resolveListenerOptions(input: Input, issues?: OptionIssues): ListenerOptions {
  const v = issues ?? new OptionIssues();
  const d = listenerDefaults;
  const tls = { ...d.tls, ...input.tls } as Record<string, unknown>;
  const http2 = { ...d.http2, ...input.http2 } as Record<string, unknown>;
  const redirect = { ...d.redirect, ...input.redirect } as Record<string, unknown>;
  const hsts = { ...d.hsts, ...input.hsts } as Record<string, unknown>;

  for (const name of ['cert', 'key', 'chain', 'dir'])
    if (tls[name] !== undefined && (typeof tls[name] !== 'string' || tls[name] === ''))
      v.add(`tls.${name}`, 'must be a file path');
  const on = tls.cert !== undefined || tls.key !== undefined || tls.dir !== undefined;
  if (on && (tls.cert === undefined) !== (tls.key === undefined))
    v.add(tls.cert === undefined ? 'tls.cert' : 'tls.key', 'tls.cert and tls.key go together');
  if (tls.chain !== undefined && tls.cert === undefined)
    v.add('tls.chain', 'needs tls.cert (the chain completes that certificate)');
  if (tls.minVersion !== 'TLSv1.2' && tls.minVersion !== 'TLSv1.3')
    v.add('tls.minVersion', `must be 'TLSv1.2' or 'TLSv1.3'; got ${String(tls.minVersion)}`);
  for (const name of ['ciphers', 'ecdhCurve'])
    if (typeof tls[name] !== 'string' || tls[name] === '')
      v.add(`tls.${name}`, 'must be an OpenSSL list such as the default');
  for (const name of ['honorCipherOrder', 'watch']) v.bool(`tls.${name}`, tls[name]);
  v.whole('tls.reloadDebounce', tls.reloadDebounce, 0, 60_000);
  v.whole('tls.ticketKeyRotation', tls.ticketKeyRotation, 60 * SECOND, 7 * 86_400 * SECOND);

  v.bool('http2.enabled', http2.enabled);
  v.whole('http2.maxConcurrentStreams', http2.maxConcurrentStreams, 1, 10_000);
  v.whole('http2.initialWindowSize', http2.initialWindowSize, 65_535, 2 ** 31 - 1);
  v.whole('http2.maxSessionMemory', http2.maxSessionMemory, 1, 1024);
  v.whole('http2.maxResets', http2.maxResets, 1, 1_000_000);
  v.whole('http2.resetWindow', http2.resetWindow, 100, 3_600_000);

  if (redirect.port !== undefined) {
    v.whole('redirect.port', redirect.port, 0, 65_535);
    if (!on) v.add('redirect.port', 'redirects to HTTPS, so it needs tls.cert and tls.key');
  }
  if (redirect.host !== undefined && typeof redirect.host !== 'string')
    v.add('redirect.host', 'must be an IP address');
  if (![301, 302, 307, 308].includes(redirect.status as number))
    v.add('redirect.status', `must be 301, 302, 307 or 308; got ${String(redirect.status)}`);
  v.bool('redirect.acme', redirect.acme);

  for (const name of ['enabled', 'includeSubDomains', 'preload']) v.bool(`hsts.${name}`, hsts[name]);
  v.whole('hsts.maxAge', hsts.maxAge, 0, 2 * 31_536_000);
  // hstspreload.org refuses a preload request without a year's max-age and includeSubDomains.
  if (hsts.enabled && hsts.preload && (!hsts.includeSubDomains || (hsts.maxAge as number) < 31_536_000))
    v.add('hsts.preload', 'needs hsts.includeSubDomains and an hsts.maxAge of at least 31536000');

  if (issues === undefined) v.throwIfAny();
  return Object.freeze({
    tls: on ? (Object.freeze(tls) as unknown as ResolvedTls) : undefined,
    http2: Object.freeze(http2) as unknown as ListenerOptions['http2'],
    redirect: Object.freeze(redirect) as unknown as ListenerOptions['redirect'],
    hsts:
      hsts.enabled && on
        ? `max-age=${hsts.maxAge}${hsts.includeSubDomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`
        : undefined,
  });
}
