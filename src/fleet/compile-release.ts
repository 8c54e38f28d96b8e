import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The part of esbuild's API used here. */
interface Esbuild {
  version: string;
  transformSync(
    code: string,
    options: Record<string, unknown>,
  ): {
    code: string;
  };
}

/** Relative import specifiers of the app's own TypeScript files, as esbuild prints them (double quotes). */
const RELATIVE_TS = /((?:\bfrom|\bimport)\s*\(?\s*)"(\.\.?\/[^"\n]*?)\.(m?)ts"/g;
/** What a per-file transpile cannot follow: a relative .ts specifier left, an import() of a non-literal, require(). */
const UNFOLLOWED = [/"\.\.?\/[^"\n]*\.m?ts"/, /\bimport\(\s*[^"\s]/, /\brequire\(/];

/**
 * A TypeScript app's plan for being run by plain Node: the esbuild that will compile it, or why not.
 * Compiling at release build is the "machine image" step: every clone of the release then boots with plain
 * `node` instead of a loader that transpiles on the fly (tsx, whose hooks run on a thread of their own in Node
 * 20: about 0.5 s of a clone's 1 s boot on a quiet 2-core machine, and several times that on a busy one).
 * Only ESM apps whose imports per-file transpiling can follow are compiled (no .tsx or .cts file, no
 * tsconfig `paths`, `baseUrl` or `extends`, no file beside a source with the name its output would take);
 * any other app runs through tsx as before.
 *
 * @example
 *   const plan = typeScriptPlan('/srv/app', 'server.ts', files);
 *   if (plan.esbuild) compileTypeScript('/srv/releases/.tmp-x', files, plan.esbuild);
 */
export function typeScriptPlan(
  source: string,
  entry: string,
  files: readonly string[],
): { esbuild?: Esbuild; why?: string } {
  if (!/\.m?ts$/.test(entry)) return { why: 'not TypeScript' };
  const own = files.filter((f) => !f.startsWith('node_modules/'));
  if (own.some((f) => /\.(tsx|cts)$/.test(f))) return { why: 'a .tsx or .cts file' };
  const pkg = readJson(join(source, 'package.json'));
  if (!entry.endsWith('.mts') && pkg?.type !== 'module') return { why: 'not an ES module package' };
  const tsconfig = join(source, 'tsconfig.json');
  if (existsSync(tsconfig) && /"(paths|baseUrl|extends)"\s*:/.test(readFileSync(tsconfig, 'utf8')))
    return { why: 'tsconfig paths, baseUrl or extends' };
  const taken = new Set(own);
  if (sources(own).some((f) => taken.has(outputOf(f)))) return { why: 'a compiled file is in the app' };
  const esbuild = findEsbuild(source);
  return esbuild ? { esbuild } : { why: 'no esbuild (it comes with tsx)' };
}

/**
 * Writes beside each TypeScript file of `dir` (a release being built) its JavaScript, with an inline source
 * map (clones run with --enable-source-maps, so stack traces name the .ts lines) and relative `.ts` imports
 * pointing at the `.js` files. Answers false, writing nothing that stays, when a file's imports could not
 * be followed: the release then runs through tsx.
 *
 * @example
 *   compileTypeScript(tmp, files, esbuild); // server.ts -> server.js
 */
export function compileTypeScript(dir: string, files: readonly string[], esbuild: Esbuild): boolean {
  const tsconfig = join(dir, 'tsconfig.json');
  const tsconfigRaw = existsSync(tsconfig) ? readFileSync(tsconfig, 'utf8') : undefined;
  const out: [string, string][] = [];
  for (const file of sources(files.filter((f) => !f.startsWith('node_modules/')))) {
    let code: string;
    try {
      code = esbuild.transformSync(readFileSync(join(dir, file), 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: `node${process.versions.node.split('.')[0]}`,
        sourcemap: 'inline',
        sourcesContent: false, // the .ts is beside it: a one-line change ships less
        sourcefile: file.split('/').pop(),
        ...(tsconfigRaw === undefined ? {} : { tsconfigRaw }),
      }).code;
    } catch {
      return false; // tsx reports the syntax error the way the app's author knows
    }
    const js = code.replace(
      RELATIVE_TS,
      (_m, lead: string, path: string, m: string) => `${lead}"${path}.${m}js"`,
    );
    if (UNFOLLOWED.some((re) => re.test(stripMap(js)))) return false;
    out.push([outputOf(file), js]);
  }
  for (const [file, js] of out) writeFileSync(join(dir, file), js, { mode: 0o600 });
  return true;
}

/** The file Node runs for a TypeScript entry: `server.ts` -> `server.js`, `main.mts` -> `main.mjs`. */
export const outputOf = (file: string): string => file.replace(/\.(m?)ts$/, '.$1js');

const sources = (files: readonly string[]) => files.filter((f) => /\.m?ts$/.test(f) && !/\.d\.m?ts$/.test(f));

const stripMap = (js: string) => js.replace(/\/\/# sourceMappingURL=.*$/m, '');

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** esbuild from where tsx is found for the app (its own, else clones's): tsx depends on it. */
function findEsbuild(source: string): Esbuild | undefined {
  for (const from of [join(source, 'package.json'), import.meta.filename]) {
    try {
      const tsx = createRequire(from).resolve('tsx');
      return createRequire(tsx)('esbuild') as Esbuild;
    } catch {
      // Not there: try the next place.
    }
  }
  return undefined;
}
