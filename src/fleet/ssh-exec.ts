import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Client, ClientChannel } from 'ssh2';
import { hostStepFailed, hostStepTimeout, hostUnreachable } from '../errors.ts';
import { commandFailure } from './command-failure.ts';
import type { HostSpec } from './host-spec.ts';

export interface ExecOptions {
  /** What this command is for, named in every error: `setup: check node`, `ship release 1a2b3c`. */
  step: string;
  /** Sent as the command's standard input, then EOF. Without it, the command gets EOF at once. */
  stdin?: Buffer | NodeJS.ReadableStream;
  /** Milliseconds before the command is signalled (KILL) and the call fails with CLONES_HOST_STEP_TIMEOUT. */
  timeout?: number;
  /** Resolve with the exit code instead of failing when it is not 0. */
  allowFailure?: boolean;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where a command runs: a ready connection to `host`, and how to run another command there (the kill). */
export interface ExecTarget {
  client: Client;
  host: HostSpec;
  log: Logger;
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
}

/** How often a session refused at the MaxSessions limit is tried again. */
const OPEN_ATTEMPTS = 25;
/** The first stdout line of a command run with a timeout: its process group, so it can be killed. */
const PID_MARK = 'clones-pid:';

/** An exec channel and its exit, recorded from the channel's first moment. */
interface Session {
  channel: ClientChannel;
  exit: { code?: number; signal?: string };
}

/**
 * Runs one command on an exec channel of a ready connection: feeds its stdin, collects its output and
 * settles on the channel's close with its exit status. A command with a timeout is killed with its whole
 * process group when it runs over (sshd ignores the SSH "signal" request for most sessions).
 *
 * @example
 *   const { stdout } = await sshExec({ client, host, log, exec }, 'node --version', { step: 'setup: check node' });
 */
export async function sshExec(target: ExecTarget, command: string, opts: ExecOptions): Promise<ExecResult> {
  // A command that may need stopping says first which process group it runs in: the session's shell is a
  // group leader (sshd calls setsid).
  const line = opts.timeout === undefined ? command : `printf '${PID_MARK}%s\\n' $$; ${command}`;
  const session = await openSession(target, opts.step, line);
  return run(target, opts.step, session, opts);
}

/**
 * Opens an exec channel. sshd frees a closed session's slot a moment after the close, so a refusal right at
 * the MaxSessions limit is retried briefly; the connection being gone is not. The exit is recorded from the
 * moment the channel exists: a fast command's exit status can arrive in the same read as the reply to the
 * exec request, and ssh2 emits it then, before any later listener could see it.
 */
async function openSession({ client, host }: ExecTarget, step: string, command: string): Promise<Session> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise<Session>((resolve, reject) =>
        client.exec(command, (err, channel) => {
          if (err) return reject(err);
          const exit: Session['exit'] = {};
          channel.on('exit', (code: number | null, signal?: string) => {
            if (typeof code === 'number') exit.code = code;
            if (signal) exit.signal = signal;
          });
          resolve({ channel, exit });
        }),
      );
    } catch (err) {
      const refused = /open fail/i.test((err as Error).message);
      if (!refused || attempt >= OPEN_ATTEMPTS) throw hostUnreachable(host.name, step, err);
      await sleep(20 * attempt);
    }
  }
}

/** Feeds stdin, collects output, and settles on the channel's close with its exit status. */
function run(target: ExecTarget, step: string, session: Session, opts: ExecOptions): Promise<ExecResult> {
  const { host, log } = target;
  const { channel: stream, exit } = session;
  return new Promise<ExecResult>((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      fn();
    };
    let group = 0;
    const timer =
      opts.timeout === undefined
        ? undefined
        : setTimeout(() => {
            settle(() => reject(hostStepTimeout(host.name, step, opts.timeout!)));
            stream.close();
            if (group > 0) {
              const kill = `kill -KILL -- -${group} 2>/dev/null || kill -KILL ${group} 2>/dev/null; true`;
              target
                .exec(kill, { step: `${step}: stop after timeout` })
                .catch((err: Error) =>
                  log.warn({ host: host.name, err: err.message }, 'could not stop a timed-out command'),
                );
            }
          }, opts.timeout);
    let head = opts.timeout !== undefined;
    stream.on('data', (d: Buffer) => {
      stdout.push(d);
      if (!head) return;
      const text = Buffer.concat(stdout).toString('latin1');
      const end = text.indexOf('\n');
      if (end < 0) return;
      head = false;
      if (text.startsWith(PID_MARK)) group = Number(text.slice(PID_MARK.length, end)) || 0;
    });
    stream.stderr.on('data', (d: Buffer) => stderr.push(d));
    // Writing stdin to a command that already exited fails: its exit status is what matters.
    stream.on('error', () => {});
    stream.once('close', () => {
      let out = Buffer.concat(stdout).toString('utf8');
      if (opts.timeout !== undefined && out.startsWith(PID_MARK)) out = out.slice(out.indexOf('\n') + 1);
      const err = Buffer.concat(stderr).toString('utf8');
      const { code, signal } = exit;
      if (code === undefined && signal === undefined) {
        return settle(() =>
          reject(hostUnreachable(host.name, step, new Error('the SSH connection was lost'))),
        );
      }
      const status = code ?? 128;
      if (status === 0 || opts.allowFailure)
        return settle(() => resolve({ code: status, stdout: out, stderr: err }));
      settle(() => reject(hostStepFailed(host.name, step, commandFailure(status, err, signal))));
    });
    const input = opts.stdin;
    if (input === undefined) stream.end();
    else if (Buffer.isBuffer(input)) stream.end(input);
    else {
      (input as NodeJS.ReadableStream).once('error', (e: Error) => {
        settle(() => reject(hostStepFailed(host.name, step, `reading the input failed: ${e.message}`)));
        stream.close();
      });
      (input as NodeJS.ReadableStream).pipe(stream);
    }
  });
}
