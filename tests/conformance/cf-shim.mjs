// Stand-ins for the Workers runtime module the published bundle imports at load time.
// The HTTP clients never use them; they only need to exist so the bundle loads in Node.
export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }
export class WorkerEntrypoint { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }
export class RpcTarget {}
export const tracing = undefined;
export const env = {};
export default {};
