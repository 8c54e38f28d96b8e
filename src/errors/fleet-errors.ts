import { ClonesError, redactUrl } from './clones-error.ts';

// Errors of clones/fleet: releases, deploys, clones, the hosts of a fleet and their agents.
// Each factory makes one coded ClonesError, e.g. `throw unknownRelease('3f2a9c');`

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
