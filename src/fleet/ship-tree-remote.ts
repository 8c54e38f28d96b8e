// The two programs shipTree runs on a host with `node -e`: they depend on nothing but Node's own modules, since
// clones may not be installed there yet. They are plain JavaScript in strings (no template literals inside).
//
// Layout on the host: <store>/<sha256 hex> is one blob (mode 0400), <store>/<hex>.x its executable twin (0500,
// a local copy: hard links share one mode); a tree is directories of hard links to blobs plus its manifest
// `.clones-tree.json`, made read-only and renamed into place, so a tree that exists is complete. Everything is
// owner-only: a release may hold the app's secrets, and other users of the host have no business reading it.
import { shellQuote } from './shell-quote.ts';

/** The manifest file inside every shipped tree. */
export const TREE_MANIFEST = '.clones-tree.json';

/** Exit codes of the remote programs that mean something to the control side. */
export const REMOTE_EXIT = Object.freeze({ corrupt: 3, badInput: 4, missingBlob: 5, conflict: 6 });

const COMMON = String.raw`
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const args = process.argv.slice(1);
const store = args[0], dir = args[1], digest = args[2];
function die(code, message) { process.stderr.write(message + '\n'); process.exit(code); }
function fail(code, message) { const e = new Error(message); e.exitCode = code; throw e; }
function hashFile(p) {
  const h = crypto.createHash('sha256'), fd = fs.openSync(p, 'r'), b = Buffer.allocUnsafe(1 << 20);
  try { for (let n; (n = fs.readSync(fd, b, 0, b.length, null)) > 0;) h.update(b.subarray(0, n)); } finally { fs.closeSync(fd); }
  return h.digest('hex');
}
function treeDigest(entries) {
  const h = crypto.createHash('sha256');
  h.update('clones-tree v1\n');
  for (const e of entries) h.update(JSON.stringify(e) + '\n');
  return h.digest('hex');
}
function existingDigest() {
  let st;
  try { st = fs.lstatSync(dir); } catch (e) { return null; }
  try { return JSON.parse(fs.readFileSync(path.join(dir, '.clones-tree.json'), 'utf8')).digest || ''; } catch (e) { return st ? '' : null; }
}
function removeTree(p) {
  try { fs.chmodSync(p, 0o700); } catch (e) {}
  for (const name of fs.readdirSync(p)) {
    const c = path.join(p, name);
    if (fs.lstatSync(c).isDirectory()) removeTree(c); else fs.unlinkSync(c);
  }
  fs.rmdirSync(p);
}
`;

// Reads the wanted blob hashes (one per line) from stdin; answers JSON { done, missing, corrupt }. A blob that
// is present is hashed again: a damaged one is deleted and reported missing, so it is sent again; a sound one
// stored by an older clones (0444, world-readable) is made owner-only like the trees that link it.
const PLAN = String.raw`
const have = existingDigest();
if (have === digest) { process.stdout.write(JSON.stringify({ done: true, missing: [], corrupt: [] })); process.exit(0); }
if (have !== null) die(6, dir + (have ? ' holds another tree (' + have.slice(0, 12) + ')' : ' exists and is not a shipped tree'));
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const wanted = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean);
  const missing = [], corrupt = [];
  for (const hex of wanted) {
    if (!/^[0-9a-f]{64}$/.test(hex)) die(4, 'bad blob name ' + JSON.stringify(hex));
    const blob = path.join(store, hex);
    let ok = false;
    try { ok = hashFile(blob) === hex; if (!ok) { corrupt.push(hex); fs.unlinkSync(blob); } } catch (e) { if (e.code !== 'ENOENT') throw e; }
    if (ok) fs.chmodSync(blob, 0o400);
    try { if (fs.existsSync(blob + '.x') && (!ok || hashFile(blob + '.x') !== hex)) { fs.unlinkSync(blob + '.x'); if (ok) corrupt.push(hex + '.x'); } } catch (e) {}
    if (!ok) missing.push(hex);
  }
  process.stdout.write(JSON.stringify({ done: false, missing: missing, corrupt: corrupt }));
});
`;

