import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type CertificateInfo, loadTlsMaterial } from '../../tls-material.ts';
import type { ResolvedTls } from '../../tls-options.ts';

/** What writing the certificates changed. */
export interface CertificatesWritten {
  certificates: CertificateInfo[];
  /** The files whose content differs from before. */
  changed: string[];
  /** The set of files is the one HAProxy loaded: the runtime API can apply `changed`, no reload needed. */
  sameFiles: boolean;
}

/**
 * The certificate files HAProxy loads from its `certs` directory, in name order: the first is the default.
 * The runtime API cannot add or remove a file of a directory bind, only replace one's content, so each write
 * says which files changed and whether the set of files stayed the same.
 *
 * @example
 *   const certs = new HaproxyCertificates(options.tls, logger);
 *   const { changed, sameFiles } = await certs.write(join(dir, 'certs'));
 */
export class HaproxyCertificates {
  readonly #tls: ResolvedTls;
  readonly #logger: Logger;
  #files: string[] = [];

  constructor(tls: ResolvedTls, logger: Logger) {
    this.#tls = tls;
    this.#logger = logger;
  }

  /**
   * Checks and loads every certificate (a bad one throws CLONES_TLS_* and changes nothing), then writes one
   * PEM per certificate into `certDir`, default first.
   */
  async write(certDir: string): Promise<CertificatesWritten> {
    const material = await loadTlsMaterial(this.#tls, this.#logger);
    mkdirSync(certDir, { recursive: true, mode: 0o700 });
    const fileOf = (i: number) => join(certDir, `${String(i).padStart(3, '0')}.pem`);
    const next = material.bundles.map((_, i) => fileOf(i));
    const sameFiles = next.length === this.#files.length;
    const changed: string[] = [];
    material.bundles.forEach((pem, i) => {
      const file = fileOf(i);
      if (existsSync(file) && readFileSync(file, 'utf8') === pem) return;
      writeFileSync(file, pem, { mode: 0o600 });
      changed.push(file);
    });
    for (const stale of this.#files.slice(next.length)) rmSync(stale, { force: true });
    this.#files = next;
    return { certificates: material.certificates, changed, sameFiles };
  }
}
