import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionConformance } from '../conformance/session-conformance.ts';

sessionConformance({
  name: 'sqlite',
  setup: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clones-conformance-'));
    return {
      url: `sqlite:${join(dir, 'sessions.db')}`,
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
});
