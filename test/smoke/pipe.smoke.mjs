// Unnamed pipes: a pipe end handed to another process at descriptor 3, and read back; the
// reused-buffer reader (onChunk).
import assert from 'node:assert/strict';
import { PipeSender, pipe, spawnWith } from 'interprocess';

export const title = 'unnamed pipes';

export async function run(smoke) {
  await smoke.check('a child writes into a pipe end it got at fd 3', async () => {
    const { sender, receiver } = pipe();
    const [command, ...lead] = smoke.launcher;
    const child = spawnWith(command, [...lead, ...smoke.childArgs('pipe.smoke.mjs', [])], { fds: { 3: sender }, stdio: 'inherit' });
    let text = '';
    for await (const chunk of receiver) text += chunk;
    assert.equal(text, 'through a pipe');
    await new Promise((resolve) => child.on('exit', resolve));
    return 'end of stream once the child exits';
  });
  await smoke.check('onChunk reads into one reused buffer (net.Socket onread on this Node)', async () => {
    const readBuffer = new Uint8Array(4);
    const parts = [];
    const { sender, receiver } = pipe({ receiver: { readBuffer, onChunk: (chunk) => void parts.push(chunk.buffer === readBuffer.buffer ? String(chunk) : '?') } });
    const ended = new Promise((resolve) => receiver.once('end', resolve));
    sender.end('in four-byte views');
    await ended;
    assert.equal(parts.join(''), 'in four-byte views');
    return `${parts.length} chunks`;
  });
}

export async function child() {
  PipeSender.fromFd(3).end('through a pipe');
}
