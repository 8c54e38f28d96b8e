/**
 * Joins argv into one POSIX shell command line in which every argument stays one argument, whatever it holds
 * (spaces, quotes, `$`, `;`): what SSH needs, since a remote command is always a string for the remote shell.
 *
 * @example
 *   ssh.exec(host, shellQuote(['mkdir', '-p', dir]), { step: 'setup: make dir' });
 */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((arg) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
