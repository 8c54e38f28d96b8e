import { createServer } from 'node:net';

/**
 * A port of `host` (default loopback) that was free a moment ago: the OS picks it, we release it, and the
 * caller binds it (the port a new clone is told to listen on, a listener HAProxy opens itself since it cannot
 * report a port it bound to 0, a server a test starts). Another process can take it in between, so callers
 * retry a start that fails with "address in use".
 *
 * @example
 *   const port = await freePort('127.0.0.1');
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('the OS gave no port'))));
    });
  });
}
