import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClonesError } from '../../src/errors.ts';
import { parseCookies, serializeCookie } from '../../src/session/cookie.ts';

function entries(header: string | string[] | undefined): [string, string[]][] {
  return [...parseCookies(header)];
}

function invalid(option: string) {
  return (err: unknown) =>
    err instanceof ClonesError &&
    err.code === 'CLONES_INVALID_OPTION' &&
    err.message.startsWith(`${option}:`);
}

describe('parseCookies', () => {
  it('parses pairs, keeping duplicates in order', () => {
    assert.deepEqual(entries('sid=abc; theme=dark; sid=evil'), [
      ['sid', ['abc', 'evil']],
      ['theme', ['dark']],
    ]);
  });

  it('returns an empty map for missing or empty headers', () => {
    assert.deepEqual(entries(undefined), []);
    assert.deepEqual(entries(''), []);
    assert.deepEqual(entries([]), []);
    assert.deepEqual(entries(';;; ; '), []);
  });

  it('reads every line of an array header (HTTP/2)', () => {
    assert.deepEqual(entries(['a=1; b=2', 'a=3']), [
      ['a', ['1', '3']],
      ['b', ['2']],
    ]);
  });

  it('trims spaces and tabs, tolerates missing spaces after ";"', () => {
    assert.deepEqual(entries('  a = 1 ;b=2;\tc=3\t'), [
      ['a', ['1']],
      ['b', ['2']],
      ['c', ['3']],
    ]);
  });

  it('keeps "=" inside values and allows empty values', () => {
    assert.deepEqual(entries('tok=a=b==; empty=; q=""'), [
      ['tok', ['a=b==']],
      ['empty', ['']],
      ['q', ['']],
    ]);
  });

  it('strips one pair of surrounding double quotes', () => {
    assert.deepEqual(entries('a="xyz"; b="x'), [['a', ['xyz']]]);
  });

  it('does not percent-decode', () => {
    assert.deepEqual(entries('a=%20%3B'), [['a', ['%20%3B']]]);
  });

  it('skips malformed pairs and keeps the good ones', () => {
    const header = [
      'noequals',
      '=novalue',
      'good=1',
      'bad name=2',
      'bad(name)=3',
      'bad\\value=4',
      'spacey=a b',
      'comma=a,b',
      'slash=a\\b',
      'quote=a"b',
      'unicode=é',
      'nämé=x',
      'ctl=a\u0001b',
      'also=2',
    ].join('; ');
    assert.deepEqual(entries(header), [
      ['good', ['1']],
      ['also', ['2']],
    ]);
  });

  it('drops values longer than 4096 characters', () => {
    const ok = 'v'.repeat(4096);
    assert.deepEqual(entries(`a=${ok}; b=${ok}v; c=1`), [
      ['a', [ok]],
      ['c', ['1']],
    ]);
    assert.deepEqual(entries(`q="${ok}"`), [['q', [ok]]]);
  });

  it('is safe with prototype-like names', () => {
    const cookies = parseCookies('__proto__=1; constructor=2; toString=3');
    assert.deepEqual(cookies.get('__proto__'), ['1']);
    assert.deepEqual(cookies.get('constructor'), ['2']);
    assert.deepEqual(cookies.get('hasOwnProperty'), undefined);
  });

  it('stays fast on huge hostile headers', () => {
    const started = performance.now();
    parseCookies('a'.repeat(1_000_000));
    parseCookies(';'.repeat(1_000_000));
    parseCookies('a;'.repeat(500_000));
    parseCookies(`${'a;'.repeat(500_000)}=`);
    parseCookies('a=b;'.repeat(250_000));
    parseCookies('='.repeat(1_000_000));
    assert.ok(performance.now() - started < 2000, 'linear time');
  });
});

