/**
 * Every error the project throws, in one place. Each carries a stable `code` (listed in docs/errors.md)
 * and the HTTP status an adapter answers with when the error ends a request.
 *
 * @example
 *   if (err instanceof ClonesError && err.code === 'CLONES_SESSION_STORE_UNAVAILABLE') retryLater();
 */
export class ClonesError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClonesError';
    this.code = code;
    this.status = options.status ?? 500;
  }

  /** The same status under the name Fastify and http-errors read. */
  get statusCode(): number {
    return this.status;
  }

  /** Frameworks show the message of an error that says it may be exposed. */
  get expose(): boolean {
    return true;
  }

  /** The JSON body every HTTP error answer carries: `{ "error": { "code", "message" } }`. */
  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/**
 * Something that is not a ClonesError reached an HTTP edge (an adapter, an admin API): answered as 500
 * `CLONES_INTERNAL` with `message` (the details stay in `cause`, for the log). The one place that wraps.
 *
 * @example
 *   const e = err instanceof ClonesError ? err : internalError(err);
 */
export const internalError = (cause: unknown, message = 'internal error'): ClonesError =>
  new ClonesError('CLONES_INTERNAL', message, { cause });

/** An option or URL was wrong at start-up; the message names the option. */
export const invalidOption = (option: string, message: string): ClonesError =>
  new ClonesError('CLONES_INVALID_OPTION', `${option}: ${message}`);

/**
 * Several options were wrong at once: one error naming every one, a line each in the order they were checked,
 * so a user fixes them all in one go (a single issue reads exactly as `invalidOption`).
 *
 * @example
 *   throw invalidOptions([{ option: 'a', message: 'must be true or false' }, { option: 'b', message: '...' }]);
 */
export const invalidOptions = (issues: readonly { option: string; message: string }[]): ClonesError =>
  new ClonesError('CLONES_INVALID_OPTION', issues.map((i) => `${i.option}: ${i.message}`).join('\n'));

/** The session secret is missing or shorter than 32 bytes. */
export const weakSecret = (message: string): ClonesError =>
  new ClonesError('CLONES_SESSION_SECRET_WEAK', message);

/** SESSION_STORE / `store` is not a URL this project knows. */
export const badStoreUrl = (url: string, why: string): ClonesError =>
  new ClonesError('CLONES_SESSION_STORE_URL', `cannot use session store "${redactUrl(url)}": ${why}`);

/** `memory:` was asked for while NODE_ENV=production. */
export const memoryInProduction = (): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_MEMORY_IN_PRODUCTION',
    'the memory: session store keeps sessions inside one clone and is for tests only; NODE_ENV is production',
  );

/** The store did not answer, or answered with an error; the request fails closed with 503. */
export const storeUnavailable = (store: string, cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_STORE_UNAVAILABLE',
    `session store ${store} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** `listByUser`/`destroyByUser`/`bindUser` on a store (or sealed cookies) that keeps no per-user index. */
export const sessionByUserUnsupported = (store: string): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_BY_USER_UNSUPPORTED',
    `session store ${store} cannot list or destroy sessions by user (no per-user index)`,
    { status: 501 },
  );

/** DynamoDB: the table lacks the per-user index (or it is still being built), so sessions by user cannot work. */
export const userIndexMissing = (table: string, index: string, why: string): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_USER_INDEX_MISSING',
    `DynamoDB table ${table} ${why}: sessions by user need the global secondary index "${index}" (hash key "uid", string); see docs/sessions.md`,
    { status: 503 },
  );

/** The store took longer than `storeTimeout`. */
export const storeTimeout = (store: string, ms: number): ClonesError =>
  new ClonesError('CLONES_SESSION_STORE_TIMEOUT', `session store ${store} did not answer within ${ms} ms`, {
    status: 503,
  });

/** The store's schema was written by a newer version of clones; this version will not guess how to read it. */
export const storeSchemaTooNew = (store: string, found: number, supported: number): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_STORE_SCHEMA',
    `session store ${store} has schema version ${found}, newer than ${supported} which this version of clones understands; upgrade clones on this host, or point it at another store`,
    { status: 503 },
  );

/** An atomic update kept losing the compare-and-set race beyond the retry limit. */
export const updateConflict = (attempts: number): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_CONFLICT',
    `session update lost the compare-and-set race ${attempts} times; giving up`,
    { status: 409 },
  );

/** The sealed session cookie would exceed the browser's 4,096-byte limit. */
export const cookieTooLarge = (bytes: number, limit: number): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_COOKIE_TOO_LARGE',
    `the Set-Cookie header for the sealed session would be ${bytes} bytes, over the ${limit}-byte limit browsers keep; store less in the session or use a server-side store`,
    { status: 500 },
  );

/** Session data was read before the session was loaded (lazy sessions load on `await session.load()`). */
export const notLoaded = (key: string): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_NOT_LOADED',
    `session key "${key}" was read before the session was loaded: call "await req.session.load()" first, or mount the middleware with { eager: true }`,
  );

/** Session data must be JSON: a value that does not survive JSON was assigned. */
export const notSerializable = (key: string, why: string): ClonesError =>
  new ClonesError('CLONES_SESSION_NOT_SERIALIZABLE', `session key "${key}" cannot be stored: ${why}`);

/** The session was changed after the response had started and the change could not be saved. */
export const headersSent = (): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_HEADERS_SENT',
    'the session changed after the response headers were sent; call "await req.session.save()" before streaming',
  );

/**
 * An optional driver package (ioredis, pg, @aws-sdk/client-dynamodb, better-sqlite3) is not installed: only
 * the backends an app uses need theirs. The message is the install command.
 */
export const driverMissing = (pkg: string, usedFor: string): ClonesError =>
  new ClonesError(
    'CLONES_DRIVER_MISSING',
    `${usedFor} needs the "${pkg}" package, which is not installed: run \`npm install ${pkg}\``,
  );

