import type { Emit, FleetEvent } from './fleet-event.ts';

/**
 * Where a fleet's events go. Clone and host events (from the supervisor and the host agents) reach every
 * converge in progress, so that a deploy's client sees the clones it moves; and every event, whoever caused
 * it, reaches every watcher (the dashboard, `clones up`), each event once.
 *
 * @example
 *   const hub = new EventHub();
 *   const stop = hub.watch((event) => console.log(event.type));
 *   const emit = hub.tee(clientEmit); // the client's events, watched too
 */
export class EventHub {
  readonly #listeners = new Set<Emit>();
  readonly #watchers = new Set<Emit>();
  readonly #published = new WeakSet<object>();

  /** An event of a clone or a host: to every converge in progress, and every watcher. */
  fanOut(event: FleetEvent): void {
    for (const listener of this.#listeners) listener(event);
    this.#publish(event);
  }

  /** `emit` gets the clone and host events until the returned function is called (a converge's span). */
  follow(emit: Emit): () => void {
    this.#listeners.add(emit);
    return () => this.#listeners.delete(emit);
  }

  /** Every event of the fleet, each once, until the returned function is called. */
  watch(listener: Emit): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  /** `emit`, and every watcher too. */
  tee(emit: Emit): Emit {
    return (event) => {
      emit(event);
      this.#publish(event);
    };
  }

  // A clone event reaches both a deploy's emit and the fan-out: the same object is published once.
  #publish(event: FleetEvent): void {
    if (this.#published.has(event)) return;
    this.#published.add(event);
    for (const watcher of this.#watchers) watcher(event);
  }
}
