import { randomBytes } from 'node:crypto';
import type { SecureContext, Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { ClonesError } from '../errors.ts';
import { type CertificateInfo, loadTlsMaterial, type TlsMaterial } from './tls-material.ts';
import type { ResolvedTls } from './tls-options.ts';
import { watchTlsFiles } from './tls-watch.ts';

/** The native context under a SecureContext: it holds the session ticket keys. */
type NativeContext = { setTicketKeys?(keys: Buffer): void };

/**
 * The balancer's certificates: loaded before the listener starts, reloaded when the files change, on SIGHUP
 * or through the admin API. A reload swaps in new contexts for new handshakes only: connections already
 * open keep theirs, so nothing is dropped. A reload whose files are bad keeps the old certificates.
 *
 * @example
 *   const store = new TlsStore(options.tls, logger);
 *   const server = http2.createSecureServer({ SNICallback: store.sniCallback });
 *   await store.attach(server);
 *   await store.reload('SIGHUP');
 */
export class TlsStore {
  readonly options: ResolvedTls;
  readonly #logger: Logger;
  #material: TlsMaterial | undefined = undefined;
  #server: TlsServer | undefined = undefined;
  #unwatch: (() => void) | undefined = undefined;
  #rotation: NodeJS.Timeout | undefined = undefined;
  /** Reloads run one after the other, never two at once. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ResolvedTls, logger: Logger) {
    this.options = options;
    this.#logger = logger;
  }

  /** Certificates served now. */
  get certificates(): CertificateInfo[] {
    return this.#material?.certificates ?? [];
  }

  /** Picks the certificate for the name the client asked for (SNI): exact, then wildcard, then the default. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const material = this.#material;
    if (material === undefined) {
      cb(new Error('no certificate loaded'));
      return;
    }
    const name = servername.toLowerCase();
    const dot = name.indexOf('.');
    cb(
      null,
      material.byName.get(name) ??
        (dot > 0 ? material.byName.get(`*${name.slice(dot)}`) : undefined) ??
        material.defaultContext,
    );
  };

  /** Loads the files (throws a `CLONES_TLS_*` error), gives the server its default context, starts watching. */
  async attach(server: TlsServer): Promise<void> {
    this.#server = server;
    await this.reload('start');
    if (this.options.watch)
      this.#unwatch = watchTlsFiles(this.options, this.#logger, () => {
        this.reload('files changed').catch(() => {});
      });
    this.#rotation = setInterval(() => this.#rotateTicketKeys(), this.options.ticketKeyRotation);
    this.#rotation.unref();
  }

  /**
   * Reads every file again and, when all of them are good, serves them to new connections. Rejects with the
   * `CLONES_TLS_*` error otherwise, keeping the certificates in use.
   */
  reload(reason: string): Promise<CertificateInfo[]> {
    const run = this.#queue.then(async () => {
      try {
        const material = await loadTlsMaterial(this.options, this.#logger);
        this.#server?.setSecureContext(material.defaultOptions);
        this.#material = material;
        const certificates = material.certificates.map((c) => ({
          file: c.file,
          names: c.names,
          notAfter: c.notAfter,
        }));
        this.#logger.info({ reason, certificates }, 'TLS certificates loaded');
        return material.certificates;
      } catch (err) {
        if (this.#material !== undefined) {
          const code = err instanceof ClonesError ? err.code : 'unknown';
          this.#logger.error(
            { reason, code, err },
            'TLS reload failed; the previous certificates stay in use',
          );
        }
        throw err;
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Stops watching and rotating. */
  close(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    clearInterval(this.#rotation);
  }

  /** New ticket keys for the default and every SNI context; tickets issued before need a full handshake. */
  #rotateTicketKeys(): void {
    const keys = randomBytes(48);
    this.#server?.setTicketKeys(keys);
    for (const ctx of new Set(this.#material?.byName.values()))
      (ctx as unknown as { context?: NativeContext }).context?.setTicketKeys?.(keys);
  }
}
