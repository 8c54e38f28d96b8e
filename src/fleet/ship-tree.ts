import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { hostBlobCorrupt, hostNodeMissing, hostStepFailed, hostTreeConflict } from '../errors.ts';
import { commandFailure } from './command-failure.ts';
import type { HostSpec } from './host-spec.ts';
import {
  blobHeader,
  manifestFrame,
  planCommand,
  REMOTE_EXIT,
  receiveCommand,
  TREE_MANIFEST,
} from './ship-tree-remote.ts';
import type { SshTransport } from './ssh-transport.ts';

/** One entry of a tree: a directory, a file (sha256, size, executable) or a symlink (kept as a link). */
export type TreeEntry =
  | [kind: 'd', path: string]
  | [kind: 'f', path: string, sha256: string, size: number, executable: 0 | 1]
  | [kind: 'l', path: string, target: string];

/** What a tree is: its entries in walk order, and the digest that names exactly them. */
export interface TreeManifest {
  digest: string;
  entries: TreeEntry[];
}

export interface ShipOptions {
  /** Named in errors and logs; default `ship <basename of localDir>`. */
  step?: string;
  /** The tree's manifest when the caller already has it (shipping one tree to many hosts hashes it once). */
  manifest?: TreeManifest;
  /** The host's blob store; default `<parent of remoteDir>/blobs/sha256`. It must be on the same file system. */
  store?: string;
  /** Milliseconds for each remote step (default none; keepalives still detect a dead link). */
  timeout?: number;
}

export interface ShipResult {
  /** Files in the tree. */
  files: number;
  /** Blobs sent (files whose content the host lacked; equal contents are sent once). */
  sentFiles: number;
  /** Bytes written to the host's standard input over SSH: the hash list, the blobs and the manifest. */
  sentBytes: number;
  digest: string;
  /** The host already held this tree at remoteDir: nothing was built. */
  already: boolean;
  /** Blobs on the host that failed their hash check, were deleted and sent again. */
  repaired: number;
}

/** The oldest Node a host may run: the version clones itself needs. */
const MIN_NODE_MAJOR = 20;
const nodeChecked = new WeakMap<SshTransport, Set<string>>();

/**
 * Hashes every file under `dir` (sha256; symlinks kept as links; the executable bit kept; directories listed
 * so empty ones survive) and names the whole by one digest. Sockets and other special files are left out.
 *
 * @example
 *   const manifest = treeManifest('.clones/releases/3f2a...');
 *   for (const host of hosts) await shipTree(ssh, host, dir, remote, { manifest });
 */
export function treeManifest(dir: string): TreeManifest {
  const entries: TreeEntry[] = [];
  const walk = (rel: string) => {
    const names = readdirSync(join(dir, rel)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      if (rel === '' && name === TREE_MANIFEST) continue;
      const path = rel === '' ? name : `${rel}/${name}`;
      const full = join(dir, path);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) entries.push(['l', path, readlinkSync(full)]);
      else if (st.isDirectory()) {
        entries.push(['d', path]);
        walk(path);
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(readFileSync(full)).digest('hex');
        entries.push(['f', path, sha, st.size, st.mode & 0o111 ? 1 : 0]);
      }
    }
  };
  walk('');
  return { digest: treeDigest(entries), entries };
}

/** The digest of a list of entries; the host computes it the same way (ship-tree-remote.ts). */
export function treeDigest(entries: TreeEntry[]): string {
  const hash = createHash('sha256').update('clones-tree v1\n');
  for (const e of entries) hash.update(`${JSON.stringify(e)}\n`);
  return hash.digest('hex');
}

/**
 * Ships the tree at `localDir` to `remoteDir` on the host over SSH, content-addressed: one command asks which
 * blobs the host's store lacks (re-hashing the ones it has), a second streams only those and the manifest;
 * the host checks every blob's sha256 as it arrives (CLONES_HOST_BLOB_CORRUPT otherwise), builds the tree
 * from hard links to its blobs in a temporary directory, makes it read-only and renames it into place. A host
 * that already holds the tree at `remoteDir` gets nothing. The host needs only `node` (>= 20).
 *
 * @example
 *   const r = await shipTree(ssh, host, '.clones/releases/3f2a...', 'clones/releases/3f2a...', { step: 'ship release 3f2a9c' });
 *   console.log(`${r.sentFiles}/${r.files} files, ${r.sentBytes} bytes`);
 */
