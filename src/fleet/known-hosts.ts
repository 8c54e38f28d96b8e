import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** What a known_hosts file says about the key a host presented. */
export type HostKeyVerdict =
  | { status: 'known' }
  /** No entry names this host. */
  | { status: 'unknown' }
  /** An entry names this host with another key (or the key is `@revoked`): `line` is 1-based. */
  | { status: 'changed'; line: number };

/**
 * The name OpenSSH files a host under: the bare address on port 22, else `[address]:port`.
 *
 * @example
 *   knownHostsName('10.0.0.5', 2222); // '[10.0.0.5]:2222'
 */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/**
 * The key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64 of the key blob's sha256.
 *
 * @example
 *   hostKeyFingerprint(key); // 'SHA256:n5G2...'
 */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The key type a key blob starts with (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`).
 *
 * @example
 *   keyType(key); // 'ssh-ed25519'
 */
export function keyType(key: Buffer): string {
  if (key.length < 4) return '';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('latin1');
}

interface Entry {
  line: number;
  marker: '' | '@revoked' | '@cert-authority';
  hosts: string;
  type: string;
  key: Buffer;
}

/** Parses an OpenSSH known_hosts file; lines that are not entries (comments, garbage) are skipped. */
function entries(file: string): Entry[] {
  if (!existsSync(file)) return [];
  const out: Entry[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const fields = raw.trim().split(/\s+/);
      if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) return;
      let marker: Entry['marker'] = '';
      if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
        marker = fields.shift() as Entry['marker'];
      const [hosts, type, b64] = fields;
      if (!hosts || !type || !b64) return;
      out.push({ line: i + 1, marker, hosts, type, key: Buffer.from(b64, 'base64') });
    });
  return out;
}

/** Whether an entry's host field (`a,b,!c`, wildcards, or a hashed `|1|salt|hash`) names `name`. */
function hostMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return mac.equals(Buffer.from(hash, 'base64'));
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    const re = new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      'i',
    );
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * Checks the key a host presented against a known_hosts file (plain, `[host]:port`, wildcard and hashed
 * entries, `@revoked` markers). A host with any entry whose key differs, and none that matches, is `changed`:
 * like OpenSSH with StrictHostKeyChecking, it is never accepted silently.
 *
 * @example
 *   const verdict = checkHostKey('~/.ssh/known_hosts', '10.0.0.5', 22, key);
 *   if (verdict.status !== 'known') refuse();
 */
export function checkHostKey(file: string, address: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(address, port);
  let changedLine = 0;
  for (const e of entries(file)) {
    if (e.marker === '@cert-authority') continue;
    if (e.marker === '@revoked') {
      if (e.key.equals(key)) return { status: 'changed', line: e.line };
      continue;
    }
    if (!hostMatches(e.hosts, name)) continue;
    if (e.key.equals(key)) return { status: 'known' };
    changedLine ||= e.line;
  }
  return changedLine ? { status: 'changed', line: changedLine } : { status: 'unknown' };
}

/**
 * The key types known_hosts holds for a host, so that the connection asks the server for one of them first
 * (as OpenSSH does) instead of reporting a known host as changed because it offered another type.
 *
 * @example
 *   knownKeyTypes(file, '10.0.0.5', 22); // ['ssh-ed25519']
 */
export function knownKeyTypes(file: string, address: string, port: number): string[] {
  const name = knownHostsName(address, port);
  const types = new Set<string>();
  for (const e of entries(file)) if (e.marker === '' && hostMatches(e.hosts, name)) types.add(e.type);
  return [...types];
}

/**
 * Appends a host's key to known_hosts (creating the file, mode 0600), as `ssh -o StrictHostKeyChecking=accept-new`.
 *
 * @example
 *   addKnownHost('~/.ssh/known_hosts', '10.0.0.5', 22, key);
 */
export function addKnownHost(file: string, address: string, port: number, key: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const sep = existing === '' || existing.endsWith('\n') ? '' : '\n';
  appendFileSync(file, `${sep}${knownHostsName(address, port)} ${keyType(key)} ${key.toString('base64')}\n`, {
    mode: 0o600,
  });
}
