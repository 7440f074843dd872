// Test dependencies that ship no type declarations (and have no @types
// package pinned here): the little of them the tests use, so that
// `npm run typecheck` can check everything else.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    [member: string]: any;
  }
}
