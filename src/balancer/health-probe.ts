import { request } from 'node:http';
import type { ResolvedOptions } from './options.ts';

/**
 * One active health check, as both engines run it: GET `healthCheck.path` on its own connection (a pooled
 * socket could hide a dead listener), passed when the status matches `healthCheck.matcher` within
 * `healthCheck.timeout`. Never rejects.
 *
 * @example
 *   const up = await healthProbe({ host: '127.0.0.1', port: 3001 }, options.healthCheck);
 */
export function healthProbe(
  target: { readonly host: string; readonly port: number },
  hc: ResolvedOptions['healthCheck'],
): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (passed: boolean) => {
      if (done) return;
      done = true;
      req.destroy();
      resolve(passed);
    };
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: hc.path,
        method: 'GET',
        agent: false,
        timeout: hc.timeout,
        headers: {
          host: `${target.host}:${target.port}`,
          'user-agent': 'clones-balancer-health',
          connection: 'close',
        },
      },
      (res) => {
        res.resume();
        finish(hc.matcher(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => finish(false));
    req.on('error', () => finish(false));
    const deadline = setTimeout(() => finish(false), hc.timeout);
    deadline.unref();
    req.on('close', () => clearTimeout(deadline));
    req.end();
  });
}
