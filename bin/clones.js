#!/usr/bin/env node
// The `clones` command. It runs the compiled dist/ with plain Node: no TypeScript loader to start first.
// `node --conditions=clones-source --import tsx bin/clones.js` runs the sources instead (the tests do).

// Library logs are JSON lines on stderr; a person at a terminal wants only the warnings.
process.env.CLONES_LOG_LEVEL ??= 'warn';
let cli;
try {
  cli = await import('#cli');
} catch (err) {
  // Only a git checkout can lack dist/: the published package ships it, and `npm install` builds it.
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/cli/main.js')) throw err;
  const root = new URL('..', import.meta.url).pathname;
  process.stderr.write(
    `clones: the compiled CLI (dist/cli/main.js) is missing: run "npm run build" in ${root} (CLONES_NOT_BUILT)\n`,
  );
  process.exit(1);
}
// Exit with the code even if a library left a timer or socket behind.
process.exit(await cli.main(process.argv.slice(2)));