describe('serializeCookie', () => {
  it('serializes a plain cookie', () => {
    assert.equal(serializeCookie('sid', 'abc', {}), 'sid=abc');
  });

  it('serializes every attribute in a fixed order', () => {
    const value = serializeCookie('sid', 'abc.def', {
      maxAge: 3600,
      domain: 'example.com',
      path: '/',
      secure: true,
      httpOnly: true,
      sameSite: 'None',
      partitioned: true,
      priority: 'High',
    });
    const match =
      /^sid=abc\.def; Max-Age=3600; Expires=([^;]+); Domain=example\.com; Path=\/; Secure; HttpOnly; SameSite=None; Partitioned; Priority=High$/.exec(
        value,
      );
    assert.ok(match, value);
    const expires = Date.parse(match[1]!);
    assert.ok(Math.abs(expires - (Date.now() + 3_600_000)) < 5000, match[1]);
  });

  it('emits an expired cookie for maxAge 0 and drops fractions', () => {
    assert.equal(
      serializeCookie('a', '', { maxAge: 0 }),
      'a=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    );
    assert.match(serializeCookie('a', 'b', { maxAge: 1.9 }), /^a=b; Max-Age=1; Expires=/);
  });

  it('omits false flags and accepts lower-case enum values', () => {
    assert.equal(
      serializeCookie('a', 'b', {
        secure: false,
        httpOnly: false,
        partitioned: false,
        sameSite: 'lax' as 'Lax',
      }),
      'a=b; SameSite=Lax',
    );
    assert.equal(serializeCookie('a', 'b', { priority: 'medium' as 'Medium' }), 'a=b; Priority=Medium');
  });

  it('accepts a quoted value and every cookie-octet', () => {
    assert.equal(serializeCookie('a', '"xyz"', {}), 'a="xyz"');
    let octets = '';
    for (let c = 0x21; c <= 0x7e; c++)
      if (!'",;\\'.includes(String.fromCharCode(c))) octets += String.fromCharCode(c);
    assert.equal(serializeCookie('a', octets, {}), `a=${octets}`);
  });

  it('refuses bad names', () => {
    for (const name of ['', 'a b', 'a;b', 'a=b', 'a,b', 'é', 'a\tb', '(a)', 'a"', 'a/b', 'a\u0000']) {
      assert.throws(() => serializeCookie(name, 'v', {}), invalid('cookie.name'), JSON.stringify(name));
    }
    assert.throws(() => serializeCookie(42 as unknown as string, 'v', {}), invalid('cookie.name'));
  });

  it('refuses bad values without echoing them', () => {
    for (const value of ['a b', 'a;b', 'a,b', 'a"b', '"a', 'a\\b', 'é', 'a\r\nSet-Cookie: x=y', '"a b"']) {
      assert.throws(
        () => serializeCookie('sid', value, {}),
        (err: unknown) => invalid('cookie.value')(err) && !(err as Error).message.includes(value),
        JSON.stringify(value),
      );
    }
  });

  it('refuses bad attributes', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ maxAge: -1 }, 'cookie.maxAge'],
      [{ maxAge: Number.NaN }, 'cookie.maxAge'],
      [{ maxAge: Number.POSITIVE_INFINITY }, 'cookie.maxAge'],
      [{ maxAge: 1e300 }, 'cookie.maxAge'],
      [{ maxAge: '60' }, 'cookie.maxAge'],
      [{ path: 'relative' }, 'cookie.path'],
      [{ path: '/a;b' }, 'cookie.path'],
      [{ path: '/a\nb' }, 'cookie.path'],
      [{ path: '' }, 'cookie.path'],
      [{ domain: 'exa mple.com' }, 'cookie.domain'],
      [{ domain: 'example.com;x' }, 'cookie.domain'],
      [{ domain: '-bad.com' }, 'cookie.domain'],
      [{ domain: '' }, 'cookie.domain'],
      [{ domain: 'a..b' }, 'cookie.domain'],
      [{ secure: 'yes' }, 'cookie.secure'],
      [{ httpOnly: 1 }, 'cookie.httpOnly'],
      [{ sameSite: 'Loose' }, 'cookie.sameSite'],
      [{ sameSite: true }, 'cookie.sameSite'],
      [{ sameSite: 'None' }, 'cookie.sameSite'],
      [{ sameSite: 'None', secure: false }, 'cookie.sameSite'],
      [{ partitioned: true }, 'cookie.partitioned'],
      [{ priority: 'Urgent' }, 'cookie.priority'],
    ];
    for (const [attributes, option] of cases) {
      assert.throws(() => serializeCookie('a', 'b', attributes), invalid(option), JSON.stringify(attributes));
    }
  });

  it('accepts leading-dot and IP domains', () => {
    assert.equal(serializeCookie('a', 'b', { domain: '.example.com' }), 'a=b; Domain=.example.com');
    assert.equal(serializeCookie('a', 'b', { domain: '127.0.0.1' }), 'a=b; Domain=127.0.0.1');
  });

  it('enforces the __Secure- and __Host- prefix rules', () => {
    assert.throws(() => serializeCookie('__Secure-sid', 'v', {}), invalid('cookie.secure'));
    assert.equal(serializeCookie('__Secure-sid', 'v', { secure: true }), '__Secure-sid=v; Secure');
    assert.throws(() => serializeCookie('__Host-sid', 'v', { secure: true }), invalid('cookie.name'));
    assert.throws(() => serializeCookie('__host-sid', 'v', { path: '/' }), invalid('cookie.name'));
    assert.throws(
      () => serializeCookie('__Host-sid', 'v', { secure: true, path: '/', domain: 'example.com' }),
      invalid('cookie.name'),
    );
    assert.equal(
      serializeCookie('__Host-sid', 'v', { secure: true, path: '/' }),
      '__Host-sid=v; Path=/; Secure',
    );
  });

  it('round-trips through parseCookies', () => {
    const header = [
      serializeCookie('sid', 'eyJhbGciOiJkaXIifQ..iv.ct.tag', { path: '/', httpOnly: true }),
      serializeCookie('q', '"quoted"', {}),
      serializeCookie('e', '', { maxAge: 0 }),
    ]
      .map((setCookie) => setCookie.split(';')[0])
      .join('; ');
    assert.deepEqual(entries(header), [
      ['sid', ['eyJhbGciOiJkaXIifQ..iv.ct.tag']],
      ['q', ['quoted']],
      ['e', ['']],
    ]);
  });
});
