import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { badHostsConfig } from '../errors.ts';
import type { FleetHost } from './host-config.ts';

/** A change `clones hosts add|remove` makes to the `hosts` list of the app's clones.json. */
export type HostsFileChange = { add: FleetHost } | { remove: string };

/**
 * Writes a host added or removed at run time into the app's clones.json, so that the next `clones up`
 * has it (or no longer has it). The user's other keys, their order and the file's indentation are kept;
 * the file is replaced atomically (a temporary file renamed over it, its mode kept), so a crash leaves the
 * old file or the new one, never half of one. An added host is written as short as it can be: `address`,
 * then `name`, `user` and `port` only where they differ from what clones would assume; the other hosts'
 * entries are left as they are. Returns false when nothing changed (the host was already listed, or not).
 *
 * @example
 *   saveHostsChange('app/clones.json', { add: hostFromFlag('deploy@10.0.0.14', config, 2) });
 *   saveHostsChange('app/clones.json', { remove: 'web-3' });
 */
export function saveHostsChange(file: string, change: HostsFileChange): boolean {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '{}\n';
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw badHostsConfig([`${file}: ${(err as Error).message}`]);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw badHostsConfig([`${file}: must be a JSON object`]);
  const hosts = Array.isArray(config.hosts) ? [...(config.hosts as Record<string, unknown>[])] : [];
  const nameOf = (e: Record<string, unknown>) => String(e?.name ?? e?.address ?? '');
  const portOf = (e: Record<string, unknown>) => Number(e?.port ?? 22);
  let next: Record<string, unknown>[];
  if ('add' in change) {
    const h = change.add;
    if (hosts.some((e) => nameOf(e) === h.name || (e?.address === h.address && portOf(e) === h.port)))
      return false;
    next = [
      ...hosts,
      {
        address: h.address,
        ...(h.name !== h.address ? { name: h.name } : {}),
        user: h.user,
        ...(h.port !== 22 ? { port: h.port } : {}),
      },
    ];
  } else {
    next = hosts.filter((e) => nameOf(e) !== change.remove);
    if (next.length === hosts.length) return false;
  }
  const out = { ...config, hosts: next };
  const indent = /\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
  const body = `${JSON.stringify(out, null, indent)}\n`;
  const mode = existsSync(file) ? statSync(file).mode & 0o777 : 0o644;
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, body, { mode });
    renameSync(tmp, file);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
  return true;
}