export async function shipTree(
  ssh: SshTransport,
  host: HostSpec,
  localDir: string,
  remoteDir: string,
  opts: ShipOptions = {},
): Promise<ShipResult> {
  const step = opts.step ?? `ship ${basename(localDir)}`;
  const manifest = opts.manifest ?? treeManifest(localDir);
  const store = opts.store ?? posix.join(posix.dirname(remoteDir), 'blobs', 'sha256');
  const timeout = opts.timeout === undefined ? {} : { timeout: opts.timeout };
  const files = manifest.entries.filter((e) => e[0] === 'f') as Array<
    Extract<TreeEntry, ['f', ...unknown[]]>
  >;
  await checkNode(ssh, host, step);

  const sources = new Map<string, { path: string; size: number }>();
  for (const [, path, sha, size] of files) if (!sources.has(sha)) sources.set(sha, { path, size });
  const list = Buffer.from([...sources.keys()].join('\n'));
  const plan = await ssh.exec(host, planCommand(store, remoteDir, manifest.digest), {
    step: `${step}: plan`,
    stdin: list,
    allowFailure: true,
    ...timeout,
  });
  if (plan.code === REMOTE_EXIT.conflict) throw hostTreeConflict(host.name, remoteDir, plan.stderr.trim());
  if (plan.code !== 0)
    throw hostStepFailed(host.name, `${step}: plan`, commandFailure(plan.code, plan.stderr));
  const answer = JSON.parse(plan.stdout) as { done: boolean; missing: string[]; corrupt: string[] };
  const base = { files: files.length, digest: manifest.digest, repaired: answer.corrupt.length };
  if (answer.done) return { ...base, sentFiles: 0, sentBytes: list.length, already: true };

  let sent = 0;
  const input = frames(localDir, answer.missing, sources, manifest, (n) => {
    sent += n;
  });
  const sendStep = `${step}: send ${answer.missing.length} of ${sources.size} files`;
  const receive = await ssh.exec(host, receiveCommand(store, remoteDir, manifest.digest), {
    step: sendStep,
    stdin: input,
    allowFailure: true,
    ...timeout,
  });
  if (receive.code === REMOTE_EXIT.corrupt) throw hostBlobCorrupt(host.name, sendStep, receive.stderr.trim());
  if (receive.code === REMOTE_EXIT.conflict)
    throw hostTreeConflict(host.name, remoteDir, receive.stderr.trim());
  if (receive.code !== 0)
    throw hostStepFailed(host.name, sendStep, commandFailure(receive.code, receive.stderr));
  return { ...base, sentFiles: answer.missing.length, sentBytes: list.length + sent, already: false };
}

/** The stream of frames for the missing blobs, read from disk one after the other, then the manifest. */
function frames(
  localDir: string,
  missing: string[],
  sources: Map<string, { path: string; size: number }>,
  manifest: TreeManifest,
  count: (bytes: number) => void,
): Readable {
  const out = new PassThrough();
  const write = (chunk: Buffer) => {
    count(chunk.length);
    return out.write(chunk);
  };
  (async () => {
    for (const hex of missing) {
      const source = sources.get(hex);
      if (!source) throw new Error(`the host asked for blob ${hex}, which this tree does not have`);
      write(blobHeader(hex, source.size));
      let length = 0;
      for await (const chunk of createReadStream(join(localDir, source.path))) {
        length += (chunk as Buffer).length;
        if (!write(chunk as Buffer)) await new Promise((resolve) => out.once('drain', resolve));
      }
      // A file that changed size since it was hashed would desynchronise the frames: the host would then
      // refuse the blob by its hash, but say so here, with the file's name.
      if (length !== source.size) throw new Error(`${source.path} changed while it was being shipped`);
    }
    const tail = manifestFrame(JSON.stringify({ digest: manifest.digest, entries: manifest.entries }));
    count(tail.length);
    out.end(tail);
  })().catch((err: Error) => out.destroy(err));
  return out;
}

/** Node >= MIN_NODE_MAJOR on the host's PATH, checked once per host per transport. */
async function checkNode(ssh: SshTransport, host: HostSpec, step: string): Promise<void> {
  const checked = nodeChecked.get(ssh) ?? new Set<string>();
  nodeChecked.set(ssh, checked);
  const key = `${host.user}@${host.address}:${host.port}`;
  if (checked.has(key)) return;
  const r = await ssh.exec(host, `node -e 'process.stdout.write(process.versions.node)'`, {
    step: `${step}: check node`,
    allowFailure: true,
  });
  const version = r.code === 0 ? r.stdout.trim() : '';
  if (Number(version.split('.')[0]) < MIN_NODE_MAJOR || version === '') {
    throw hostNodeMissing(host.name, `${step}: check node`, version);
  }
  checked.add(key);
}
