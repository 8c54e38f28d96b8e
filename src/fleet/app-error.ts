/** A stack frame line as Node prints it: indented `at ...`. */
const FRAME = /^\s+at\s/;
/** The caret line Node prints under the throwing source line, just above the error. */
const CARET = /^\s*\^+\s*$/;
/** Lines that only say which Node ran: no help in telling why an app died. */
const NODE_VERSION = /^Node\.js v\d/;
/** The first line of an error as Node prints it: `Error: ...`, `TypeError [ERR_X]: ...`, `AbortError: ...`. */
const ERROR_HEAD = /^(?:Uncaught )?[A-Za-z_$][\w$]*(?: \[[^\]]+\])?: /;

/**
 * The app's own error in a clone's last log lines: the message of the last uncaught error Node printed (up
 * to 3 lines) and its first stack frame, which say why a clone died; the lines after them (the rest of the
 * stack, `Node.js v20...`) do not. Empty lines are ignored; an empty array when no stack trace is there
 * (the caller then shows the last lines as they are).
 *
 * @example
 *   appError(['boot', '      ^', 'Error: DATABASE_URL is not set', '    at file:///app/server.js:3:7',
 *     '    at ModuleJob.run (node:internal/...)', 'Node.js v20.20.2']);
 *   // ['Error: DATABASE_URL is not set', '    at file:///app/server.js:3:7']
 */
export function appError(lines: readonly string[]): string[] {
  const text = lines.filter((l) => l.trim() !== '');
  let last = text.length - 1;
  while (last >= 0 && !FRAME.test(text[last]!)) last--;
  if (last < 0) return [];
  let first = last;
  while (first > 0 && FRAME.test(text[first - 1]!)) first--;
  if (first === 0) return [];
  // The message sits between the caret (or the previous stack) and the first frame; it starts at the line
  // naming the error (`Error: ...`, `TypeError [ERR_X]: ...`), else it is the one line above the frame.
  let start = first - 1;
  for (let i = first - 1; i >= 0 && first - i <= 3; i--) {
    if (CARET.test(text[i]!) || FRAME.test(text[i]!)) break;
    if (ERROR_HEAD.test(text[i]!)) {
      start = i;
      break;
    }
  }
  return text.slice(start, first + 1).map((l) => l.trimEnd());
}

/**
 * A clone's last `n` log lines that say something (not blank, not Node's version line): what a failure
 * shows when appError finds no error in them.
 *
 * @example
 *   lastLogLines(['listening', '', 'Node.js v20.20.2']); // ['listening']
 */
export function lastLogLines(lines: readonly string[], n = 5): string[] {
  return lines.filter((l) => l.trim() !== '' && !NODE_VERSION.test(l)).slice(-n);
}
