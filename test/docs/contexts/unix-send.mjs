// `socket`: a datagram socket; `to`: the name of another, which reads everything sent to it;
// `data`, `fds`, `messages`: what to send; `onError`: a rejection handler.
import os from 'node:os';
import path from 'node:path';
import { bindDatagram } from 'interprocess';

const receiver = await bindDatagram(path.join(os.tmpdir(), 'receiver.sock'));
let received = 0;
let last = 0;
receiver.on('message', () => {
  received++;
  last = Date.now();
});
globalThis.socket = await bindDatagram(null, { connect: receiver.localName });
globalThis.to = receiver.localName;
globalThis.data = 'hello';
globalThis.fds = [0];
globalThis.messages = Array.from({ length: 5000 }, (_, i) => `message ${i}`);
globalThis.onError = (error) => {
  console.error(error);
  process.exitCode = 1;
};
// Once the block has sent everything (something arrived, nothing is queued, and nothing more for
// 500 ms): close both, and the process exits.
const done = setInterval(() => {
  if (received === 0 || globalThis.socket.sendQueueLength > 0 || Date.now() - last < 500) return;
  clearInterval(done);
  void globalThis.socket.close();
  void receiver.close();
}, 100);
