import { type AddressInfo, createServer } from 'node:net';

/**
 * A port free on `host` now, for a listener HAProxy opens itself (it cannot report the port it bound to 0).
 *
 * @example
 *   const port = await freePort('127.0.0.1');
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