/** A driver is installed but cannot load (a native binding that failed to build, say); `fix` says how. */
export const driverBroken = (pkg: string, why: string, fix: string): ClonesError =>
  new ClonesError('CLONES_DRIVER_BROKEN', `"${pkg}" is installed but cannot be loaded (${why}): ${fix}`);

/** A binary the test harness needs is missing and cannot be installed here. */
export const missingBinary = (binary: string, installCommand: string): ClonesError =>
  new ClonesError('CLONES_MISSING_BINARY', `${binary} is not installed; run: ${installCommand}`);

/** The balancer has no target that can take the request (none registered, all unhealthy or draining). */
export const noTarget = (why: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_NO_TARGET', `no clone can take this request: ${why}`, { status: 503 });

/**
 * The clone refused, reset or broke the connection, and the request could not be retried. The message names
 * no clone and carries no library text (clients are anonymous); the cause goes to the log.
 */
export const upstreamFailed = (cause: unknown): ClonesError =>
  new ClonesError('CLONES_BALANCER_UPSTREAM_ERROR', 'the clone failed and the request could not be retried', {
    status: 502,
    cause,
  });

/** The clone did not answer within `upstream.timeout`. */
export const upstreamTimeout = (ms: number): ClonesError =>
  new ClonesError('CLONES_BALANCER_UPSTREAM_TIMEOUT', `the clone did not answer within ${ms} ms`, {
    status: 504,
  });

/** The request waited `upstream.queueTimeout` for a free connection to a clone; answered with Retry-After. */
export const queueTimeout = (ms: number): ClonesError =>
  new ClonesError(
    'CLONES_BALANCER_QUEUE_TIMEOUT',
    `no connection to a clone was free within ${ms} ms; retry shortly`,
    { status: 503 },
  );

/** The request body stalled or arrived slower than `requestBody.minRate` allows; the connection closes. */
export const bodyTimeout = (why: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_BODY_TIMEOUT', `the request body ${why}`, { status: 408 });

/** The request has more header lines than `server.maxHeaderCount`; the connection closes. */
export const tooManyHeaders = (limit: number): ClonesError =>
  new ClonesError('CLONES_BALANCER_HEADERS_TOO_LARGE', `request has more than ${limit} header lines`, {
    status: 431,
  });

/** The balancer's port is taken (EADDRINUSE) or needs privileges (EACCES): the message says how to pick another. */
export const portUnavailable = (host: string, port: number, cause: NodeJS.ErrnoException): ClonesError =>
  new ClonesError(
    'CLONES_PORT_UNAVAILABLE',
    cause.code === 'EACCES'
      ? `port ${port} on ${host} needs privileges this process lacks: choose a port above 1023 with --port`
      : `port ${port} on ${host} is already in use (another clones up or server?): stop it, or choose another with --port`,
    { status: 500, cause },
  );

/** The request breaks RFC 9112 framing or header rules (a request-smuggling vector); the connection closes. */
export const badRequest = (reason: string, status = 400): ClonesError =>
  new ClonesError('CLONES_BALANCER_BAD_REQUEST', `rejected request: ${reason}`, { status });

/** The request's header block is larger than `server.maxHeaderSize`. */
export const headersTooLarge = (limit: number): ClonesError =>
  new ClonesError('CLONES_BALANCER_HEADERS_TOO_LARGE', `request headers exceed ${limit} bytes`, {
    status: 431,
  });

/** The client did not send its whole header block within `server.headersTimeout`. */
export const requestTimeout = (): ClonesError =>
  new ClonesError('CLONES_BALANCER_REQUEST_TIMEOUT', 'the request headers did not arrive in time', {
    status: 408,
  });

/** An admin API call without the right bearer token. */
export const adminUnauthorized = (): ClonesError =>
  new ClonesError('CLONES_BALANCER_UNAUTHORIZED', 'admin API: missing or wrong bearer token', {
    status: 401,
  });

/** An admin API call or method naming a target the balancer does not know. */
export const unknownTarget = (id: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_UNKNOWN_TARGET', `no target with id "${id}"`, { status: 404 });

/** `addTarget` with an id that is already registered. */
export const duplicateTarget = (id: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_DUPLICATE_TARGET', `a target with id "${id}" already exists`, {
    status: 409,
  });

/** An admin API body or a target/group argument is malformed; the message names the field. */
export const badTargetSpec = (field: string, message: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_BAD_SPEC', `${field}: ${message}`, { status: 400 });

/** No such admin API route. */
export const adminNotFound = (method: string, path: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_NOT_FOUND', `no admin route ${method} ${path}`, { status: 404 });

/**
 * A TLS certificate or key of the balancer cannot be used: unreadable file, no PEM in it, a key that does not
 * match its certificate, a chain out of order, a directory without any pair. At start-up the balancer does
 * not start; on a reload the old certificates stay in use. `reason` is the stable part of the code.
 */
export const tlsUnusable = (reason: keyof typeof TLS_CODES, file: string, why: string): ClonesError =>
  new ClonesError(TLS_CODES[reason], `${file}: ${why}`, { status: 422 });

const TLS_CODES = {
  FILE: 'CLONES_TLS_FILE',
  PEM: 'CLONES_TLS_PEM',
  KEY_MISMATCH: 'CLONES_TLS_KEY_MISMATCH',
  CHAIN: 'CLONES_TLS_CHAIN',
  DIR_EMPTY: 'CLONES_TLS_DIR_EMPTY',
} as const;

/** `reloadTls` (admin `POST /tls/reload`, SIGHUP) on a balancer started without TLS. */
export const tlsOff = (): ClonesError =>
  new ClonesError('CLONES_TLS_OFF', 'this balancer serves no TLS: start it with tls.cert and tls.key', {
    status: 409,
  });

/** A certificate is expired or not yet valid: logged as a warning (clients will refuse it), not thrown. */
export const tlsExpired = (file: string, notAfter: string): ClonesError =>
  new ClonesError(
    'CLONES_TLS_EXPIRED',
    `${file}: the certificate is not valid now (valid until ${notAfter})`,
  );

/** `engine: 'haproxy'` was asked for but no haproxy binary is installed; the message is the install command. */
export const haproxyMissing = (): ClonesError =>
  new ClonesError(
    'CLONES_HAPROXY_MISSING',
    'the haproxy engine needs HAProxy 2.6+ (built with Lua, OpenSSL and the Prometheus exporter): run `sudo apt-get install -y haproxy`',
  );

/**
 * HAProxy refused what the engine asked of it: a generated config that `haproxy -c` rejects, a process that
 * exits, a runtime API command that fails or does not answer. `step` names what was being done.
 */
export const haproxyFailed = (step: string, detail: string): ClonesError =>
  new ClonesError('CLONES_HAPROXY_FAILED', `haproxy: ${step}: ${detail}`, { status: 503 });

/** Hides the password in a URL before it is shown in a message or a log line. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

/** The session was destroyed (logout, or another request) while this request was updating it. */
export const sessionGone = (): ClonesError =>
  new ClonesError('CLONES_SESSION_GONE', 'the session was destroyed while this request was changing it', {
    status: 409,
  });

/** Bad command-line input (unknown flag, missing or malformed value); the CLI exits with code 2. */
export const usageError = (message: string): ClonesError =>
  new ClonesError('CLONES_USAGE', message, { status: 400 });

/** The app directory cannot become a release: missing, or no entry file to run. */
export const badAppDir = (dir: string, why: string): ClonesError =>
  new ClonesError('CLONES_FLEET_APP_DIR', `cannot build a release of ${dir}: ${why}`, { status: 400 });

/** The environment a release declares (`clones.json` env, `--env`) is malformed, reserved or a secret. */
export const badAppEnv = (dir: string, errors: string[]): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_APP_ENV',
    `cannot build a release of ${dir}: ${errors.length} env error(s):\n  ${errors.join('\n  ')}`,
    { status: 400 },
  );

/** A command needs a running `clones up` and found none in this directory's `.clones/`. */
export const fleetNotRunning = (home: string, why: string): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_NOT_RUNNING',
    `no running "clones up" found in ${home} (${why}); start one with: clones up [app-dir]`,
    { status: 503 },
  );

/** Another deploy (or rollback, or scale) holds the deploy lock. */
export const deployLocked = (holder: string): ClonesError =>
  new ClonesError('CLONES_FLEET_LOCKED', `another deploy is running: ${holder}`, { status: 409 });

/** A release id that is not in `.clones/releases/`. */
export const unknownRelease = (release: string): ClonesError =>
  new ClonesError('CLONES_FLEET_UNKNOWN_RELEASE', `no release "${release}" in .clones/releases`, {
    status: 404,
  });

/** The app holds a symbolic link that leaves its directory; a release would ship what it points at. */
export const linkOutsideApp = (app: string, path: string, link: string): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_LINK_OUTSIDE_APP',
    `${app}: ${path} -> ${link} points outside the app directory; copy what it needs into the app, or link inside it`,
    { status: 400 },
  );

/** A release prefix that names more than one release; the message lists them. */
export const ambiguousRelease = (prefix: string, matches: string[]): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_AMBIGUOUS_RELEASE',
    `"${prefix}" names ${matches.length} releases (${matches.map((m) => m.slice(0, 12)).join(', ')}): give more characters`,
    { status: 409 },
  );

