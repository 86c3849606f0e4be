/**
 * HTTP over a local socket (Docker's API, systemd's, a local web service): an http.Agent whose
 * connections go to one local socket name, so that keep-alive pools them as for TCP.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { type CreateConnectionOptions, createConnection } from './create-connection.js';
import { type LocalSocketName, toName } from './name.js';

/** Options of a {@link LocalSocketAgent}: http.Agent's (keepAlive, maxSockets, ...) and {@link createConnection}'s. */
export interface LocalSocketAgentOptions extends http.AgentOptions, CreateConnectionOptions {}

/**
 * An http.Agent that connects every request to the local socket `name`, whatever its host:
 * `http.get({ agent: new LocalSocketAgent('/run/app.sock'), path: '/status' }, ...)`. With
 * `keepAlive: true` idle connections are kept and reused, as for TCP. A failed connect (nothing
 * listens, say) reaches the request's 'error' handler. `agent.destroy()` closes its idle sockets.
 */
export class LocalSocketAgent extends http.Agent {
  /** The name every connection of this agent goes to. */
  readonly name: LocalSocketName;
  readonly #options: CreateConnectionOptions;

  constructor(name: string | LocalSocketName, options: LocalSocketAgentOptions = {}) {
    super(options);
    this.name = toName(name);
    this.#options = options.allowHalfOpen === undefined ? {} : { allowHalfOpen: options.allowHalfOpen };
  }

  /** @internal http's hook: a connection to this agent's name, returned at once. */
  override createConnection(): Duplex {
    return createConnection(this.name, this.#options);
  }
}
