// Unnamed pipes: a pipe end handed to another process at descriptor 3, and read back.
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
}

export async function child() {
  PipeSender.fromFd(3).end('through a pipe');
}
