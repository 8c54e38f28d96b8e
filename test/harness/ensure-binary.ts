import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ClonesError } from '../../src/errors.ts';

/** Debian package that provides each server binary the tests start. */
const PACKAGES: Record<string, string> = {
  'redis-server': 'redis-server',
  memcached: 'memcached',
  wrk: 'wrk',
};

let aptUpdated = false;

/** A binary the tests need is missing and cannot be installed here (not root): the message is the command. */
const missingBinary = (binary: string, installCommand: string): ClonesError =>
  new ClonesError('CLONES_MISSING_BINARY', `${binary} is not installed; run: ${installCommand}`);

/**
 * Returns the path of `binary`, installing its Debian package with apt when running as root; otherwise throws
 * an error that names the exact command to run. A full path (binaries off PATH, like PostgreSQL's) is checked
 * as is, and needs the package name.
 *
 * @example
 *   const redis = ensureBinary('redis-server');
 *   ensureBinary('/usr/lib/postgresql/15/bin/postgres', 'postgresql');
 */
export function ensureBinary(binary: string, packageName?: string): string {
  const found = which(binary);
  if (found) return found;
  const pkg = packageName ?? PACKAGES[binary] ?? binary;
  const command = `sudo apt-get update && sudo apt-get install -y ${pkg}`;
  if (process.getuid?.() !== 0) throw missingBinary(binary, command);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    aptUpdated = true;
  }
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'inherit', env });
  const installed = which(binary);
  if (!installed) throw missingBinary(binary, command);
  return installed;
}

function which(binary: string): string | undefined {
  if (binary.includes('/')) return existsSync(binary) ? binary : undefined;
  for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']) {
    if (existsSync(`${dir}/${binary}`)) return `${dir}/${binary}`;
  }
  const r = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
