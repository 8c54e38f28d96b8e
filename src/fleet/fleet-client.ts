import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { errorFromBody, fleetNotRunning } from '../errors.ts';
import { isAlive } from './deploy-lock.ts';
import type { FleetEvent } from './fleet-event.ts';
import type { FleetPaths } from './fleet-paths.ts';

/** What a running `clones up` writes to `.clones/up.json`. */
export interface RuntimeInfo {
  pid: number;
  host: string;
  port: number;
  /** The fleet admin API (loopback). */
  api: number;
  /** The balancer's own admin API (loopback, same token). */
  balancerAdmin: number;
  release: string;
  startedAt: string;
}

/**
 * A client of a running `clones up`, found through `.clones/up.json` and `.clones/admin-token`.
 *
 * @example
 *   const client = connectFleet(fleetPaths());
 *   const status = await client.get('/status');
 *   await client.stream('/deploy', { release }, (event) => console.log(event));
 */
export function connectFleet(paths: FleetPaths) {
  if (!existsSync(paths.runtime)) throw fleetNotRunning(paths.home, 'no up.json');
  const info = JSON.parse(readFileSync(paths.runtime, 'utf8')) as RuntimeInfo;
  if (!isAlive(info.pid)) throw fleetNotRunning(paths.home, `process ${info.pid} is gone`);
  const token = readFileSync(paths.adminToken, 'utf8').trim();

  const call = (
    method: string,
    path: string,
    body: unknown,
    onLine?: (event: FleetEvent) => void,
    text = false,
    signal?: AbortSignal,
  ) =>
    new Promise<unknown>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1',
          port: info.api,
          method,
          path,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          let buffer = '';
          let last: FleetEvent | undefined;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            if (!onLine || res.statusCode !== 200) return;
            let nl = buffer.indexOf('\n');
            while (nl >= 0) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              if (line) {
                last = JSON.parse(line) as FleetEvent;
                onLine(last);
              }
              nl = buffer.indexOf('\n');
            }
          });
          res.on('end', () => {
            if (text && res.statusCode === 200) return resolve(buffer);
            try {
              if (onLine && res.statusCode === 200) {
                if (last?.type !== 'result')
                  throw fleetNotRunning(paths.home, 'the fleet closed the stream early');
                if (last.ok) return resolve(last.status);
                const e = last.error as { code: string; message: string };
                return reject(errorFromBody(e.code, e.message));
              }
              const parsed = JSON.parse(buffer) as { error?: { code: string; message: string } };
              if (parsed.error)
                reject(
                  errorFromBody(parsed.error.code, parsed.error.message, { status: res.statusCode ?? 500 }),
                );
              else resolve(parsed);
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('error', (err) =>
        reject(signal?.aborted ? signal.reason : fleetNotRunning(paths.home, err.message)),
      );
      // Dropping the request is how a client cancels (the fleet rolls a deploy back when its client goes).
      signal?.addEventListener(
        'abort',
        () => {
          reject(signal.reason);
          req.destroy();
        },
        { once: true },
      );
      req.end(payload);
    });

  return {
    info,
    get: (path: string) => call('GET', path, undefined),
    /** A JSON answer to a POST (`/deploy/pause`). */
    post: (path: string, body: unknown) => call('POST', path, body),
    /** NDJSON events of an action; `signal` drops the request (a deploy is then rolled back). */
    stream: (
      path: string,
      body: unknown,
      onEvent: (event: FleetEvent) => void,
      method = 'POST',
      signal?: AbortSignal,
    ) => call(method, path, body, onEvent, false, signal),
    /** A text answer (logs). */
    text: (path: string) => call('GET', path, undefined, undefined, true) as Promise<string>,
    /**
     * A text answer that goes on (`logs -f`): `onText` gets each chunk as it comes. Resolves when the fleet
     * ends it or `signal` aborts (the request is dropped, which ends the fleet's side too).
     */
    follow: (path: string, onText: (text: string) => void, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: info.api, path, headers: { authorization: `Bearer ${token}` } },
          (res) => {
            res.setEncoding('utf8');
            if (res.statusCode !== 200) {
              let body = '';
              res.on('data', (c: string) => (body += c));
              res.on('end', () => {
                try {
                  const e = (JSON.parse(body) as { error: { code: string; message: string } }).error;
                  reject(errorFromBody(e.code, e.message, { status: res.statusCode ?? 500 }));
                } catch {
                  reject(fleetNotRunning(paths.home, `answered ${res.statusCode}`));
                }
              });
              return;
            }
            res.on('data', onText);
            res.on('error', () => {});
            res.on('close', () => resolve());
          },
        );
        signal.addEventListener('abort', () => req.destroy(), { once: true });
        req.on('error', (err) =>
          signal.aborted ? resolve() : reject(fleetNotRunning(paths.home, err.message)),
        );
        req.end();
      }),
  };
}

export type FleetClient = ReturnType<typeof connectFleet>;
