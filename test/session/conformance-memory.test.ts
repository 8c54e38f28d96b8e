import { sessionConformance } from '../conformance/session-conformance.ts';

let n = 0;
sessionConformance({
  name: 'memory',
  setup: async () => ({ url: `memory:conformance-${++n}`, cleanup: async () => {} }),
});
