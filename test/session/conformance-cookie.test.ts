import { sessionConformance } from '../conformance/session-conformance.ts';

sessionConformance({
  name: 'sealed cookie',
  clientSide: true,
  setup: async () => ({ url: 'cookie:', cleanup: async () => {} }),
});
