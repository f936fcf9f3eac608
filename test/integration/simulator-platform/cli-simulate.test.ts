import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

import { fetch } from 'undici';

test('cxrec simulate --dialect platform prints variables that log in and discover the tenant', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli.ts',
      'simulate',
      '--dialect',
      'platform',
      '--recordings',
      '3',
      '--playback-limit',
      '20',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    let out = '';
    for await (const chunk of child.stdout) {
      out += String(chunk);
      if (out.includes('Ctrl-C')) break;
    }
    const line = out.split('\n').find((l) => l.trim().startsWith('export '));
    assert.ok(line, out);
    // Unquote the shell words the way a shell would (single quotes only).
    const vars = Object.fromEntries(
      [
        ...line
          .trim()
          .slice('export '.length)
          .matchAll(/([A-Z_]+)=('([^']*)'|\S*)/g),
      ].map((m) => [m[1], m[3] ?? m[2]]),
    ) as Record<string, string>;
    assert.equal(vars.CXONE_DIALECT, 'platform');
    assert.equal(vars.CXREC_PLAYBACK_LIMIT, '20');
    assert.equal(vars.CXREC_PLAYBACK_WINDOW_SECONDS, '300');
    assert.equal(vars.CXREC_RATE_LIMIT, '50');
    assert.match(vars.CXONE_ACCESS_KEY_SECRET ?? '', /[+/=]/);
    const oidc = (await (await fetch(`${vars.CXONE_AUTH_URL}/.well-known/openid-configuration`)).json()) as {
      token_endpoint: string;
    };
    const token = await fetch(oidc.token_endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${vars.CXONE_CLIENT_ID}:${vars.CXONE_CLIENT_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'password',
        username: vars.CXONE_ACCESS_KEY_ID ?? '',
        password: vars.CXONE_ACCESS_KEY_SECRET ?? '',
      }).toString(),
    });
    assert.equal(token.status, 200);
    const { access_token } = (await token.json()) as { access_token: string };
    const { tenantId } = JSON.parse(
      Buffer.from(access_token.split('.')[1] ?? '', 'base64url').toString(),
    ) as {
      tenantId: string;
    };
    const cfg = await fetch(`${vars.CXONE_AUTH_URL}/.well-known/cxone-configuration?tenantId=${tenantId}`);
    assert.equal(cfg.status, 200);
    const { api_endpoint } = (await cfg.json()) as { api_endpoint: string };
    assert.equal(new URL(api_endpoint).hostname, vars.CXREC_MEDIA_HOSTS);
  } finally {
    child.kill('SIGINT');
    await once(child, 'exit');
  }
});
