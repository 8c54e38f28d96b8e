import { invalidOptions } from './errors.ts';

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The one validation path of options and config files: every check records what is wrong instead of throwing,
 * and `throwIfAny` reports them all at once as one `CLONES_INVALID_OPTION` (messages name the option, first
 * found first). The session's and the balancer's options use it, and a balancer config file adds its own
 * problems (unknown keys, wrong types, bad durations) to the same list before the options' rules run.
 *
 * @example
 *   const issues = new OptionIssues();
 *   issues.int('healthCheck.interval', hc.interval, 10, 3_600_000);
 *   issues.bool('panic', input.panic);
 *   issues.throwIfAny();
 */
export class OptionIssues {
  readonly #issues: { option: string; message: string }[] = [];

  /** How many problems were recorded so far. */
  get count(): number {
    return this.#issues.length;
  }

  add(option: string, message: string): void {
    this.#issues.push({ option, message });
  }

  bool(name: string, value: unknown): void {
    if (typeof value !== 'boolean') this.add(name, `must be true or false; got ${String(value)}`);
  }

  /** A finite number from `min` to `max`; returns whether it was one. */
  num(name: string, value: unknown, min: number, max: number): boolean {
    if (typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max) return true;
    this.add(name, `must be a number from ${min} to ${max}; got ${String(value)}`);
    return false;
  }

  /** A number from `min` to `max`, then a whole one (two messages, the range first). */
  int(name: string, value: unknown, min: number, max: number): void {
    if (this.num(name, value, min, max) && !Number.isInteger(value))
      this.add(name, `must be a whole number; got ${String(value)}`);
  }

  /** A whole number from `min` to `max`, in one message. */
  whole(name: string, value: unknown, min: number, max: number): void {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
      this.add(name, `must be a whole number from ${min} to ${max}; got ${String(value)}`);
  }

  cookieName(name: string, value: unknown): void {
    if (typeof value !== 'string' || !COOKIE_NAME.test(value))
      this.add(name, 'must be a cookie name (a token)');
  }

  /** Throws every recorded problem as one error; `source` (a config file) heads the list. */
  throwIfAny(source?: string): void {
    if (this.#issues.length > 0) throw invalidOptions(this.#issues, source);
  }
}