/** `clones rollback` with no earlier release to go back to. */
export const noPreviousRelease = (): ClonesError =>
  new ClonesError('CLONES_FLEET_NO_PREVIOUS', 'there is no previous release to roll back to', {
    status: 409,
  });

/** A clone did not become ready (health gate timeout, exit before ready, crash loop); the message says why. */
export const cloneFailed = (clone: string, why: string): ClonesError =>
  new ClonesError('CLONES_FLEET_CLONE_FAILED', `clone ${clone} failed: ${why}`, { status: 500 });

/**
 * A clone's health path did not answer 200 within the ready timeout: `said` is what the last check got
 * (`GET /up answered 404 "Cannot GET /up"`, `GET /up failed: ECONNREFUSED`), `detail` the app's log lines.
 */
export const cloneNotReady = (clone: string, within: string, said: string, detail = ''): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_CLONE_FAILED',
    `clone ${clone} was not ready within ${within}: ${said}${detail}`,
    { status: 500 },
  );

/** `--health-path` or clones.json `healthPath` is not a path a check can GET. */
export const badHealthPath = (where: string, value: unknown): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_HEALTH_PATH',
    `${where}: ${JSON.stringify(value)} is not a health path: it must start with "/" and hold only URL path and query characters, no spaces, quotes or # (percent-encode the rest), e.g. "/up" or "/healthz"`,
    { status: 400 },
  );

