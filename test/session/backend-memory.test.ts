import { MemoryStore } from '../../src/session/stores/memory-store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';

// The in-process store (tests only): nothing to start, and no server to take down, so no outage suite.
let n = 0;
storeConformance({
  name: 'memory',
  url: () => `memory:conformance-${++n}`,
  store: () => new MemoryStore(),
  byUser: true,
});
