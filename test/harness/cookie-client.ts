/**
 * A tiny browser stand-in for tests: one cookie jar, fetch against a base URL, Set-Cookie applied as a
 * browser would (Max-Age=0 removes). Responses are applied in the order they complete, like a real jar.
 */
export class CookieClient {
  readonly jar = new Map<string, string>();
  readonly base: string;
  /** Every Set-Cookie header received, for assertions on attributes. */
  readonly seen: string[] = [];

  constructor(base: string) {
    this.base = base;
  }

  async request(
    method: string,
    path: string,
    options: { headers?: Record<string, string>; cookie?: string; body?: string } = {},
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  ): Promise<{ status: number; body: any; setCookies: string[]; headers: Headers }> {
    const cookie = options.cookie ?? this.cookieHeader();
    const res = await fetch(this.base + path, {
      method,
      headers: { ...(cookie ? { cookie } : {}), ...options.headers },
      body: options.body,
    });
    const setCookies = res.headers.getSetCookie();
    this.apply(setCookies);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body, setCookies, headers: res.headers };
  }

  get(path: string, options?: { headers?: Record<string, string>; cookie?: string }) {
    return this.request('GET', path, options);
  }

  post(path: string, options?: { headers?: Record<string, string>; cookie?: string; body?: string }) {
    return this.request('POST', path, options);
  }

  apply(setCookies: string[]): void {
    for (const header of setCookies) {
      this.seen.push(header);
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const maxAge = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('max-age='));
      if (maxAge && Number(maxAge.split('=')[1]) <= 0) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** A second browser that starts with a copy of this one's cookies (another tab in the same jar is `this`). */
  clone(): CookieClient {
    const other = new CookieClient(this.base);
    for (const [k, v] of this.jar) other.jar.set(k, v);
    return other;
  }
}