/** A deploy failed and was rolled back; the message gives the reason and the release now serving. */
export const deployFailed = (why: string, rolledBackTo: string | undefined): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_DEPLOY_FAILED',
    // The release now serving first: the reason may end in the app's error lines.
    `deploy failed${rolledBackTo ? `, rolled back to ${rolledBackTo.slice(0, 12)}` : ''}: ${why}`,
    { status: 500 },
  );

/** The deploy's client went away (Ctrl-C, killed) before it ended; the deploy is rolled back. */
export const deployCancelled = (): ClonesError =>
  new ClonesError('CLONES_FLEET_CANCELLED', 'the deploy was cancelled (its client disconnected)', {
    status: 499,
  });

/** An operator aborted the deploy in progress (`clones deploy --abort`, the dashboard): it rolls back. */
export const deployAborted = (): ClonesError =>
  new ClonesError('CLONES_FLEET_ABORTED', 'the deploy was aborted by an operator (clones deploy --abort)', {
    status: 409,
  });

/** `clones deploy --pause|--resume|--abort` with nothing to act on; `why` says what runs instead. */
export const noDeployInProgress = (verb: string, why: string): ClonesError =>
  new ClonesError('CLONES_FLEET_NO_DEPLOY', `cannot ${verb}: ${why}`, { status: 409 });

