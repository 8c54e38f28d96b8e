import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { appError, lastLogLines } from '../fleet/app-error.ts';
import type { FleetEvent } from '../fleet/index.ts';
import { printEvent } from './event-line.ts';

/**
 * What `clones up` prints while it runs: every fleet event (a deploy, rollback or scale from any client, and
 * clones changing state), one human line each, or NDJSON with `json`. A clone that exits gets the app's error
 * (or its last log line) beside it, so a crash says why without opening a file.
 *
 * @example
 *   running.fleet.watch(upEventPrinter(paths.logs, false));
 */
export function upEventPrinter(logs: string, json: boolean): (event: FleetEvent) => void {
  return (event) => {
    if (event.type === 'clone' && event.state === 'exited' && !event.host) {
      const tail = tailOf(join(logs, `${basename(event.clone)}.log`));
      // The app's error when it died of one (the log's very last line is then Node's version); a clone
      // killed by a signal printed none of its own, so an earlier logged stack would mislead.
      const error = event.signal ? undefined : appError(tail)[0];
      const last = error ?? lastLogLines(tail, 1)[0];
      const how = event.signal ? `killed by ${event.signal}` : `exit code ${event.code}`;
      const said = last?.slice(0, 300);
      printEvent(
        { ...event, reason: said ? `${how}; ${error ? 'error' : 'last line'}: ${said}` : how },
        json,
      );
      return;
    }
    // No command error follows a failed deploy here: its rollback line carries the app's error lines.
    printEvent(event, json, true);
  };
}

/** The lines of a file's last 4 KiB ([] when it cannot be read). */
function tailOf(file: string): string[] {
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 4096);
    const buf = Buffer.alloc(length);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buf.toString('utf8').split('\n');
  } catch {
    return [];
  }
}
