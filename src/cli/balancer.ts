import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type BalancerFileConfig, checkBalancerConfig } from '../balancer/config-file.ts';
import { balancerDefaults, createBalancer, resolveOptions, type TargetSpec } from '../balancer/index.ts';
import { usageError } from '../errors.ts';
import { logger } from '../logger.ts';
import { OptionIssues } from '../option-issues.ts';
import { duration, int, oneOf, parse, positionals } from './args.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones balancer --port P --target URL [--target URL ...] [options]
       clones balancer --config FILE [flags override the file]

A standalone load balancer. From flags alone every target goes in one group; a config file (JSON, or
YAML when it ends in .yaml/.yml) gives every option of docs/balancer.md (plus "port", "host" and
"targets").

Options:
  --port P              listen port (default 8080)
  --host H              listen address (default 127.0.0.1)
  --target URL          a clone, http://host:port (repeatable)
  --algorithm A         least-outstanding (default), round-robin or power-of-two
  --engine E            builtin (default, Node) or haproxy (HAProxy 2.6+ run and driven by clones)
  --sticky DURATION     sticky sessions for this long (1s-7d); off by default
  --health-path PATH    active health check path (default ${balancerDefaults.healthCheck.path})
  --admin-port P        admin API port (loopback); needs CLONES_ADMIN_TOKEN (16+ characters)
  --tls-cert FILE       HTTPS (HTTP/2 and HTTP/1.1): PEM certificate, then its chain; with --tls-key
  --tls-key FILE        its private key (PEM). Files are reloaded when they change and on SIGHUP
  --tls-dir DIR         certificates picked by SNI: NAME.crt + NAME.key, or NAME/fullchain.pem + privkey.pem
  --redirect-port P     also listen on plain HTTP there and redirect every request to HTTPS (308)
  --hsts                send Strict-Transport-Security (max-age 1 year) on HTTPS responses
  --config FILE         JSON or YAML options file, validated: every error is reported at once`;

export const balancer: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      port: { type: 'string' },
      host: { type: 'string' },
      target: { type: 'string', multiple: true },
      algorithm: { type: 'string' },
      engine: { type: 'string' },
      sticky: { type: 'string' },
      'health-path': { type: 'string' },
      'admin-port': { type: 'string' },
      config: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-dir': { type: 'string' },
      'redirect-port': { type: 'string' },
      hsts: { type: 'boolean' },
    });
    positionals(args, 0, 'clones balancer --port P --target URL');
    // The file's problems and the options' rules go to one list: one error names every wrong option.
    const issues = new OptionIssues();
    const file = values.config === undefined ? {} : loadConfig(values.config, issues);
    const { port: filePort, host: fileHost, ...options } = file;
    const targets: TargetSpec[] = [
      ...(options.targets ?? []),
      ...(values.target ?? []).map((url, i) => ({ id: `t${i + 1}`, url })),
    ];
    const source = values.config === undefined ? undefined : `--config ${values.config}`;
    if (targets.length === 0) {
      issues.throwIfAny(source); // a broken file says so first: its "targets" may be what is wrong
      throw usageError('give at least one --target http://host:port (or "targets" in --config)');
    }
    const algorithm = oneOf('--algorithm', values.algorithm, [
      'least-outstanding',
      'round-robin',
      'power-of-two',
    ]);
    const sticky = duration('--sticky', values.sticky);
    const engine = oneOf('--engine', values.engine, ['builtin', 'haproxy']);
    const adminPort = int('--admin-port', values['admin-port'], 0, 65_535);
    const redirectPort = int('--redirect-port', values['redirect-port'], 0, 65_535);
    const tlsFlags = {
      ...(values['tls-cert'] ? { cert: values['tls-cert'] } : {}),
      ...(values['tls-key'] ? { key: values['tls-key'] } : {}),
      ...(values['tls-dir'] ? { dir: values['tls-dir'] } : {}),
    };
    const merged = {
      logger: logger.child({ part: 'balancer' }),
      ...options,
      targets,
      ...(algorithm ? { algorithm } : {}),
      ...(engine ? { engine } : {}),
      ...(sticky !== undefined ? { sticky: { ...options.sticky, enabled: true, duration: sticky } } : {}),
      ...(values['health-path']
        ? { healthCheck: { ...options.healthCheck, path: values['health-path'] } }
        : {}),
      ...(adminPort !== undefined
        ? { admin: { ...options.admin, port: adminPort, token: process.env.CLONES_ADMIN_TOKEN ?? '' } }
        : {}),
      ...(Object.keys(tlsFlags).length > 0 ? { tls: { ...options.tls, ...tlsFlags } } : {}),
      ...(redirectPort !== undefined ? { redirect: { ...options.redirect, port: redirectPort } } : {}),
      ...(values.hsts ? { hsts: { ...options.hsts, enabled: true } } : {}),
    };
    resolveOptions(merged, issues);
    issues.throwIfAny(source);
    const lb = createBalancer(merged);
    const secure = lb.options.tls !== undefined;
    const address = await lb.listen(
      int('--port', values.port, 0, 65_535) ?? filePort ?? 8080,
      values.host ?? fileHost ?? '127.0.0.1',
    );
    const out = {
      type: 'listening',
      url: `${secure ? 'https' : 'http'}://${address.address}:${address.port}`,
      targets: targets.length,
      admin: lb.adminAddress()?.port ?? null,
    };
    console.log(
      values.json ? JSON.stringify(out) : `clones balancer: ${out.url} -> ${targets.length} target(s)`,
    );
    return await new Promise<number>((resolve) => {
      const stop = () => lb.close().then(() => resolve(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // Renewed certificates: a bad file is logged with its CLONES_TLS_* code and the old ones stay.
      if (secure) process.on('SIGHUP', () => void lb.reloadTls().catch(() => {}));
    });
  },
};

/**
 * Reads a JSON or YAML config file: a file that does not parse is CLONES_USAGE; unknown keys, wrong types and
 * bad durations go to `issues` with their paths (checkBalancerConfig), to be reported with the options' rules.
 * YAML goes through the same checks once parsed: it only changes the spelling.
 */
function loadConfig(file: string, issues: OptionIssues): BalancerFileConfig {
  const yaml = /^\.ya?ml$/i.test(extname(file));
  let value: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    // YAML 1.2 core schema: no custom tags, duplicate keys are an error, like a strict JSON reader.
    value = yaml
      ? parseYaml(text, { schema: 'core', uniqueKeys: true, prettyErrors: true })
      : JSON.parse(text);
  } catch (err) {
    throw usageError(`--config ${file}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw usageError(`--config ${file}: must be a ${yaml ? 'YAML mapping' : 'JSON object'}`);
  return checkBalancerConfig(value as Record<string, unknown>, issues);
}
