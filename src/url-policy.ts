/**
 * Which URLs cxrec will talk to. The CLI contract allows plain `http://`
 * only for loopback hosts, for the CXone API, media URLs and storage
 * endpoints alike; and presigned media URLs must point at a host allowed by
 * `CXREC_MEDIA_HOSTS`, so a tampered or misrouted URL cannot make us send
 * traffic (or leak a signature) anywhere else.
 */
import { isIP } from 'node:net';

/** 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Why `url` may not be used, or `undefined` when it may: it must parse, use
 * https (or http on a loopback host) and carry no credentials.
 */
export function urlSchemeProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:') {
    return isLoopbackHost(parsed.hostname)
      ? undefined
      : 'uses plain http:// on a non-loopback host (only 127.0.0.0/8, ::1 and localhost may use http://; use https://)';
  }
  return `has scheme ${parsed.protocol} (use https://)`;
}

/**
 * Whether `hostname` matches one of `patterns`: an exact host name
 * (`media.example.com`), or `*.example.com` for any host below it (not
 * `example.com` itself). A `:port` on a pattern is ignored: hosts are
 * allowed on any port.
 */
export function hostAllowed(hostname: string, patterns: readonly string[]): boolean {
  const host = hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  return patterns.some((raw) => {
    const pattern = stripPort(raw.trim().toLowerCase());
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(1);
      return host.endsWith(suffix) && host.length > suffix.length;
    }
    return host === pattern;
  });
}

function stripPort(pattern: string): string {
  if (pattern.startsWith('[')) return pattern.replace(/^\[([^\]]+)\](:\d+)?$/, '$1');
  const colons = pattern.split(':').length - 1;
  return colons === 1 ? pattern.replace(/:\d+$/, '') : pattern;
}
