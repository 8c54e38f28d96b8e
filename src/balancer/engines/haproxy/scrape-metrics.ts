import { request } from 'node:http';
import { haproxyFailed } from '../../../errors.ts';

/**
 * GET /metrics from HAProxy's Prometheus exporter on its unix socket.
 *
 * @example
 *   const text = await scrapeMetrics(join(dir, 'promex.sock'));
 */
export function scrapeMetrics(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(haproxyFailed('metrics', 'no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}
