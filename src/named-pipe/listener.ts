/**
 * Named-pipe listeners (Windows): byte-type connections are `net.Socket`s (NamedPipeStream),
 * message-type ones are MessagePipes. Every CreateNamedPipeW option is here (./options.ts), with
 * safe defaults: local clients only, the first instance claimed so no one can squat the name, and
 * a DACL that lets in only this user, SYSTEM and Administrators (the `allow` rule 'same-user').
 */
import { markAccepted } from '../access.js';
import { abortError } from '../errors.js';
import { Listener, type ListenerEvents, closeOnAbort } from '../listener.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { NativeNamedPipes } from '../native/addon.js';
import { pipeConnection } from './connection.js';
import { clientRefusal } from './handle.js';
import type { MessagePipe } from './message.js';
import { toPipeName } from './name.js';
import { type NamedPipeType, type PipeInstance, type NamedPipeListenOptions, namedPipes, pipeInstance } from './options.js';
import { PipeServer } from './server.js';
import type { NamedPipeStream } from './stream.js';

export type { NamedPipeListenOptions, NamedPipeType };

/** What a listener of each type accepts. */
export type NamedPipeConnection<T extends NamedPipeType> = T extends 'message' ? MessagePipe : NamedPipeStream;

/** The events of a {@link NamedPipeListener} (see {@link ListenerEvents}). */
export type NamedPipeListenerEvents<T extends NamedPipeType = 'byte'> = ListenerEvents<NamedPipeConnection<T>>;

/**
 * Accepts clients on a named pipe. Each connection goes to the `'connection'` event if it has
 * listeners, otherwise to async iteration, queued until taken. `close()` stops accepting;
 * connections made stay open. Events ({@link ListenerEvents}): `'connection'`, `'refused'` (a
 * client the `allow` predicate refused: its credentials, and what the predicate threw if it
 * threw), `'error'`, `'close'`.
 */
export class NamedPipeListener<T extends NamedPipeType = 'byte'> extends Listener<NamedPipeConnection<T>> {
  /** The pipe's name; its `address` is the full pipe path (`\\.\pipe\NAME`). */
  readonly name: LocalSocketName;
  readonly #server: PipeServer;

  /** @internal Use {@link listenNamedPipe}. */
  constructor(native: NativeNamedPipes, name: LocalSocketName, options: PipeInstance) {
    super((connection) => connection.destroy());
    this.name = name;
    const { instance, check } = options;
    this.#server = new PipeServer(native, name.address, instance, (pipe) => {
      // Before the pipe is read from or handed on: the client's process id, and under 'same-user'
      // its user (./handle.ts).
      const refusal = clientRefusal(native, pipe, check);
      if (refusal !== null) {
        pipe.close(true);
        this.#server.released();
        this._refuse(refusal);
        return;
      }
      const { message, direction } = instance;
      const connection = pipeConnection(pipe, name, 'client', { message, direction, maxMessageSize: options.maxMessageSize, allowHalfOpen: options.allowHalfOpen });
      markAccepted(connection, check);
      connection.once('close', () => this.#server.released());
      this._deliver(connection as NamedPipeConnection<T>);
    }, (error) => this._fail(error));
  }

  /**
   * The access control list Windows holds for this pipe, as SDDL (e.g. `'D:(A;;GA;;;WD)'`): the
   * `securityDescriptor` option as Windows took it, or Windows' default.
   */
  securityDescriptor(): string {
    return this.#server.securityDescriptor();
  }

  /** @internal */
  protected _stop(): Promise<void> {
    return this.#server.close();
  }

  /** @internal */
  protected _ref(keepAlive: boolean): void {
    this.#server.ref(keepAlive);
  }
}

/**
 * Listens on the named pipe `name`: a string `NAME` (or `@NAME`) in the pipe namespace, a full
 * `\\.\pipe\NAME`, or a name from nsName()/fsName(). Fails with EADDRINUSE when a pipe of that
 * name exists (unless `firstInstance: false`), EACCES when its security denies us,
 * ERR_INTERPROCESS_UNSUPPORTED off Windows.
 */
export async function listenNamedPipe<T extends NamedPipeType = 'byte'>(name: string | LocalSocketName, options: NamedPipeListenOptions & { type?: T } = {}): Promise<NamedPipeListener<T>> {
  const resolved = toPipeName(name);
  const instance = pipeInstance(options);
  const native = namedPipes('listenNamedPipe()');
  if (options.signal?.aborted) throw abortError(options.signal);
  return closeOnAbort(new NamedPipeListener<T>(native, resolved, instance), options.signal);
}
