/** Prints a fleet event: NDJSON with --json, else one short human line. */
export function printEvent(event: object, json: boolean, detail = false): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(event)}\n`);
    return;
  }
  const line = eventLine(event, detail);
  if (line !== undefined) console.log(line);
}

/**
 * The human line of a fleet event, or undefined for events that have none.
 *
 * @example
 *   eventLine({ type: 'step', weight: 10, wait: 30000 }); // '  canary at 10%, watching for 30 s'
 */
export function eventLine(fleetEvent: object, detail = false): string | undefined {
  // Events come typed (FleetEvent) or parsed from a stream; the line reads them as plain records.
  const event = fleetEvent as Record<string, unknown>;
  const short = (r: unknown) => (typeof r === 'string' ? r.slice(0, 12) : '');
  switch (event.type) {
    case 'release':
      return `release ${short(event.release)} ${event.created ? 'built' : 'already built'}`;
    case 'deploy':
      return `${event.action} ${short(event.from)} -> ${short(event.release)} (${event.strategy})`;
    case 'clone':
      return `  ${String(event.clone).padEnd(5)} ${short(event.release)}  ${event.state}${event.port ? ` :${event.port}` : ''}${event.reason ? `  ${event.reason}` : ''}`;
    case 'host':
      return `  host ${String(event.host).padEnd(14)} ${String(event.step).padEnd(16)} ${event.outcome}${event.detail ? `  ${event.detail}` : ''}${event.bytes ? `  (${event.bytes} bytes)` : ''}`;
    case 'step':
      return `  canary at ${event.weight}%, watching for ${Number(event.wait) / 1000} s`;
    case 'rollback': {
      // A deploy prints the whole reason (the app's error lines) once, in its error message at the end:
      // here only its first line, unless `detail` (clones up, which has no such message).
      const reason = String(event.reason);
      const said = detail ? reason : reason.split('\n')[0]!.replace(/; [^;]*:$/, '');
      return `failed: ${said}\nrolling back to ${short(event.to)}`;
    }
    case 'converged':
      // A canary step's record still names the stable release: say that the canary runs beside it.
      return event.canary
        ? `  canary ${short(event.canary)} serving beside ${short(event.release)} (epoch ${event.epoch})`
        : `  converged on ${short(event.release)} (epoch ${event.epoch})`;
    case 'unchanged':
      return `release ${short(event.release)} is already deployed; nothing to do`;
    case 'scale':
      return `scale ${event.from} -> ${event.clones} clones of ${short(event.release)}${event.host ? ` on ${event.host}` : ''}`;
    case 'paused':
      return `canary ${short(event.release)} paused by an operator: its step waits (clones deploy --resume)`;
    case 'resumed':
      return `canary ${short(event.release)} resumed`;
    case 'done':
      return `done: ${short(event.release)}${event.clones !== undefined ? `, ${event.clones} clones` : ''}${event.ms !== undefined ? ` in ${(Number(event.ms) / 1000).toFixed(1)} s` : ''}`;
    default:
      return undefined;
  }
}