// Reads frames from stdin: 'B' + 32-byte sha256 + u64 length + bytes (a blob), then 'M' + u64 length + the
// manifest JSON. Each blob is hashed as it arrives and stored only if it matches; then the tree is built.
const RECEIVE = `
fs.mkdirSync(store, { recursive: true, mode: 0o700 });
let buf = Buffer.alloc(0), cur = null, man = null, manLeft = 0, received = 0, bytes = 0, built = false;
function startBlob(hex, len) {
  const tmp = path.join(store, '.in-' + process.pid + '-' + hex);
  cur = { hex: hex, left: len, tmp: tmp, fd: fs.openSync(tmp, 'w', 0o600), hash: crypto.createHash('sha256') };
  if (len === 0) endBlob();
}
function endBlob() {
  const c = cur; cur = null;
  fs.closeSync(c.fd);
  const got = c.hash.digest('hex');
  if (got !== c.hex) { fs.unlinkSync(c.tmp); die(3, 'blob ' + c.hex + ' arrived with sha256 ' + got + ': corrupted in transit, not stored'); }
  fs.chmodSync(c.tmp, 0o400);
  fs.renameSync(c.tmp, path.join(store, c.hex));
  received++;
}
function safe(rel) {
  if (typeof rel !== 'string' || rel === '' || path.isAbsolute(rel) || rel.split('/').some((s) => s === '..' || s === '.' || s === '')) fail(4, 'unsafe path in manifest: ' + JSON.stringify(rel));
  return rel;
}
function build(json) {
  const m = JSON.parse(json);
  if (m.digest !== digest || treeDigest(m.entries) !== digest) fail(3, 'the manifest does not match its digest ' + digest);
  const have = existingDigest();
  if (have === digest) return finish();
  if (have !== null) fail(6, dir + ' appeared meanwhile with other content');
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  const tmp = path.join(parent, '.tmp-tree-' + process.pid + '-' + crypto.randomBytes(4).toString('hex'));
  fs.mkdirSync(tmp);
  const dirs = [tmp];
  try {
    for (const e of m.entries) {
      const p = path.join(tmp, safe(e[1]));
      if (e[0] === 'd') { fs.mkdirSync(p); dirs.push(p); }
      else if (e[0] === 'l') fs.symlinkSync(e[2], p);
      else if (e[0] === 'f') {
        const blob = path.join(store, e[2]);
        if (!fs.existsSync(blob)) fail(5, 'blob ' + e[2] + ' (' + e[1] + ') is missing from ' + store);
        let src = blob;
        if (e[4]) {
          src = blob + '.x';
          if (!fs.existsSync(src)) { const t = src + '.' + process.pid; fs.copyFileSync(blob, t); fs.chmodSync(t, 0o500); fs.renameSync(t, src); }
        }
        try { fs.linkSync(src, p); }
        catch (err) { if (err.code !== 'EMLINK') throw err; fs.copyFileSync(src, p); fs.chmodSync(p, e[4] ? 0o500 : 0o400); }
      } else fail(4, 'unknown manifest entry ' + JSON.stringify(e[0]));
    }
    fs.writeFileSync(path.join(tmp, '.clones-tree.json'), json, { mode: 0o400 });
    for (const d of dirs.slice(1).reverse()) fs.chmodSync(d, 0o500);
    try { fs.renameSync(tmp, dir); }
    catch (err) { if (existingDigest() !== digest) throw err; removeTree(tmp); return finish(); }
    fs.chmodSync(dir, 0o500);
  } catch (err) {
    if (fs.existsSync(tmp)) removeTree(tmp);
    throw err;
  }
  finish();
}
function finish() { built = true; process.stdout.write(JSON.stringify({ received: received, bytes: bytes })); }
function pump() {
  for (;;) {
    if (cur) {
      const n = Math.min(cur.left, buf.length);
      if (n === 0) return;
      const part = buf.subarray(0, n);
      cur.hash.update(part); fs.writeSync(cur.fd, part); cur.left -= n; bytes += n; buf = buf.subarray(n);
      if (cur.left === 0) endBlob();
      continue;
    }
    if (man) {
      const n = Math.min(manLeft, buf.length);
      if (n === 0) return;
      man.push(buf.subarray(0, n)); manLeft -= n; buf = buf.subarray(n);
      if (manLeft === 0) { const json = Buffer.concat(man).toString('utf8'); man = null; build(json); }
      continue;
    }
    if (buf.length === 0) return;
    if (built) die(4, 'data after the manifest');
    if (buf[0] === 66) {
      if (buf.length < 41) return;
      const hex = buf.subarray(1, 33).toString('hex'), len = Number(buf.readBigUInt64BE(33));
      buf = buf.subarray(41);
      startBlob(hex, len);
    } else if (buf[0] === 77) {
      if (buf.length < 9) return;
      manLeft = Number(buf.readBigUInt64BE(1)); buf = buf.subarray(9); man = [];
      if (manLeft === 0) die(4, 'empty manifest');
    } else die(4, 'bad frame type ' + buf[0]);
  }
}
process.stdin.on('data', (c) => {
  buf = buf.length ? Buffer.concat([buf, c]) : c;
  try { pump(); } catch (e) { die(e.exitCode || 1, e.exitCode ? e.message : String(e.stack || e)); }
});
process.stdin.on('end', () => {
  if (!built) { if (cur) { try { fs.closeSync(cur.fd); fs.unlinkSync(cur.tmp); } catch (e) {} } die(4, 'the input ended before the manifest arrived'); }
});
`;

/**
 * The command that answers which of the blobs listed on stdin `store` lacks (or holds damaged), or that
 * `dir` already holds the tree `digest`.
 *
 * @example
 *   await ssh.exec(host, planCommand(store, dir, digest), { step: 'ship: plan', stdin: Buffer.from(hashes.join('\n')) });
 */
export function planCommand(store: string, dir: string, digest: string): string {
  return shellQuote(['node', '-e', COMMON + PLAN, '--', store, dir, digest]);
}

/**
 * The command that reads blob frames and the manifest on stdin, verifies and stores each blob, and builds the
 * tree `digest` at `dir`. Exits REMOTE_EXIT.corrupt when a blob or the manifest does not match its hash.
 *
 * @example
 *   await ssh.exec(host, receiveCommand(store, dir, digest), { step: 'ship: send', stdin: frames });
 */
export function receiveCommand(store: string, dir: string, digest: string): string {
  return shellQuote(['node', '-e', COMMON + RECEIVE, '--', store, dir, digest]);
}

/**
 * The header of one blob frame: 'B', the blob's sha256 (32 bytes), its length (u64, big-endian); the bytes follow.
 *
 * @example
 *   stream.write(blobHeader(hex, size)); stream.write(data);
 */
export function blobHeader(hex: string, size: number): Buffer {
  const header = Buffer.alloc(41);
  header[0] = 0x42;
  Buffer.from(hex, 'hex').copy(header, 1);
  header.writeBigUInt64BE(BigInt(size), 33);
  return header;
}

/**
 * The manifest frame that ends the input: 'M', the length (u64, big-endian), the manifest JSON.
 *
 * @example
 *   stream.end(manifestFrame(JSON.stringify(manifest)));
 */
export function manifestFrame(json: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  const header = Buffer.alloc(9);
  header[0] = 0x4d;
  header.writeBigUInt64BE(BigInt(body.length), 1);
  return Buffer.concat([header, body]);
}
