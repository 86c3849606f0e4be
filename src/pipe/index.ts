/** Unnamed pipes: a pipe pair in this process, handed to child processes. */
export { DEFAULT_PIPE_SIZE, pipe, pipeSize, spawnWith } from './pipe.js';
export type { ChildDescriptor, Pipe, PipeOptions, SpawnWithOptions } from './pipe.js';
export { PipeReceiver, PipeSender } from './end.js';
export type { ReceiverOptions, SyncOptions } from './end.js';
