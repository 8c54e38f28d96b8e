import { createHash } from 'node:crypto';

/** Points per server on the ring: 40 MD5 digests of 4 points each, as ketama (libmemcached, pylibmc) does. */
const DIGESTS_PER_SERVER = 40;

/**
 * Consistent hashing over memcached servers, ketama-style: each server owns 160 points on a 32-bit ring and a
 * key goes to the first point at or after MD5(key). Adding or removing one server moves only about 1/N of
 * the keys, and every clone given the same server list maps a key to the same server.
 *
 * @example
 *   const ring = new HashRing(['10.0.0.1:11211', '10.0.0.2:11211']);
 *   ring.pick('3f2a...'); // '10.0.0.2:11211'
 */
export class HashRing {
  readonly #points: Uint32Array;
  readonly #owners: string[];

  constructor(servers: readonly string[]) {
    if (servers.length === 0) throw new Error('a hash ring needs at least one server');
    const points: Array<[number, string]> = [];
    for (const server of servers) {
      for (let i = 0; i < DIGESTS_PER_SERVER; i++) {
        const digest = createHash('md5').update(`${server}-${i}`).digest();
        for (let j = 0; j < 4; j++) points.push([digest.readUInt32LE(j * 4), server]);
      }
    }
    // Ties (astronomically rare) are broken by name, so every clone builds the same ring.
    points.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    this.#points = Uint32Array.from(points, (p) => p[0]);
    this.#owners = points.map((p) => p[1]);
  }

  /** The server that owns `key`. */
  pick(key: string): string {
    const h = createHash('md5').update(key).digest().readUInt32LE(0);
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((points[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return this.#owners[lo === points.length ? 0 : lo] as string;
  }
}
