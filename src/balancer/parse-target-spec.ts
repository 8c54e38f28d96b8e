import { badTargetSpec } from '../errors.ts';
import type { TargetSpec } from './options.ts';

const ID = /^[\w.:-]{1,128}$/;

/**
 * Checks a target spec and fills in its defaults; every engine registers targets through it.
 *
 * @example
 *   parseTargetSpec({ id: 'c1', url: 'http://127.0.0.1:3001' }); // { group: 'default', weight: 1, ... }
 */
export function parseTargetSpec(spec: TargetSpec) {
  if (spec === null || typeof spec !== 'object') throw badTargetSpec('target', 'must be an object');
  if (typeof spec.id !== 'string' || !ID.test(spec.id)) {
    throw badTargetSpec('id', 'must be 1-128 characters of letters, digits, _ . : -');
  }
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw badTargetSpec('url', `"${String(spec.url)}" is not a URL such as http://127.0.0.1:3001`);
  }
  if (url.protocol !== 'http:') throw badTargetSpec('url', 'only http:// targets are supported');
  if (url.pathname !== '/' || url.search || url.username)
    throw badTargetSpec('url', 'must be http://host:port only');
  const group = spec.group ?? 'default';
  if (typeof group !== 'string' || !ID.test(group))
    throw badTargetSpec('group', 'must be 1-128 of letters, digits, _ . : -');
  const release = spec.release ?? group;
  if (typeof release !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(release)) {
    throw badTargetSpec('release', 'must be 1-200 visible ASCII characters');
  }
  const weight = spec.weight ?? 1;
  if (!Number.isInteger(weight) || weight < 1 || weight > 1000)
    throw badTargetSpec('weight', 'must be a whole number 1-1000');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { id: spec.id, url: url.origin, host, port: Number(url.port || 80), group, release, weight };
}
