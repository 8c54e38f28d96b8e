import { ClonesError } from './clones-error.ts';

// Errors of a host reached over SSH: its key, the connection, the commands run there.
// Each factory makes one coded ClonesError, e.g. `throw hostStepFailed('web-2', 'unpack release', 'tar: short read');`

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
