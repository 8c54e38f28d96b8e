import { createHash, hkdfSync, webcrypto } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { invalidOption } from '../errors.ts';

/** What a sealed-session cookie carries; the whole session lives client-side. */
export interface SealedPayload {
  /** Random session id (base64url), used for tombstones. */
  sid: string;
  /** The user's session data (JSON). */
  data: Record<string, unknown>;
  /** Milliseconds since the epoch; the absolute timeout counts from it. */
  createdAt: number;
  /** Milliseconds since the epoch of the last touch; the idle timeout counts from it. */
  seenAt: number;
  /** The user bound by `bindUser`, and that user's revocation epoch when it was bound (see UserEpochs). */
  userId?: string;
  epoch?: number;
}

export interface Unsealed {
  payload: SealedPayload;
  /** Sealed with a key other than the newest: the caller should re-seal it. */
  stale: boolean;
}

export interface Sealer {
  seal(payload: SealedPayload): Promise<string>;
  /**
   * `null` for anything that is not a valid seal of ours: tampered, truncated, wrong key, bad JSON, wrong
   * shape, over 4096 chars, non-ASCII... Never throws, whatever the input.
   */
  unseal(token: string): Promise<Unsealed | null>;
  /**
   * The exact length in characters of what `seal(payload)` returns, computed without encrypting, so that a
   * cookie over 4,096 bytes can be refused before it is sent.
   */
  sealedLength(payload: SealedPayload): number;
}

/** Fixed HKDF inputs: changing either changes every key and every `kid`, so they are part of the format. */
export const SEALER_HKDF_SALT = 'clones/session';
export const SEALER_HKDF_INFO = 'clones sealed session v1';

/** Browsers keep at most 4,096 bytes per cookie; no token of ours can be longer. */
const MAX_TOKEN_LENGTH = 4096;

// header . (empty encrypted key) . iv (12 bytes) . ciphertext . tag (16 bytes). The tag's last character
// carries 4 unused bits, which must be zero: [AQgw] are the only characters with the low 4 bits clear.
const TOKEN_SHAPE = /^([A-Za-z0-9_-]+)\.\.[A-Za-z0-9_-]{16}\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]{21}[AQgw]$/;

const IV_CHARS = 16;
const TAG_CHARS = 22;

const DECRYPT_OPTIONS = { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

interface SealKey {
  kid: string;
  /** The base64url protected header segment, which is also the GCM additional data. */
  headerSegment: string;
  header: { alg: 'dir'; enc: 'A256GCM'; kid: string };
  /** Imported once; WebCrypto import is async, so the promise is made at construction and awaited on use. */
  cryptoKey: Promise<webcrypto.CryptoKey>;
  newest: boolean;
}

/**
 * Seals and unseals session payloads as JWE compact tokens (`alg: dir`, `enc: A256GCM`), readable by any JOSE
 * library. Each secret gives a 32-byte key through HKDF-SHA256; the newest (first) secret seals, every secret
 * unseals, and the protected header's `kid` picks the key in one lookup. See docs/session-format.md.
 *
 * @example
 *   const sealer = createSealer([process.env.SESSION_SECRET!, process.env.SESSION_SECRET_OLD!]);
 *   const token = await sealer.seal({ sid, data: { cart: [1] }, createdAt: now, seenAt: now });
 *   const opened = await sealer.unseal(token); // { payload, stale: false } or null
 */
export function createSealer(secrets: readonly string[]): Sealer {
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw invalidOption('secret', 'at least one secret is needed to seal sessions');
  }
  // Keyed by the exact header segment we emit, so a header that differs in any byte (another alg, enc,
  // member order, extra member, missing kid) finds no key and is refused before any crypto.
  const byHeader = new Map<string, SealKey>();
  let current: SealKey | undefined;
  for (const [index, secret] of secrets.entries()) {
    if (typeof secret !== 'string') throw invalidOption('secret', 'every secret must be a string');
    const key = deriveSealKey(secret, index === 0);
    current ??= key;
    // The same secret listed twice, or (with odds of 2^-48) two kids colliding: the first, newer, one wins.
    if (!byHeader.has(key.headerSegment)) byHeader.set(key.headerSegment, key);
  }
  const sealer = current!;
  const fixedLength = sealer.headerSegment.length + 1 + 1 + IV_CHARS + 1 + 1 + TAG_CHARS;

  return {
    async seal(payload) {
      const plaintext = encoder.encode(serializePayload(payload));
      return new CompactEncrypt(plaintext).setProtectedHeader(sealer.header).encrypt(await sealer.cryptoKey);
    },

    async unseal(token) {
      try {
        if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
        const match = TOKEN_SHAPE.exec(token);
        if (match === null) return null;
        const key = byHeader.get(match[1]!);
        if (key === undefined || !isCanonicalBase64url(match[2]!)) return null;
        const { plaintext } = await compactDecrypt(token, await key.cryptoKey, DECRYPT_OPTIONS);
        const payload = parsePayload(decoder.decode(plaintext));
        return payload === null ? null : { payload, stale: !key.newest };
      } catch {
        return null;
      }
    },

    sealedLength(payload) {
      return fixedLength + base64urlLength(Buffer.byteLength(serializePayload(payload), 'utf8'));
    },
  };
}

function deriveSealKey(secret: string, newest: boolean): SealKey {
  const raw = new Uint8Array(hkdfSync('sha256', secret, SEALER_HKDF_SALT, SEALER_HKDF_INFO, 32));
  const kid = createHash('sha256').update(raw).digest('base64url').slice(0, 8);
  const header = { alg: 'dir', enc: 'A256GCM', kid } as const;
  const cryptoKey = webcrypto.subtle.importKey('raw', raw, { name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  // Awaited (and any failure surfaced) by seal/unseal; this only keeps an early rejection from being unhandled.
  cryptoKey.catch(() => {});
  const headerSegment = Buffer.from(JSON.stringify(header)).toString('base64url');
  return { kid, headerSegment, header, cryptoKey, newest };
}

// Short member names keep the cookie small; the layout is documented in docs/session-format.md.
function serializePayload(payload: SealedPayload): string {
  const { sid, data, createdAt, seenAt, userId, epoch } = payload;
  if (userId === undefined) return JSON.stringify({ i: sid, d: data, c: createdAt, t: seenAt });
  return JSON.stringify({ i: sid, d: data, c: createdAt, t: seenAt, u: userId, e: epoch ?? 0 });
}

function parsePayload(json: string): SealedPayload | null {
  const value: unknown = JSON.parse(json);
  if (!isPlainObject(value)) return null;
  const { i, d, c, t, u, e } = value;
  if (typeof i !== 'string' || i.length === 0 || !isPlainObject(d)) return null;
  if (typeof c !== 'number' || !Number.isFinite(c) || typeof t !== 'number' || !Number.isFinite(t))
    return null;
  if (u === undefined) return { sid: i, data: d, createdAt: c, seenAt: t };
  if (typeof u !== 'string' || typeof e !== 'number' || !Number.isSafeInteger(e)) return null;
  return { sid: i, data: d, createdAt: c, seenAt: t, userId: u, epoch: e };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Unpadded base64url length of `bytes` bytes. */
function base64urlLength(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Decoders ignore the unused low bits of the last character, so two spellings decode to the same bytes; we
 * accept only the one we emit (unused bits zero), which makes every single-character change fail.
 */
function isCanonicalBase64url(segment: string): boolean {
  const rest = segment.length % 4;
  if (rest === 0) return true;
  if (rest === 1) return false;
  const last = B64URL.indexOf(segment[segment.length - 1]!);
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}