/** `clones drain CLONE` (or the API) named a clone the fleet does not run. */
export const unknownClone = (id: string): ClonesError =>
  new ClonesError('CLONES_FLEET_UNKNOWN_CLONE', `the fleet runs no clone "${id}" (see clones status)`, {
    status: 404,
  });

/**
 * Ctrl-C in `clones deploy|rollback|scale`: the command dropped its request (the fleet rolls a deploy back by
 * itself); `runs` says what the fleet runs now, or that it is still going back. The CLI exits 130.
 */
export const actionInterrupted = (action: string, runs: string): ClonesError =>
  new ClonesError('CLONES_FLEET_CANCELLED', `${action} cancelled (Ctrl-C): ${runs}`, { status: 499 });

/** The canary's 5xx rate, measured by the balancer, exceeded the stable group's by more than the margin. */
export const canaryBreach = (detail: string): ClonesError =>
  new ClonesError('CLONES_FLEET_CANARY_BREACH', `canary failed: ${detail}`, { status: 500 });

/** After a rollout, a clone or balancer target still runs another release (never expected; checked anyway). */
export const staleClones = (count: number): ClonesError =>
  new ClonesError('CLONES_FLEET_STALE', `${count} clone(s) still run another release after the rollout`, {
    status: 500,
  });

/** The fleet has no desired state yet (nothing was ever started with `clones up`). */
export const noDesiredState = (): ClonesError =>
  new ClonesError('CLONES_FLEET_NO_STATE', 'the fleet has no desired state yet: run clones up first', {
    status: 503,
  });

/** A data-layer URL (`primary`, `replicas`, `cache`, DATABASE_URL, ...) that clones/data cannot use. */
export const badDataUrl = (option: string, url: string, why: string): ClonesError =>
  new ClonesError('CLONES_DATA_URL', `${option}: cannot use "${redactUrl(url)}": ${why}`);

