import { ClonesError } from '../errors.ts';

/** One verb: its help text and what it runs. Resolves with the exit code. */
export interface Verb {
  help: string;
  run(argv: string[]): Promise<number>;
}

/** Prints an error as one clear message with its code, never a stack trace (unless CLONES_DEBUG is set). */
export function report(err: unknown): number {
  if (process.env.CLONES_DEBUG) console.error(err);
  if (err instanceof ClonesError) {
    console.error(`clones: ${err.message} (${err.code})`);
    if (err.code === 'CLONES_FLEET_CANCELLED') return 130; // the shell's code for Ctrl-C, as if killed by it
    return err.code === 'CLONES_USAGE' ? 2 : 1;
  }
  console.error(`clones: ${err instanceof Error ? err.message : String(err)} (CLONES_INTERNAL)`);
  return 1;
}
