/** What a picker sees of a target: its id, its current weight (after slow start) and its in-flight count. */
export interface Candidate {
  readonly id: string;
  readonly weight: number;
  readonly outstanding: number;
}

/**
 * A load-balancing algorithm: chooses one of the candidates it is handed (all routable, never empty).
 * Pickers may keep per-target state keyed by id; they never see health or groups.
 *
 * @example
 *   const picker = createPicker('round-robin');
 *   const target = picker.pick(healthyTargets);
 */
export interface Picker {
  pick<T extends Candidate>(candidates: readonly T[]): T;
}

export type PickerName = 'least-outstanding' | 'round-robin' | 'power-of-two';
