// `sender` and `receiver`: the ends of one pipe; `buffer`: a Buffer to read into.
import { pipe } from 'interprocess';

const { sender, receiver } = pipe();
Object.assign(globalThis, { sender, receiver, buffer: Buffer.alloc(1024) });
// The ends do not hold the process open once the block is done.
process.on('beforeExit', () => {
  sender.destroy();
  receiver.destroy();
});
