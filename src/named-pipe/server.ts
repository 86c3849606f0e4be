/**
 * The accept loop of a named-pipe server, shared by named-pipe listeners and Windows local
 * sockets. A few instances always wait for clients, so a client rarely finds the pipe busy; when
 * one connects, the next instance is created before the connection is handed on. A client that
 * connects and dies before we accept it is skipped natively (the Rust crate's PR #86); an
 * instance that cannot be created because `maxInstances` are in use is retried when one of our
 * connections closes.
 */
import { InterprocessError, fromSystemError } from '../errors.js';
import type { NativeNamedPipe, NativeNamedPipes } from '../native/addon.js';
import type { NamedPipeDirection } from './message.js';

/** @internal What CreateNamedPipeW gets, in our words. */
export interface InstanceOptions {
  message: boolean;
  direction: NamedPipeDirection;
  /** 1 to 254, or 255 for unlimited. */
  maxInstances: number;
  inBufferSize: number;
  outBufferSize: number;
  rejectRemoteClients: boolean;
  firstInstance: boolean;
  securityDescriptor: string | null;
  inheritable: boolean;
  /** FILE_FLAG_WRITE_THROUGH (optional: Windows local sockets leave it out). */
  writeThrough?: boolean;
}

/** How many instances wait for clients at a time (fewer if maxInstances is lower). */
const WAITING = 4;

/** @internal The accept loop over one pipe name (see the top of this file). */
export class PipeServer {
  readonly #native: NativeNamedPipes;
  readonly #path: string;
  readonly #options: InstanceOptions;
  readonly #onConnection: (pipe: NativeNamedPipe) => void;
  readonly #onError: (error: InterprocessError) => void;
  readonly #waiting = new Set<NativeNamedPipe>();
  #short = false; // an instance could not be made: maxInstances are in use
  #closed = false;
  #gone: Promise<void> | null = null; // close(): every waiting instance's handle is closed
  #onGone: (() => void) | null = null;
  #keepAlive = true;

  /** Creates the first instance at once: throws EADDRINUSE, EACCES and the like synchronously. */
  constructor(native: NativeNamedPipes, path: string, options: InstanceOptions, onConnection: (pipe: NativeNamedPipe) => void, onError: (error: InterprocessError) => void) {
    this.#native = native;
    this.#path = path;
    this.#options = options;
    this.#onConnection = onConnection;
    this.#onError = onError;
    this.#add(true);
    while (this.#waiting.size < Math.min(WAITING, options.maxInstances) && this.#add(false));
  }

  /** One more waiting instance; false when Windows refuses (all instances in use). */
  #add(first: boolean): boolean {
    const { constants: c } = this.#native;
    const o = this.#options;
    const access = o.direction === 'duplex' ? c.PIPE_ACCESS_DUPLEX : o.direction === 'clientToServer' ? c.PIPE_ACCESS_INBOUND : c.PIPE_ACCESS_OUTBOUND;
    const openMode = access | (first && o.firstInstance ? c.FILE_FLAG_FIRST_PIPE_INSTANCE : 0) | (o.writeThrough === true ? c.FILE_FLAG_WRITE_THROUGH : 0);
    const pipeMode = (o.message ? c.PIPE_TYPE_MESSAGE | c.PIPE_READMODE_MESSAGE : c.PIPE_TYPE_BYTE | c.PIPE_READMODE_BYTE) | (o.rejectRemoteClients ? c.PIPE_REJECT_REMOTE_CLIENTS : 0);
    let pipe: NativeNamedPipe;
    try {
      pipe = this.#native.create(this.#path, openMode, pipeMode, o.maxInstances, o.outBufferSize, o.inBufferSize, o.securityDescriptor, o.inheritable);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!first && (code === 'EBUSY' || code === 'EPERM')) {
        this.#short = true;
        return false;
      }
      throw createError(error, this.#path, first && o.firstInstance);
    }
    this.#short = false;
    this.#waiting.add(pipe);
    if (!this.#keepAlive) pipe.ref(false);
    pipe.connect((error) => {
      this.#waiting.delete(pipe);
      if (this.#closed) {
        // close() has closed it: its handle is closed by now, whatever the outcome.
        if (this.#waiting.size === 0) this.#onGone?.();
        return;
      }
      if (error) {
        // Not this client's fault alone, and maybe not the last: report it, and wait a little
        // before making a new instance, so a lasting failure cannot spin.
        pipe.close(true);
        this.#onError(fromSystemError(error, `Accepting a client on ${this.#path} failed`));
        setTimeout(() => this.#refill(), 100).unref();
        return;
      }
      this.#refill(); // before handing the connection on: the next client finds an instance
      this.#onConnection(pipe);
    });
    return true;
  }

  #refill(): void {
    try {
      while (!this.#closed && this.#waiting.size < Math.min(WAITING, this.#options.maxInstances) && this.#add(false));
    } catch (error) {
      this.#onError(error as InterprocessError);
    }
  }

  /** A connection of ours closed: an instance may be free for a waiting one now. */
  released(): void {
    if (this.#short && !this.#closed) this.#refill();
  }

  /**
   * Stops waiting for clients: the waiting instances close; connections made stay open. Resolves
   * once their handles are closed. Until then a client could still open one of them (an instance
   * takes clients from its creation on, whether or not ConnectNamedPipe waits on it), and the
   * name would not be free for a new first instance.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      // Each cancelled accept completes (its handle closed first) and calls back: see #add.
      for (const pipe of this.#waiting) pipe.close(true);
    }
    if (this.#waiting.size === 0) return Promise.resolve();
    return (this.#gone ??= new Promise((resolve) => (this.#onGone = resolve)));
  }

  /** The DACL Windows holds for this pipe, as SDDL (read from a waiting instance). */
  securityDescriptor(): string {
    const [pipe] = this.#waiting;
    if (!pipe || this.#closed) throw new InterprocessError('ERR_INVALID_STATE', 'No instance of this pipe is waiting (all are connected, or the listener is closed): nothing to read the descriptor from');
    try {
      return pipe.securityDescriptor();
    } catch (error) {
      throw fromSystemError(error, `Cannot read the security descriptor of ${this.#path}`);
    }
  }

  ref(keepAlive: boolean): void {
    this.#keepAlive = keepAlive;
    for (const pipe of this.#waiting) pipe.ref(keepAlive);
  }
}

function createError(error: unknown, path: string, firstInstance: boolean): InterprocessError {
  const code = (error as NodeJS.ErrnoException).code;
  const doing = `Cannot create the named pipe ${path}`;
  // Built with the code Unix gives for the same situation (the system's message kept). libuv maps
  // ERROR_ACCESS_DENIED to EPERM: creating the first instance fails so when the name exists;
  // otherwise it means the existing pipe's security or options do not let us add to it.
  if (code === 'EPERM' && firstInstance) {
    return fromSystemError(error, doing, 'A pipe of this name exists: another server (or a squatter) has it. Stop it or choose another name.', { code: 'EADDRINUSE' });
  }
  if (code === 'EPERM') {
    return fromSystemError(error, doing, 'A pipe of this name exists with other options or a security descriptor that denies us.', { code: 'EACCES' });
  }
  if (code === 'EBUSY') {
    return fromSystemError(error, doing, 'All instances of this pipe are in use by another server.', { code: 'EADDRINUSE' });
  }
  return fromSystemError(error, doing);
}
