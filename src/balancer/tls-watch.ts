import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ResolvedTls } from './tls-options.ts';

/**
 * Calls `changed` once the TLS files have been quiet for `tls.reloadDebounce` after a change. It watches the
 * directories that hold the files rather than the files: renewals (certbot, cert-manager) replace files by
 * renaming, and a watch on the old inode would never fire again. Returns the function that stops watching.
 * Both engines use it; a directory that cannot be watched is logged, and SIGHUP or the admin API still reload.
 *
 * @example
 *   const stop = watchTlsFiles(options.tls, logger, () => void store.reload('files changed'));
 *   stop();
 */
export function watchTlsFiles(tls: ResolvedTls, logger: Logger, changed: () => void): () => void {
  const { cert, key, chain, dir } = tls;
  const files = [cert, key, chain].filter((f): f is string => f !== undefined);
  const dirs = new Map<string, Set<string> | undefined>();
  for (const file of files) {
    const parent = dirname(file);
    const names = dirs.get(parent);
    if (dirs.has(parent) && names === undefined) continue;
    dirs.set(parent, (names ?? new Set()).add(basename(file)));
  }
  if (dir !== undefined) dirs.set(dir, undefined);
  let debounce: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  for (const [path, names] of dirs) {
    try {
      const watcher = watch(path, { recursive: false }, (_event, file) => {
        if (names !== undefined && file !== null && !names.has(String(file))) return;
        clearTimeout(debounce);
        debounce = setTimeout(changed, tls.reloadDebounce);
        debounce.unref();
      });
      watcher.on('error', (err) => logger.warn({ err, path }, 'cannot watch TLS files'));
      watcher.unref();
      watchers.push(watcher);
    } catch (err) {
      logger.warn({ err, path }, 'cannot watch TLS files; reload with SIGHUP or POST /tls/reload');
    }
  }
  return () => {
    clearTimeout(debounce);
    for (const w of watchers) w.close();
  };
}
