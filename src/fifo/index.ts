/** FIFO files (Unix): create, open without blocking Node, stream. */
export { createFifo, openFifoReader, openFifoWriter } from './fifo.js';
export type { CreateFifoOptions, FifoReaderOptions, FifoWriterOptions } from './fifo.js';
