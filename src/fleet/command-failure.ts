const STDERR_TAIL_LINES = 10;
const STDERR_TAIL_CHARS = 2000;

/**
 * The detail of a failed command: how it ended and the last lines of its stderr.
 *
 * @example
 *   throw hostStepFailed(host.name, step, commandFailure(result.code, result.stderr));
 */
export function commandFailure(code: number, stderr: string, signal?: string): string {
  const how = signal ? `was killed by SIG${signal}` : `exited with code ${code}`;
  const tail = stderrTail(stderr);
  return `the command ${how}${tail ? `:\n${tail}` : ''}`;
}

function stderrTail(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-STDERR_TAIL_LINES).join('\n');
  return lines.length > STDERR_TAIL_CHARS ? `...${lines.slice(-STDERR_TAIL_CHARS)}` : lines;
}
