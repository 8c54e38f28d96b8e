/**
 * Orders a host agent's work: a job that must run alone (converge, boot from the image) waits for every job
 * queued before it, and jobs that may overlap (a start or a stop the control machine asked for) run side by
 * side once the lone jobs queued before them are done. The control machine swaps a host's clones together in
 * a rolling deploy across hosts: run one after another, each clone's boot time would add up.
 *
 * @example
 *   const gate = new JobGate();
 *   await gate.alone(() => converge());
 *   await Promise.all([gate.shared(() => start(a)), gate.shared(() => start(b))]);
 */
export class JobGate {
  #tail: Promise<unknown> = Promise.resolve();
  #shared = new Set<Promise<unknown>>();

  alone<T>(job: () => Promise<T>): Promise<T> {
    // Only the shared jobs queued so far: those queued later wait for this one.
    const before = [...this.#shared];
    const run = this.#tail.then(() => Promise.allSettled(before)).then(job);
    this.#tail = run.catch(() => {});
    return run;
  }

  shared<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(job);
    const settled = run.then(
      () => {},
      () => {},
    );
    this.#shared.add(settled);
    void settled.then(() => this.#shared.delete(settled));
    return run;
  }
}