/** The primary database refused, dropped or never answered a connection: writes cannot be made now. */
export const primaryUnavailable = (cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_DATA_PRIMARY_UNAVAILABLE',
    `the primary database is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** No database server (no replica in rotation, and not the primary) could serve a read. */
export const dataUnavailable = (cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_DATA_UNAVAILABLE',
    `no database server could serve the read: ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** A database or cache call took longer than the data layer's `timeout`. */
export const dataTimeout = (what: string, ms: number): ClonesError =>
  new ClonesError('CLONES_DATA_TIMEOUT', `${what} did not answer within ${ms} ms`, { status: 503 });

/** A statement that writes was sent through a read (`query`, `cached`), which may run on a read-only replica. */
export const readOnlyViolation = (detail: string): ClonesError =>
  new ClonesError(
    'CLONES_DATA_READ_ONLY',
    `a read tried to write (${detail}); send writes through execute(), transaction() or write()`,
  );

/** Test hosts (network namespaces, a bridge, sshd) need root, and this process is not root. */
export const hostsNeedRoot = (what: string): ClonesError =>
  new ClonesError(
    'CLONES_HOST_NEEDS_ROOT',
    `${what} needs root (it creates network namespaces, a bridge and sshd servers); run it as root, e.g. sudo npm run hosts -- up 3`,
  );

/** The host's SSH key is not in known_hosts; nothing was sent to it. */
export const hostKeyUnknown = (host: string, fingerprint: string, knownHosts: string): ClonesError =>
  new ClonesError(
    'CLONES_HOST_KEY_UNKNOWN',
    `host ${host}: its SSH host key ${fingerprint} is not in ${knownHosts}; check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then accept it with --accept-new-host-keys (or add it with ssh-keyscan)`,
  );

/** The host's SSH key differs from the one known_hosts holds for it: refused whatever the options. */
export const hostKeyChanged = (
  host: string,
  fingerprint: string,
  knownHosts: string,
  line: number,
): ClonesError =>
  new ClonesError(
    'CLONES_HOST_KEY_CHANGED',
    `host ${host}: its SSH host key CHANGED (now ${fingerprint}; ${knownHosts} line ${line} holds another): someone may be intercepting the connection, or the host was reinstalled; if you know why, remove the old line (ssh-keygen -R ${host} -f ${knownHosts}) and accept the new key`,
  );

/** The host could not be reached over SSH (refused, no route, timeout, connection lost). */
export const hostUnreachable = (host: string, step: string, cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_HOST_UNREACHABLE',
    `host ${host} is unreachable (step "${step}"): ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** The host refused our SSH key. */
export const hostAuthFailed = (host: string, user: string, identity: string, step: string): ClonesError =>
  new ClonesError(
    'CLONES_HOST_AUTH_FAILED',
    `host ${host} refused SSH key ${identity} for user ${user} (step "${step}"); add its public key to ~${user}/.ssh/authorized_keys there`,
  );

/** A command run on a host over SSH exited non-zero; the message carries its last stderr lines. */
export const hostStepFailed = (host: string, step: string, detail: string): ClonesError =>
  new ClonesError('CLONES_HOST_STEP_FAILED', `host ${host}, step "${step}": ${detail}`);

/** A command run on a host over SSH did not finish within its timeout (it was signalled to stop). */
export const hostStepTimeout = (host: string, step: string, ms: number): ClonesError =>
  new ClonesError(
    'CLONES_HOST_STEP_TIMEOUT',
    `host ${host}, step "${step}": did not finish within ${ms} ms`,
    { status: 504 },
  );

/** A shipped file's content did not match its sha256 on arrival; it was not stored. */
export const hostBlobCorrupt = (host: string, step: string, detail: string): ClonesError =>
  new ClonesError('CLONES_HOST_BLOB_CORRUPT', `host ${host}, step "${step}": ${detail}`);

/** The host has no Node.js, or one older than clones needs. */
export const hostNodeMissing = (host: string, step: string, found: string): ClonesError =>
  new ClonesError(
    'CLONES_HOST_NODE',
    `host ${host}, step "${step}": clones needs Node.js >= 20 on the host, found ${found || 'none'}; install it (e.g. from NodeSource or the distribution's nodejs package) so that "node" is on the PATH of SSH commands`,
  );

/** A tree was shipped to a directory that already holds a different tree (trees are immutable). */
export const hostTreeConflict = (host: string, dir: string, detail: string): ClonesError =>
  new ClonesError(
    'CLONES_HOST_TREE_CONFLICT',
    `host ${host}: ${dir} ${detail}; trees are immutable, ship to a new directory`,
  );

/** The hosts of a fleet (clones.json `hosts` and `ssh`, or `--host`) are malformed; every problem is listed. */
export const badHostsConfig = (errors: string[]): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_HOSTS_CONFIG',
    `the fleet's hosts are misconfigured: ${errors.length} error(s):\n  ${errors.join('\n  ')}`,
    { status: 400 },
  );

/** More than one host, and a session store that lives inside one host (or one process). */
export const storeNotShared = (store: string, hosts: number): ClonesError =>
  new ClonesError(
    'CLONES_FLEET_STORE_NOT_SHARED',
    `SESSION_STORE ${redactUrl(store)} keeps sessions on one host, but the fleet has ${hosts} hosts: a user would lose their session when the balancer sends them to another host; use a shared store such as redis://cache-host:6379`,
    { status: 400 },
  );

/** A host agent did not answer (or answered with an error); the message names the host and the step. */
export const agentUnavailable = (host: string, step: string, why: string): ClonesError =>
  new ClonesError('CLONES_FLEET_AGENT_UNAVAILABLE', `host ${host}: ${step}: ${why}`, { status: 503 });

/** `clones setup` found a host lacking what clones needs (Node version, disk, a free port). */
export const hostCheckFailed = (host: string, check: string, why: string): ClonesError =>
  new ClonesError('CLONES_FLEET_HOST_CHECK', `host ${host}: ${check}: ${why}`, { status: 400 });

/** A host name that the fleet does not have (`clones hosts remove`, `clones logs --host`). */
export const unknownHost = (name: string): ClonesError =>
  new ClonesError('CLONES_FLEET_UNKNOWN_HOST', `the fleet has no host "${name}"`, { status: 404 });

/** A host agent API request is malformed; the message names the field. */
export const agentBadRequest = (field: string, message: string): ClonesError =>
  new ClonesError('CLONES_AGENT_BAD_REQUEST', `${field}: ${message}`, { status: 400 });
