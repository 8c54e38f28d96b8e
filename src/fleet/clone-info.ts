export type CloneState = 'starting' | 'serving' | 'draining' | 'stopped' | 'backoff' | 'failed';

/**
 * One clone as `clones status` shows it: what a supervisor reports of each clone it runs, and a host agent
 * of each clone on its host.
 *
 * @example
 *   const serving = supervisor.list().filter((c: CloneInfo) => c.state === 'serving');
 */
export interface CloneInfo {
  id: string;
  release: string;
  group: string;
  port: number;
  pid: number | null;
  state: CloneState;
  restarts: number;
  startedAt: string;
  /** Milliseconds from the process's start to serving (its /up passed and the balancer has it); null before. */
  readyMs: number | null;
  reason?: string;
  /** CPU time and RSS, measured on the clone's own host (a host agent's answer carries them). */
  usage?: { cpuSeconds: number; rss: number };
}

/**
 * The balancer group of a release: its first 12 hex digits.
 *
 * @example
 *   balancer.addTarget({ id: 'c1', url, group: groupOf(release), release });
 */
export const groupOf = (release: string): string => release.slice(0, 12);
