import { leastOutstanding } from './least-outstanding.ts';
import type { Picker, PickerName } from './picker.ts';
import { powerOfTwo } from './power-of-two.ts';
import { roundRobin } from './round-robin.ts';

/**
 * The picker for an algorithm name.
 *
 * @example
 *   const picker = createPicker('power-of-two', Math.random);
 */
export function createPicker(name: PickerName, random: () => number = Math.random): Picker {
  switch (name) {
    case 'least-outstanding':
      return leastOutstanding();
    case 'round-robin':
      return roundRobin();
    case 'power-of-two':
      return powerOfTwo(random);
  }
}
