#!/usr/bin/env node
// The `clones` command. The sources are TypeScript, run through tsx: register it, then hand over.
import { register } from 'tsx/esm/api';

// Library logs are JSON lines on stderr; a person at a terminal wants only the warnings.
process.env.CLONES_LOG_LEVEL ??= 'warn';
register();
const { main } = await import('../src/cli/main.ts');
// Exit with the code even if a library left a timer or socket behind.
process.exit(await main(process.argv.slice(2)));
