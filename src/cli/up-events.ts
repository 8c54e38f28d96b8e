import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { FleetEvent } from '../fleet/index.ts';
import { printEvent } from './args.ts';

/**
 * What `clones up` prints while it runs: every fleet event (a deploy, rollback or scale from any client, and
 * clones changing state), one human line each, or NDJSON with `json`. A clone that exits gets its own last
 * log line beside it, so a crash says why without opening a file.
 *
 * @example
 *   running.fleet.watch(upEventPrinter(paths.logs, false));
 */
export function upEventPrinter(logs: string, json: boolean): (event: FleetEvent) => void {
  return (event) => {
    if (event.type === 'clone' && event.state === 'exited' && !event.host) {
      const last = lastLine(join(logs, `${basename(event.clone)}.log`));
      const how = event.signal ? `killed by ${event.signal}` : `exit code ${event.code}`;
      printEvent({ ...event, reason: last ? `${how}; last line: ${last}` : how }, json);
      return;
    }
    printEvent(event, json);
  };
}

/** The last non-empty line of a file (read from its last 4 KiB), or '' when there is none. */
function lastLine(file: string): string {
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
    return buf.toString('utf8').trimEnd().split('\n').pop()?.slice(0, 300) ?? '';
  } catch {
    return '';
  }
}
