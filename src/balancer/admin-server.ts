import { createServer, type Server } from 'node:http';
import { bearerCheck, readJsonObject, sendJson } from '../admin-http.ts';
import { adminNotFound, badTargetSpec, ClonesError, internalError } from '../errors.ts';
import type { Balancer } from './balancer-contract.ts';
import type { ResolvedOptions, TargetSpec } from './options.ts';

/**
 * The admin API, on its own port (loopback by default) and behind a bearer token compared in constant time.
 *
 *   GET    /state                 groups and targets with health, in-flight, release
 *   GET    /targets               the targets
 *   POST   /targets               { id, url, group?, release?, weight? } -> 201
 *   DELETE /targets/:id           drain, then remove -> 202 (?wait=1 answers when done)
 *   POST   /targets/:id/drain     -> 202 (?wait=1 likewise)
 *   PUT    /groups                { "blue": 90, "green": 10 }
 *   PUT    /releases              { "releases": ["<digest>"] } the version guard (null lifts it)
 *   GET    /metrics               Prometheus text
 *   POST   /tls/reload            reload the TLS certificates (files changed, renewed)
 *
 * @example
 *   const admin = createAdminServer(balancer, options);
 *   admin.listen(9090, '127.0.0.1');
 */
export function createAdminServer(balancer: Balancer, options: ResolvedOptions): Server {
  const checkToken = bearerCheck(options.admin.token);
  const logger = options.logger;
  return createServer(async (req, res) => {
    try {
      checkToken(req);
      const url = new URL(req.url ?? '/', 'http://admin');
      const parts = url.pathname.split('/').filter(Boolean).map(decodePart);
      const wait = url.searchParams.get('wait') === '1';
      const route = `${req.method} /${parts[0] ?? ''}${parts.length > 1 ? '/:id' : ''}${parts[2] ? `/${parts[2]}` : ''}`;
      switch (route) {
        case 'GET /state':
          return sendJson(res, 200, balancer.state());
        case 'GET /targets':
          return sendJson(res, 200, { targets: balancer.state().targets });
        case 'POST /targets': {
          const spec = (await readJsonObject(req)) as unknown as TargetSpec;
          return sendJson(res, 201, balancer.addTarget(spec));
        }
        case 'DELETE /targets/:id':
        case 'POST /targets/:id/drain': {
          const id = parts[1]!;
          const job = route.startsWith('DELETE') ? balancer.removeTarget(id) : balancer.drain(id);
          if (wait) await job;
          else job.catch((err) => logger.error({ err, target: id }, 'drain failed'));
          return sendJson(res, wait ? 200 : 202, { id, draining: true });
        }
        case 'PUT /groups': {
          const weights = (await readJsonObject(req)) as Record<string, number>;
          if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) {
            throw badTargetSpec('body', 'must be an object of group weights');
          }
          balancer.setGroupWeights(weights);
          return sendJson(res, 200, { groups: balancer.state().groups });
        }
        case 'PUT /releases': {
          const body = (await readJsonObject(req)) as { releases?: unknown };
          const list = body?.releases;
          if (list !== null && (!Array.isArray(list) || list.some((r) => typeof r !== 'string'))) {
            throw badTargetSpec('releases', 'must be an array of release ids, or null');
          }
          balancer.setReleases(list === null ? undefined : (list as string[]));
          return sendJson(res, 200, { releases: list });
        }
        case 'POST /tls/:id':
          // Reads the certificate files again; a bad file answers its CLONES_TLS_* error and changes nothing.
          if (parts[1] !== 'reload' || parts.length > 2) throw adminNotFound(req.method ?? '', url.pathname);
          return sendJson(res, 200, { certificates: await balancer.reloadTls() });
        case 'GET /metrics':
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(balancer.metrics());
          return;
        default:
          throw adminNotFound(req.method ?? '', url.pathname);
      }
    } catch (err) {
      const e = err instanceof ClonesError ? err : internalError(err);
      if (e.status >= 500) logger.error({ err }, 'admin API error');
      sendJson(res, e.status, e.toJSON());
    }
  });
}

/** A path segment, %-decoded; a malformed escape is the caller's 400, not our 500. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw badTargetSpec('path', `"${part.slice(0, 64)}" has a malformed %-escape`);
  }
}
