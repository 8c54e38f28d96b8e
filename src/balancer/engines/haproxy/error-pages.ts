import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const page = (status: number, reason: string, code: string, message: string) => {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncache-control: no-cache\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
};

/**
 * Writes the raw HTTP answers HAProxy sends for its own errors (errorfile), with the same JSON body and codes
 * as the built-in engine: no target (503), the clone failed (502), the clone timed out (504).
 *
 * @example
 *   writeErrorPages(dir); // dir/no-target.http, dir/upstream.http, dir/timeout.http
 */
export function writeErrorPages(dir: string): void {
  writeFileSync(
    join(dir, 'no-target.http'),
    page(503, 'Service Unavailable', 'CLONES_BALANCER_NO_TARGET', 'no clone can take this request'),
  );
  writeFileSync(
    join(dir, 'upstream.http'),
    page(
      502,
      'Bad Gateway',
      'CLONES_BALANCER_UPSTREAM_ERROR',
      'the clone failed and the request could not be retried',
    ),
  );
  writeFileSync(
    join(dir, 'timeout.http'),
    page(504, 'Gateway Timeout', 'CLONES_BALANCER_UPSTREAM_TIMEOUT', 'the clone did not answer in time'),
  );
}
