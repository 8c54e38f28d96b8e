import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { bearerCheck, readJsonObject, sendJson } from '../admin-http.ts';
import { isStickyDuration } from '../balancer/index.ts';
import { adminNotFound, badTargetSpec, ClonesError, internalError } from '../errors.ts';
import { fleetMetrics } from './dashboard/fleet-metrics.ts';
import type { Fleet } from './fleet.ts';
import type { FleetEvent } from './fleet-event.ts';
import { logsQuery } from './log-stream.ts';

type Job = (emit: (event: FleetEvent) => void, signal: AbortSignal) => Promise<unknown>;

/**
 * The fleet's admin API, on loopback behind the same bearer token as the balancer's: what `clones
 * deploy`, `rollback`, `scale`, `status` and `releases` talk to.
 *
 *   GET  /status                     the fleet status (JSON)
 *   GET  /releases                   releases on disk (JSON)
 *   GET  /metrics                    the fleet's and the balancer's metrics (Prometheus text)
 *   GET  /dashboard/...              the web dashboard (its own login; see docs/dashboard.md)
 *   POST /deploy   { release, strategy?, steps?, stepWait?, canaryClones?, canaryMargin?, sticky? }
 *                                                                                          NDJSON events
 *   POST /deploy/pause | /deploy/resume   hold the canary in progress at its step, let it go on  JSON
 *   POST /deploy/abort               the deploy in progress rolls back                        JSON
 *   POST /rollback { release? }                                                            NDJSON events
 *   POST /scale    { clones, host? }   on every host, or on that host only                 NDJSON events
 *   POST /clones/<id>/drain          a new clone starts, then this one drains and stops       NDJSON events
 *   GET  /logs?clone=&lines=&since=&follow=1   the clones' logs (every host), text; with follow=1 a
 *                                    stream of new lines until the client goes away
 *   POST /hosts    { host: "user@address[:port]" }  set the host up; it serves once caught up  NDJSON events
 *   DELETE /hosts/<name>             its clones leave the balancer and stop                  NDJSON events
 *
 * The streams end with `{ "type": "result", "ok": true|false, ... }`. A client that disconnects during a
 * deploy cancels it: the deploy rolls back and the lock is released.
 *
 * @example
 *   createFleetApi(fleet, token, logger).listen(0, '127.0.0.1');
 */
export function createFleetApi(
  fleet: Fleet,
  token: string,
  logger: Logger,
  /** Answers the requests it owns first (the dashboard, which has its own login). */
  before?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Server {
  const checkToken = bearerCheck(token);
  return createServer(async (req, res) => {
    try {
      if (before?.(req, res)) return;
      checkToken(req);
      const route = `${req.method} ${new URL(req.url ?? '/', 'http://fleet').pathname}`;
      switch (route) {
        case 'GET /status':
          return sendJson(res, 200, fleet.status());
        case 'GET /metrics':
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          return res.end(fleetMetrics(fleet));
        case 'GET /releases':
          return sendJson(res, 200, { releases: fleet.releases() });
        case 'POST /deploy': {
          const body = (await readJsonObject(req)) as Record<string, unknown>;
          if (typeof body.release !== 'string') throw badTargetSpec('release', 'must be a release id');
          if (body.sticky !== undefined && !isStickyDuration(body.sticky))
            throw badTargetSpec('sticky', 'must be 1000 to 604800000 ms (1 s to 7 days)');
          if (
            body.batch !== undefined &&
            !(Number.isInteger(body.batch) && (body.batch as number) >= 1) &&
            !(typeof body.batch === 'string' && /^(100|[1-9]\d?)%$/.test(body.batch))
          )
            throw badTargetSpec('batch', 'must be a whole number of hosts or a percentage such as 25%');
          return stream(res, (emit, signal) => fleet.deploy(body as never, emit, signal));
        }
        case 'POST /deploy/pause':
          return sendJson(res, 200, { deploy: fleet.pauseDeploy() });
        case 'POST /deploy/resume':
          return sendJson(res, 200, { deploy: fleet.resumeDeploy() });
        case 'POST /deploy/abort':
          return sendJson(res, 200, { deploy: fleet.abortDeploy() });
        case 'POST /rollback': {
          const body = (await readJsonObject(req)) as { release?: unknown };
          const release = typeof body.release === 'string' ? body.release : undefined;
          return stream(res, (emit, signal) => fleet.rollback(emit, signal, release));
        }
        case 'POST /scale': {
          const body = (await readJsonObject(req)) as { clones?: unknown; host?: unknown };
          const n = body.clones;
          if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 256)
            throw badTargetSpec('clones', 'must be a whole number 0-256');
          if (body.host !== undefined && typeof body.host !== 'string')
            throw badTargetSpec('host', 'must be the name of a host');
          const host = body.host;
          return stream(res, (emit) => fleet.scale(n, emit, host));
        }
        case 'GET /logs': {
          const q = logsQuery(new URL(req.url ?? '/', 'http://fleet').searchParams);
          if (!q.follow) {
            const text = await fleet.logs(q.clone, q.lines, q.since);
            res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
            return res.end(text);
          }
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
          const stop = new AbortController();
          res.once('close', () => stop.abort());
          await fleet.followLogs(q, (text) => res.write(text), stop.signal);
          return res.end();
        }
        case 'POST /hosts': {
          const body = await readJsonObject(req);
          if (typeof body.host !== 'string') throw badTargetSpec('host', 'must be user@address[:port]');
          return stream(res, (emit) => fleet.addHost(body.host as string, emit));
        }
        default:
          if (req.method === 'DELETE' && route.startsWith('DELETE /hosts/')) {
            const name = decodeURIComponent(route.slice('DELETE /hosts/'.length));
            return stream(res, (emit) => fleet.removeHost(name, emit));
          }
          if (req.method === 'POST' && /^POST \/clones\/[^/]+\/drain$/.test(route)) {
            const id = decodeURIComponent(route.split('/')[2]!);
            return stream(res, (emit) => fleet.drainClone(id, emit));
          }
          throw adminNotFound(req.method ?? '', req.url ?? '');
      }
    } catch (err) {
      const e = toClonesError(err);
      if (e.status >= 500) logger.error({ err }, 'fleet API error');
      sendJson(res, e.status, e.toJSON());
    }
  });
}

async function stream(res: ServerResponse, job: Job): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const emit = (event: FleetEvent) => {
    if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
  };
  try {
    const status = await job(emit, abort.signal);
    emit({ type: 'result', ok: true, status });
  } catch (err) {
    emit({ type: 'result', ok: false, ...toClonesError(err).toJSON() });
  }
  res.end();
}

function toClonesError(err: unknown): ClonesError {
  return err instanceof ClonesError ? err : internalError(err, String((err as Error)?.message ?? err));
}
