/**
 * The token endpoint's request encoding. Access key secrets hold `+`, `/`
 * and `=` (contract §1): sent raw in a form body, `+` would arrive as a
 * space and the login would fail as a wrong key. `URLSearchParams`
 * percent-encodes them (`%2B`, `%2F`, `%3D`).
 */

/** `application/x-www-form-urlencoded` text of `fields`, in their order. */
export function formBody(fields: Readonly<Record<string, string>>): string {
  return new URLSearchParams(Object.entries(fields)).toString();
}

/**
 * The `Authorization` value for the application's id and secret
 * (`client_secret_basic`): base64 of `id:secret` as NICE documents it.
 */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${clientId}:${clientSecret}`, 'utf8').toString('base64')}`;
}
