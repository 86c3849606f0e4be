// Single-instance applications: this process is the primary, a child process hands its argv over
// and gets the primary's reply.
import assert from 'node:assert/strict';
import { singleInstance } from 'interprocess';

export const title = 'single-instance applications';

export async function run(smoke) {
  await smoke.check('singleInstance: a second process hands its argv to the primary and gets its reply', async () => {
    const id = smoke.uniqueName('smoke-single');
    const app = await singleInstance(id);
    assert.equal(app.primary, true);
    const arrived = new Promise((resolve) => app.once('second-instance', (instance) => {
      instance.reply(`got ${instance.argv.join(' ')}`);
      resolve(instance);
    }));
    const child = smoke.spawnChild('single-instance.smoke.mjs', [id, 'a.txt', 'b.txt']);
    const instance = await arrived;
    assert.deepEqual(instance.argv, ['a.txt', 'b.txt']);
    assert.equal(instance.pid, child.pid);
    assert.equal(await child.exited, 0);
    await app.close();
  });
}

/** The second process: must be secondary, and get the primary's reply. */
export async function child([id, ...argv]) {
  const app = await singleInstance(id, { argv, timeout: 30_000 });
  if (app.primary || app.reply !== `got ${argv.join(' ')}`) {
    console.log(`FAIL - the second process: ${JSON.stringify({ primary: app.primary, reply: app.reply })}`);
    process.exit(1);
  }
}
